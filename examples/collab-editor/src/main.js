// The collaborative editor: one text per automerge document, edited in CodeMirror, kept in
// IndexedDB, and synced through a weft relay by the official automerge-repo client.
import { automergeSyncPlugin } from "@automerge/automerge-codemirror"
import { Repo, isValidAutomergeUrl, parseAutomergeUrl, stringifyAutomergeUrl } from "@automerge/automerge-repo"
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb"
import { Transaction } from "@codemirror/state"
import { EditorView, basicSetup } from "codemirror"

import { rememberDocument, rememberedDocuments, renderDocumentList, retitleDocument } from "./documents.js"
import { remoteCursors, sharePresence } from "./presence.js"
import { RelayConnection } from "./relay-connection.js"
import { trackSaving } from "./saving.js"
import {
  NAME_LENGTH,
  adoptAddressParameters,
  colourFor,
  relayUrl,
  saveToken,
  saveUserName,
  shareLinkFor,
  userName,
} from "./settings.js"

/** Where the text lives in each document: `{ text: "…" }`. */
const TEXT_PATH = ["text"]

const element = (id) => document.getElementById(id)
const connection = element("connection")
const documentList = element("documents")
const editorParent = element("editor")
const message = element("message")
const nameInput = element("name")
const people = element("people")
const saved = element("saved")
const share = element("share")
const shareLink = element("share-link")
const tokenDialog = element("token-dialog")

adoptAddressParameters()

const STATE_LABELS = {
  connecting: "connecting…",
  online: "online",
  offline: "offline: edits are kept here",
  refused: "refused by the relay",
}

let connectionState = "connecting"
const relay = new RelayConnection(relayUrl(), (state, reason) => {
  connectionState = state
  connection.dataset.state = state
  connection.textContent = STATE_LABELS[state]
  connection.title = reason ?? ""
  if (state === "refused") askForToken(reason)
})

const repo = new Repo({
  storage: new IndexedDBStorageAdapter("weft-editor"),
  network: [relay],
})

function askForToken(reason) {
  element("token-reason").textContent = reason ?? ""
  if (!tokenDialog.open) tokenDialog.showModal()
}

element("token-form").addEventListener("submit", () => {
  saveToken(element("token").value)
  location.reload()
})

nameInput.value = userName()
nameInput.maxLength = NAME_LENGTH
nameInput.addEventListener("change", () => {
  const name = nameInput.value.trim()
  if (!name) return
  saveUserName(name)
  opened?.presence?.rename(name, colourFor(name))
})

element("new-document").addEventListener("click", () => {
  const handle = repo.create({ text: "" })
  location.hash = handle.url
})

element("copy-link").addEventListener("click", async () => {
  shareLink.select()
  try {
    await navigator.clipboard.writeText(shareLink.value)
  } catch {
    // No clipboard permission: the link stays selected for copying by hand.
  }
})

/** The open document: `{ url, handle, view, presence, onChange, stopSaving }`. */
let opened = null
/** Bumped on each navigation, so that a slow load cannot open over a later one. */
let navigation = 0

function showMessage(text) {
  message.textContent = text ?? ""
  message.hidden = !text
}

function closeDocument() {
  if (!opened) return
  opened.presence?.stop()
  opened.view?.destroy()
  opened.handle?.off("change", opened.onChange)
  opened.stopSaving?.()
  saved.hidden = true
  opened = null
  share.hidden = true
}

/** The text after the address's `#`. */
function addressedDocument() {
  try {
    return decodeURIComponent(location.hash.slice(1))
  } catch {
    return location.hash.slice(1) // malformed escapes: shown as typed
  }
}

