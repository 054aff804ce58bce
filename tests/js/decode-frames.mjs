// Decodes wire frames (e.g. encoded by weft's Rust code) with automerge-repo's own CBOR decoder.
//
//   echo '["b90004647479706564...", "..."]' | node tests/js/decode-frames.mjs
//
// stdin:  a JSON array of frames, each a lowercase hex string (one WebSocket binary message)
// stdout: a JSON array, one object per input, in order:
//   { "ok": true, "decoded": <JSON view>, "isRepoMessage": true|false }
//   { "ok": false, "error": "<message>" }     (bad hex, or the decoder threw)
// The decoder is `decode` from "@automerge/automerge-repo/helpers/cbor.js" (exported by the
// package's "./helpers/*.js" export; it is cbor-x `decode`, exactly what the WebSocket adapters
// use on received frames, so trailing bytes after the first CBOR item are an error).
// isRepoMessage is automerge-repo's exported type guard (true only for sync, request,
// ephemeral, doc-unavailable, remote-subscription-change, remote-heads-changed; the handshake
// types join/peer/error are false); it is false for decoded values that are not objects.
// JSON view: Uint8Array -> {"$bytes": "<hex>"}, undefined -> {"$undefined": true},
// BigInt -> {"$bigint": "<decimal>"}; everything else as is (same rules as wire-frames.json).
// Exit code 0 even when frames are invalid; 1 only if stdin is not a JSON array of strings.

import { readFileSync } from "node:fs"
import { isRepoMessage } from "@automerge/automerge-repo"
import { decode } from "@automerge/automerge-repo/helpers/cbor.js"
import { jsonView, toHex } from "./json-view.mjs"


const input = JSON.parse(readFileSync(0, "utf8"))
if (!Array.isArray(input) || !input.every(s => typeof s === "string")) {
  console.error("stdin must be a JSON array of hex strings")
  process.exit(1)
}

const out = input.map(hex => {
  if (!/^([0-9a-f]{2})*$/.test(hex)) return { ok: false, error: "not lowercase hex" }
  try {
    // a Uint8Array, as the client adapter passes it (the server passes a Buffer; same decode)
    const decoded = decode(new Uint8Array(Buffer.from(hex, "hex")))
    const isRepo = decoded !== null && typeof decoded === "object" ? isRepoMessage(decoded) : false
    return { ok: true, decoded: jsonView(decoded), isRepoMessage: isRepo }
  } catch (e) {
    return { ok: false, error: String(e?.message ?? e) }
  }
})
process.stdout.write(JSON.stringify(out, null, 2) + "\n")
