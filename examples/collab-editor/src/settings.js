// What the page is told by its address and remembers in localStorage: where the relay is,
// the token for it, and the name shown to other people.

const TOKEN_KEY = "weft-editor.token"
const NAME_KEY = "weft-editor.name"

const params = new URLSearchParams(location.search)

/**
 * The relay's WebSocket address without a token: `?relay=`, else `VITE_WEFT_RELAY` at build
 * time, else the server that served this page (weft-relay --web).
 */
export function relayBase() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:"
  const sameServer = `${scheme}//${location.host}/`
  try {
    return new URL(params.get("relay") ?? import.meta.env.VITE_WEFT_RELAY ?? sameServer).toString()
  } catch {
    return sameServer // not a URL: the relay that served the page
  }
}

// Tokens are kept per relay: a link that names another relay (`?relay=`) never gets the
// token given for this one.
const tokenKey = () => `${TOKEN_KEY}:${relayBase()}`

/**
 * Takes `?token=` and `?name=` out of the address bar into localStorage, so that a copied
 * address or a screenshot never carries the token, and later visits need neither.
 */
export function adoptAddressParameters() {
  let changed = false
  for (const [param, key] of [
    ["token", tokenKey()],
    ["name", NAME_KEY],
  ]) {
    const value = params.get(param)
    if (value !== null) {
      localStorage.setItem(key, value)
      params.delete(param)
      changed = true
    }
  }
  if (changed) {
    const query = params.toString()
    history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`)
  }
}

/** The relay's address with the token stored for it as `?token=`. */
export function relayUrl() {
  const url = new URL(relayBase())
  const token = localStorage.getItem(tokenKey())
  if (token) url.searchParams.set("token", token)
  return url.toString()
}

/** The page's address for a document: what to share (it never carries a token). */
export function shareLinkFor(documentUrl) {
  return `${location.origin}${location.pathname}${location.search}#${documentUrl}`
}

/** Remembers a token typed into the page (replacing a refused one), for this relay. */
export function saveToken(token) {
  localStorage.setItem(tokenKey(), token.trim())
}

/** The name shown beside this person's cursor; made up once if they never gave one. */
export function userName() {
  let name = localStorage.getItem(NAME_KEY)
  if (!name) {
    name = `Guest ${Math.floor(1000 + Math.random() * 9000)}`
    localStorage.setItem(NAME_KEY, name)
  }
  return name
}

/** Remembers a changed name. */
export function saveUserName(name) {
  localStorage.setItem(NAME_KEY, name)
}

/** The most characters of a name shown (others' names come from the network). */
export const NAME_LENGTH = 40

const COLOURS = ["#d7263d", "#1b998b", "#2e86ab", "#f46036", "#7b2cbf", "#3a7d44", "#c2185b", "#5c6bc0"]

/** Whether `colour` is one this page draws with (others' colours come from the network). */
export function isColour(colour) {
  return COLOURS.includes(colour)
}

/** A colour for a name, the same in every tab. */
export function colourFor(name) {
  let hash = 0
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) >>> 0
  return COLOURS[hash % COLOURS.length]
}