async function openFromAddress() {
  const generation = ++navigation
  const url = addressedDocument()
  if (!url) {
    // No document named: the most recent one, or a new one.
    const recent = rememberedDocuments()[0]?.url ?? repo.create({ text: "" }).url
    location.replace(`#${recent}`)
    return
  }
  closeDocument()
  if (!isValidAutomergeUrl(url)) {
    showMessage(`“${url}” is not a document link (they look like automerge:…).`)
    return
  }
  const { documentId, heads } = parseAutomergeUrl(url)
  if (heads) {
    // A link to a past version: this editor edits the current one.
    location.replace(`#${stringifyAutomergeUrl({ documentId })}`)
    return
  }
  opened = { url }
  renderDocumentList(documentList, url)
  showMessage("Opening…")
  let handle
  try {
    handle = await repo.find(url, { allowableStates: ["ready", "unavailable"] })
  } catch (error) {
    if (generation === navigation) showMessage(`This document cannot be opened: ${error.message}`)
    return
  }
  if (generation !== navigation) return
  if (!handle.isReady()) {
    // Neither here nor on the relay (or the relay is out of reach): the repo asks peers
    // again as they connect, and the editor opens when the document arrives.
    showMessage(
      connectionState === "online"
        ? "Neither this browser nor the relay has this document yet; it opens when it arrives."
        : "This document is not in this browser yet; it opens when the relay is reachable.",
    )
    await handle.whenReady(["ready"])
    if (generation !== navigation) return
  }
  if (typeof handle.doc()?.text !== "string") {
    showMessage("This document has no text to edit (it has no “text” field).")
    return
  }
  showEditor(url, handle)
}

function showEditor(url, handle) {
  showMessage("")
  rememberDocument(url, handle.doc().text)
  renderDocumentList(documentList, url)
  shareLink.value = shareLinkFor(url)
  share.hidden = false

  const view = new EditorView({
    doc: handle.doc().text,
    parent: editorParent,
    extensions: [
      basicSetup,
      EditorView.lineWrapping,
      automergeSyncPlugin({ handle, path: TEXT_PATH }),
      remoteCursors,
      EditorView.updateListener.of((update) => {
        // Only what this person did (typing, deleting, selecting: transactions with a user
        // event) is shared: remote edits move nobody's cursor in automerge terms.
        const local = update.transactions.some((transaction) => transaction.annotation(Transaction.userEvent))
        if (local && (update.selectionSet || update.docChanged)) opened?.presence?.selectionChanged()
      }),
    ],
  })
  const onChange = () => {
    if (retitleDocument(url, handle.doc().text)) renderDocumentList(documentList, url)
  }
  handle.on("change", onChange)
  const name = userName()
  const presence = sharePresence({ handle, path: TEXT_PATH, view, name, colour: colourFor(name), people })
  const stopSaving = trackSaving({ repo, handle, element: saved })
  saved.hidden = false
  opened = { url, handle, view, presence, onChange, stopSaving }
  presence.selectionChanged()
  view.focus()
}

// automerge-repo writes to IndexedDB at most every 100 ms; a reload or a closed tab right
// after typing would lose the last keystrokes. Write them as soon as the page is asked to
// go: at `pagehide` it is too late (chromium tears the page down before IndexedDB commits;
// the browser tests lost keystrokes that way), at `beforeunload` the page still runs while
// the browser fetches the next one.
const flushOpenDocument = () => {
  if (opened?.handle?.isReady()) void repo.flush([opened.handle.documentId])
}
window.addEventListener("beforeunload", flushOpenDocument)
window.addEventListener("pagehide", () => {
  opened?.presence?.stop()
  flushOpenDocument()
})
// Back from the back/forward cache: presence was stopped at `pagehide`; open afresh.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) openFromAddress()
})
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") flushOpenDocument()
})
window.addEventListener("hashchange", openFromAddress)
openFromAddress()

// For the browser tests and for poking at from the console.
window.weftEditor = {
  repo,
  text: () => opened?.view?.state.doc.toString(),
  url: () => opened?.handle?.url,
  connection: () => connectionState,
  saved: () => !saved.hidden && saved.dataset.state === "saved",
}
