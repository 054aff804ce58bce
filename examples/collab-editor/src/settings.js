// What the page is told by its address and remembers in localStorage: where the relay is,
// the token for it, and the name shown to other people.

const TOKEN_KEY = "weft-editor.token"
const NAME_KEY = "weft-editor.name"

const params = new URLSearchParams(location.search)

/**
 * Takes `?token=` and `?name=` out of the address bar into localStorage, so that a copied
 * address or a screenshot never carries the token, and later visits need neither.
 */
export function adoptAddressParameters() {
  let changed = false
  for (const [param, key] of [["token", TOKEN_KEY], ["name", NAME_KEY]]) {
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

/**
 * The relay's WebSocket address: `?relay=`, else `VITE_WEFT_RELAY` at build time, else the
 * server that served this page (weft-relay --web), with the stored token as `?token=`.
 */
export function relayUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:"
  const base = params.get("relay") ?? import.meta.env.VITE_WEFT_RELAY ?? `${scheme}//${location.host}/`
  const url = new URL(base)
  const token = localStorage.getItem(TOKEN_KEY)
  if (token) url.searchParams.set("token", token)
  return url.toString()
}

/** Remembers a token typed into the page (replacing a refused one). */
export function saveToken(token) {
  localStorage.setItem(TOKEN_KEY, token.trim())
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

const COLOURS = ["#d7263d", "#1b998b", "#2e86ab", "#f46036", "#7b2cbf", "#3a7d44", "#c2185b", "#5c6bc0"]

/** A colour for a name, the same in every tab. */
export function colourFor(name) {
  let hash = 0
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) >>> 0
  return COLOURS[hash % COLOURS.length]
}
