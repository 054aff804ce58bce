// The list of documents this browser has opened, newest first, with a title taken from each
// document's first line. Kept in localStorage: the documents themselves are in IndexedDB.

const LIST_KEY = "weft-editor.documents"
const TITLE_LENGTH = 60

/** The remembered documents: `[{ url, title }]`. */
export function rememberedDocuments() {
  try {
    const list = JSON.parse(localStorage.getItem(LIST_KEY) ?? "[]")
    return Array.isArray(list) ? list.filter((entry) => typeof entry?.url === "string") : []
  } catch {
    return []
  }
}

/** Puts `url` first in the list, with a title from `text`. */
export function rememberDocument(url, text) {
  const title = titleOf(text)
  const rest = rememberedDocuments().filter((entry) => entry.url !== url)
  localStorage.setItem(LIST_KEY, JSON.stringify([{ url, title }, ...rest]))
}

/** Updates the title of a remembered document, keeping its place. */
export function retitleDocument(url, text) {
  const title = titleOf(text)
  const list = rememberedDocuments()
  const entry = list.find((candidate) => candidate.url === url)
  if (entry && entry.title !== title) {
    entry.title = title
    localStorage.setItem(LIST_KEY, JSON.stringify(list))
    return true
  }
  return false
}

function titleOf(text) {
  const firstLine = (text ?? "").split("\n", 1)[0].trim()
  return firstLine.length > TITLE_LENGTH ? `${firstLine.slice(0, TITLE_LENGTH)}…` : firstLine || "Untitled"
}

/** Draws the list into `element`, marking `current`. */
export function renderDocumentList(element, current) {
  element.replaceChildren(
    ...rememberedDocuments().map(({ url, title }) => {
      const link = document.createElement("a")
      link.href = `#${url}`
      link.textContent = title
      link.title = url
      if (url === current) link.setAttribute("aria-current", "page")
      const item = document.createElement("li")
      item.append(link)
      return item
    }),
  )
}
