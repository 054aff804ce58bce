// The WebSocket client adapter of automerge-repo, plus what a person needs to see: whether
// the relay is reachable, and why it refused us.
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

/** WebSocket close code a weft relay sends when it refuses a token (policy violation). */
const POLICY_VIOLATION = 1008

/** Seconds between attempts to reach the relay while it is unreachable. */
const RETRY_MS = 2000

/**
 * The official adapter, reporting its state through `onState(state, detail)`:
 * `"connecting"`, `"online"` (the relay answered the handshake), `"offline"` (retrying), or
 * `"refused"` (the relay refused the token; retrying would be refused again, so it stops).
 */
export class RelayConnection extends WebSocketClientAdapter {
  #onState
  #refused = false

  constructor(url, onState) {
    super(url, RETRY_MS)
    this.#onState = onState
    this.on("peer-candidate", () => this.#onState("online"))
    this.on("peer-disconnected", () => this.#onState("offline"))

    // The adapter's own close handler retries; a refusal must not be retried.
    const retryAfterClose = this.onClose
    this.onClose = (event) => {
      if (event?.code === POLICY_VIOLATION && event.reason?.startsWith("unauthorized")) {
        this.#refused = true
        this.disconnect()
        this.#onState("refused", event.reason)
        return
      }
      retryAfterClose(event)
      this.#onState("offline")
    }

    // When the browser says the network is gone, an open socket may linger for a long
    // time before anything notices (chromium keeps it open), while the edits made meanwhile
    // go nowhere. Close it, show "offline", and dial again when the network is back.
    window.addEventListener("offline", () => {
      if (this.socket) this.disconnect()
      this.#onState("offline")
    })
    window.addEventListener("online", () => {
      if (!this.socket && this.peerId && !this.#refused) {
        this.#onState("connecting")
        this.connect(this.peerId, this.peerMetadata)
      }
    })
  }
}
