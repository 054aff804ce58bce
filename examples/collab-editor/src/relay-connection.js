// The WebSocket client adapter of automerge-repo, plus what a person needs to see: whether
// the relay is reachable, and why it refused us.
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

/** WebSocket close code a weft relay sends when it refuses a token (policy violation). */
const POLICY_VIOLATION = 1008

/** Milliseconds between attempts to reach the relay while it is unreachable. */
const RETRY_MS = 2000

/**
 * The official adapter, reporting its state through `onState(state, detail)`:
 * `"connecting"`, `"online"` (the relay answered the handshake), `"offline"` (retrying), or
 * `"refused"` (the relay refused the token; retrying would be refused again, so it stops).
 * Two changes to its behaviour: a refusal is not retried, and the socket is closed when the
 * browser says the network is gone (the adapter's own retries then bring it back).
 */
export class RelayConnection extends WebSocketClientAdapter {
  #onState
  #refused = false

  constructor(url, onState) {
    super(url, RETRY_MS)
    this.#onState = onState
    this.on("peer-candidate", () => this.#onState("online"))
    this.on("peer-disconnected", () => this.#report("offline"))

    // The adapter's own close handler schedules the next attempt.
    const retryAfterClose = this.onClose
    this.onClose = (event) => {
      if (event?.code === POLICY_VIOLATION && event.reason?.startsWith("unauthorized")) {
        this.#refused = true
        this.disconnect()
        this.#onState("refused", event.reason)
        return
      }
      retryAfterClose(event)
      this.#report("offline")
    }

    // When the browser says the network is gone, an open socket may linger for a long
    // time before anything notices (chromium keeps it open), while the edits made meanwhile
    // go nowhere and the page would say "online". Close it: the adapter retries every
    // RETRY_MS and reconnects once the network is back.
    window.addEventListener("offline", () => {
      this.#report("offline")
      this.socket?.close()
    })
  }

  /** Reports a state, unless the relay refused us (that stays on screen until a reload). */
  #report(state) {
    if (!this.#refused) this.#onState(state)
  }
}
