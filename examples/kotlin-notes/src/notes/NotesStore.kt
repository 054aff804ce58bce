package notes

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import weft.Connection
import weft.ConnectionListener
import weft.ConnectionState
import weft.Document
import weft.DocumentEvent
import weft.DocumentListener
import weft.Edit
import weft.Repo
import weft.RepoOptions
import weft.TextUnit
import weft.Value
import weft.WeftException

/** One note as the UI shows it. */
data class Note(val title: String, val done: Boolean)

/**
 * The notes of one list, kept on the device and synced when a relay is reachable: what an
 * Android app would hold in its Application (or a ViewModel) and observe from Compose.
 *
 * The list is one automerge document, newest first:
 * `{"notes": [{"title": <text>, "done": <bool>}, ...]}`.
 * Every write is committed to SQLite before its `suspend` call returns; the UI is updated
 * through [notes] for local and remote changes alike.
 */
class NotesStore private constructor(
    private val repo: Repo,
    private val list: Document,
    private val connection: Connection?,
) {
    private val notesState = MutableStateFlow<List<Note>>(emptyList())
    private val connectionState = MutableStateFlow(connection?.state() ?: ConnectionState.Stopped)

    // Listeners run on a weft thread: StateFlow is safe to set from any thread.
    private val watchingConnection = connection?.subscribe(object : ConnectionListener {
        override fun onState(state: ConnectionState) {
            connectionState.value = state
        }
    })

    private val watchingList = list.subscribe(object : DocumentListener {
        override fun onEvent(event: DocumentEvent) = refresh()
    })

    init {
        // After subscribing, so that no change falls between this read and the first event.
        refresh()
    }

    /** The notes, updated on every change, local or remote. */
    val notes: StateFlow<List<Note>> = notesState.asStateFlow()

    /** Where the connection to the relay stands (for a "syncing / offline" badge). */
    val connectionStatus: StateFlow<ConnectionState> = connectionState.asStateFlow()

    /** What to share so that another device opens the same list. */
    val shareUrl: String get() = list.url()

    /** Adds a note at the top. */
    suspend fun add(title: String) {
        // One change, so index 0 is the new note in every edit of it, whatever other devices
        // do meanwhile (an index read before the change could be stale by then).
        list.apply(listOf(
            Edit.Insert("/notes/0", Value.Map),
            Edit.Put("/notes/0/title", Value.Text(title)),
            Edit.Put("/notes/0/done", Value.Bool(false)),
        ))
    }

    /** Replaces a note's title, keeping edits other devices make to it meanwhile. */
    suspend fun rename(index: Int, title: String) = list.updateText("/notes/$index/title", title)

    /** Marks a note done or not. */
    suspend fun setDone(index: Int, done: Boolean) = list.put("/notes/$index/done", Value.Bool(done))

    /** Removes a note. */
    suspend fun remove(index: Int) = list.delete("/notes/$index")

    /** Stops syncing and closes the repo (everything written is already on disk). */
    suspend fun close() {
        watchingList.cancel()
        watchingConnection?.cancel()
        connection?.disconnect()
        repo.shutdown()
    }

    // Reading and publishing under one lock: otherwise a read started before a remote change
    // could be published after the listener published the newer one.
    private fun refresh() = synchronized(notesState) {
        notesState.value = read()
    }

    private fun read(): List<Note> = (0 until list.length("/notes").toInt()).map { i ->
        Note(
            title = (list.get("/notes/$i/title") as? Value.Text)?.value ?: "",
            done = (list.get("/notes/$i/done") as? Value.Bool)?.value ?: false,
        )
    }

    companion object {
        /**
         * Opens the notes kept in the SQLite file at [path]: the list named by [listUrl]
         * (from this device, or from the relay the first time), or a new list. Syncs with
         * [relayUrl] if given. Text positions count in UTF-16 units, as Kotlin strings do.
         */
        suspend fun open(
            path: String,
            relayUrl: String? = null,
            token: String? = null,
            listUrl: String? = null,
        ): NotesStore {
            val repo = Repo.open(path, RepoOptions(textUnit = TextUnit.UTF16_CODE_UNIT, peerId = null))
            try {
                // Connected first, so that a list this device does not have is asked of the relay.
                val connection = relayUrl?.let { repo.connect(it, token) }
                val list = if (listUrl != null) {
                    repo.find(listUrl)
                } else {
                    repo.create().also { it.put("/notes", Value.List) }
                }
                return NotesStore(repo, list, connection)
            } catch (failure: WeftException) {
                repo.shutdown()
                throw failure
            }
        }
    }
}
