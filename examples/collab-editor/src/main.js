// The collaborative editor: one text per automerge document, edited in CodeMirror, kept in
// IndexedDB, and synced through a weft relay by the official automerge-repo client.
import { automergeSyncPlugin } from "@automerge/automerge-codemirror"
import { Repo, isValidAutomergeUrl } from "@automerge/automerge-repo"
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb"
import { EditorView, basicSetup } from "codemirror"

import { rememberDocument, rememberedDocuments, renderDocumentList, retitleDocument } from "./documents.js"
import { remoteCursors, sharePresence } from "./presence.js"
import { RelayConnection } from "./relay-connection.js"
import { trackSaving } from "./saving.js"
import { adoptAddressParameters, colourFor, relayUrl, saveToken, saveUserName, userName } from "./settings.js"

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
  // A document that was not here and not on the relay earlier may be there now.
  if (state === "online" && opened?.failed) openFromAddress()
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

/** The open document: `{ url, handle, view, presence, failed }`. */
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

async function openFromAddress() {
  const generation = ++navigation
  const url = decodeURIComponent(location.hash.slice(1))
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
  opened = { url }
  renderDocumentList(documentList, url)
  showMessage("Opening…")
  let handle
  try {
    handle = await repo.find(url)
  } catch (error) {
    if (generation !== navigation) return
    opened.failed = true
    showMessage(
      connectionState === "online"
        ? `Neither this browser nor the relay has this document (${error.message}).`
        : "This document is not in this browser yet; it opens when the relay is reachable.",
    )
    return
  }
  if (generation !== navigation) return
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
  shareLink.value = `${location.origin}${location.pathname}#${url}`
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
        if (update.selectionSet || update.docChanged) opened?.presence?.selectionChanged()
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

window.addEventListener("hashchange", openFromAddress)
// automerge-repo writes to IndexedDB at most every 100 ms; a reload or a closed tab right
// after typing would lose the last keystrokes. Write them as soon as the page is asked to
// go: at `pagehide` it is too late (chromium tears the page down before IndexedDB commits;
// the browser tests lost keystrokes that way), at `beforeunload` the page still runs while
// the browser fetches the next one.
window.addEventListener("beforeunload", () => void repo.flush())
window.addEventListener("pagehide", () => {
  opened?.presence?.stop()
  void repo.flush()
})
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") void repo.flush()
})
openFromAddress()

// For the browser tests and for poking at from the console.
window.weftEditor = {
  repo,
  text: () => opened?.view?.state.doc.toString(),
  url: () => opened?.handle?.url,
  connection: () => connectionState,
  saved: () => !saved.hidden && saved.dataset.state === "saved",
}
