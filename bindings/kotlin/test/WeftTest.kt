// weft from Kotlin on the JVM (JNA): two devices sync notes through a real weft-relay
// process, text positions in UTF-16 units, a change made offline, listeners and errors.
// A plain program (exit code 1 on a failed check), so that it needs no test framework.

import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import notes.Note
import notes.NotesStore
import weft.ConnectionState
import weft.Edit
import weft.Patch
import weft.Repo
import weft.RepoOptions
import weft.TextUnit
import weft.Value
import weft.WeftException
import java.io.File
import java.nio.file.Files
import kotlin.system.exitProcess

fun check(condition: Boolean, what: () -> String) {
    if (!condition) throw AssertionError(what())
}

suspend fun eventually(what: String, condition: () -> Boolean) {
    val met = withTimeoutOrNull(20_000) {
        while (!condition()) delay(50)
        true
    }
    check(met == true) { "timed out waiting until $what" }
}

/** A weft-relay process on 127.0.0.1 with a port the system chose; its URL and a token. */
class Relay(data: File) : AutoCloseable {
    private val binary = System.getenv("WEFT_RELAY_BIN") ?: error("WEFT_RELAY_BIN is not set")
    private val process: Process = ProcessBuilder(binary, "--listen", "127.0.0.1:0", "--data", data.path)
        .redirectErrorStream(true)
        .start()
    val url: String
    val token: String
    val lines = mutableListOf<String>()

    init {
        val log = process.inputStream.bufferedReader()
        var address: String? = null
        while (address == null) {
            val line = log.readLine() ?: error("weft-relay exited before listening")
            address = Regex("address=(\\S+)").find(line)?.groupValues?.get(1)
        }
        url = "ws://$address"
        // Keep draining its log so it never blocks on a full pipe; shown if a check fails.
        Thread { runCatching { log.forEachLine { synchronized(lines) { lines.add(it) } } } }
            .apply { isDaemon = true }.start()
        token = ProcessBuilder(binary, "token", "--data", data.path, "--write", "*")
            .start().inputStream.bufferedReader().readText().trim()
    }

    fun log(): String = synchronized(lines) { lines.takeLast(60).joinToString("\n") }

    override fun close() {
        process.destroy()
        process.waitFor()
    }
}

/** Opens a list another device shared, once the relay has it. */
suspend fun openShared(file: File, relay: Relay, url: String): NotesStore {
    repeat(100) {
        try {
            return NotesStore.open(file.path, relay.url, relay.token, url)
        } catch (notYet: WeftException.DocumentNotFound) {
            delay(100)
        }
    }
    error("$url never reached the relay")
}

fun main() {
    val passed = runBlocking { scenario() }
    exitProcess(if (passed) 0 else 1)
}

var relayLog: () -> String = { "" }

suspend fun scenario(): Boolean {
    val dir = Files.createTempDirectory("weft-kotlin").toFile()
    try {
        val relay = Relay(File(dir, "relay"))
        relayLog = relay::log
        relay.use { relay ->
            // Two devices with the example app's store, syncing through the relay.
            val phone = NotesStore.open(File(dir, "phone.db").path, relay.url, relay.token)
            phone.add("milk")
            phone.add("call 👋 mum")
            eventually("the phone is connected") { phone.connectionStatus.value == ConnectionState.Connected }
            val shared = openShared(File(dir, "tablet.db"), relay, phone.shareUrl)
            eventually("the list reaches the tablet") {
                shared.notes.value == listOf(Note("call 👋 mum", false), Note("milk", false))
            }

            // Concurrent edits on two devices: a rename (as text diffs) and a checkbox.
            shared.rename(0, "call 👋 mum today")
            phone.setDone(1, true)
            eventually("both converge") {
                phone.notes.value == shared.notes.value &&
                    phone.notes.value == listOf(Note("call 👋 mum today", false), Note("milk", true))
            }

            // Offline: the phone disconnects, keeps working, and syncs when back.
            val listUrl = phone.shareUrl
            phone.close()
            shared.add("written while the phone was away")
            val offline = NotesStore.open(File(dir, "phone.db").path, listUrl = listUrl)
            check(offline.notes.value == listOf(Note("call 👋 mum today", false), Note("milk", true))) {
                "the phone's disk has its notes: ${offline.notes.value}"
            }
            offline.add("written offline")
            offline.close()
            val reopened = NotesStore.open(File(dir, "phone.db").path, relay.url, relay.token, listUrl)
            eventually("offline writes meet") {
                reopened.notes.value.map { it.title }.toSet() == shared.notes.value.map { it.title }.toSet() &&
                    reopened.notes.value.size == 4
            }

            // Errors are exceptions with a clear message.
            val repo = Repo.inMemory(RepoOptions(textUnit = TextUnit.UTF16_CODE_UNIT, peerId = null))
            try {
                repo.find("automerge:not-a-document")
                error("find of a malformed id succeeded")
            } catch (e: WeftException.InvalidDocumentId) {
                check(e.message!!.contains("base58")) { "message: ${e.message}" }
            }
            val doc = repo.create()
            doc.put("/t", Value.Text("a👋b"))
            check(doc.length("/t") == 4UL) { "UTF-16 length of a👋b is 4, got ${doc.length("/t")}" }
            // Kotlin's String indexes are the document's positions.
            doc.spliceText("/t", "a👋".length.toULong(), 0UL, "!")
            check(doc.get("/t") == Value.Text("a👋!b")) { "splice after the emoji: ${doc.get("/t")}" }
            try {
                doc.get("/t/9/x")
                error("a path through text succeeded")
            } catch (e: WeftException.InvalidPath) {
                check(e.message!!.startsWith("path \"/t/9/x\"")) { "message: ${e.message}" }
            }
            // History and undo: every change names its author, and undo takes a splice back.
            val authored = Repo.inMemory(RepoOptions(textUnit = TextUnit.UTF16_CODE_UNIT, peerId = null, author = "kotlin"))
            val notes = authored.create()
            notes.applyWithMessage(listOf(Edit.Put("/t", Value.Text("a👋b"))), "first")
            val first = notes.heads()
            notes.spliceText("/t", "a👋".length.toULong(), 0UL, "!")
            // The diff counts in UTF-16 units too.
            val diff = notes.diff(first, notes.heads())
            check(diff == listOf(Patch.SpliceText("/t", "a👋".length.toULong(), "!"))) { "diff: $diff" }
            val page = notes.history(null, 10u)
            check(page.changes.map { it.author } == listOf("kotlin", "kotlin", "kotlin") && page.changes[1].message == "first") {
                "history: $page"
            }
            check(notes.undo() && notes.get("/t") == Value.Text("a👋b")) { "undo: ${notes.get("/t")}" }
            check(notes.redo() && notes.get("/t") == Value.Text("a👋!b")) { "redo: ${notes.get("/t")}" }
            authored.shutdown()
            val refused = repo.connect(relay.url, "wrong")
            try {
                refused.waitConnected(10_000UL)
                error("a wrong token connected")
            } catch (e: WeftException.Unauthorized) {
                check(e.message!!.contains("unauthorized")) { "message: ${e.message}" }
            }
            repo.shutdown()
            for (store in listOf(reopened, shared)) store.close()
        }
        println("kotlin: all checks passed")
        return true
    } catch (failure: Throwable) {
        failure.printStackTrace()
        System.err.println("the relay's log:\n" + relayLog())
        return false
    } finally {
        dir.deleteRecursively()
    }
}
