// Captures REAL automerge-repo WebSocket frames, as the official packages put them on the
// socket, and writes them to ../../core/tests/fixtures/wire-frames.json.
//
//   node tests/js/make-wire-fixtures.mjs        (from /work/main; exits by itself in a few s)
//
// A `ws` server on 127.0.0.1:<random port> is wrapped in a server Repo (NodeWSServerAdapter,
// peerId "server", sharePolicy false, in-memory storage, remote-heads gossip on). Every binary
// frame the server socket receives or sends is sniffed (socket 'message' events, wrapped
// socket.send). Client Repos "alice" (in-memory storage, so her peerMetadata has a storageId),
// "bob" (no storage: storageId undefined) and "carol" (storage) drive a scenario that produces
// join, peer, sync, request, doc-unavailable, ephemeral, remote-subscription-change,
// remote-heads-changed; a raw ws client sends a join with supportedProtocolVersions ["99"] to
// provoke error. The first frames of each type are kept (up to 2; join up to 3 incl. the bad
// one; sync = first frame + largest frame).
//
// Output: a JSON array of { name: "<type>-<n>", direction, hex, decoded }, where decoded is the
// cbor-x decoding (automerge-repo's own decoder) with Uint8Array -> {"$bytes": hex},
// undefined -> {"$undefined": true} (and BigInt -> {"$bigint": "<decimal>"}, not expected).
// Ids and timestamps are random on every run; the output is a checked-in fixture.

import { writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { WebSocketServer, WebSocket } from "ws"
import { Repo, generateAutomergeUrl } from "@automerge/automerge-repo"
import { decode, encode } from "@automerge/automerge-repo/helpers/cbor.js"
import { DummyStorageAdapter } from "@automerge/automerge-repo/helpers/DummyStorageAdapter.js"
import {
  NodeWSServerAdapter,
  WebSocketClientAdapter,
} from "@automerge/automerge-repo-network-websocket"
import { jsonView, toHex } from "./json-view.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const OUT = join(here, "../../core/tests/fixtures/wire-frames.json")

// Hard stop: whatever happens, exit within ~15 s.
const hardStop = setTimeout(() => {
  console.error("make-wire-fixtures: timed out")
  process.exit(2)
}, 15000)

const sleep = ms => new Promise(r => setTimeout(r, ms))
const withTimeout = (p, ms, what) =>
  Promise.race([
    p,
    sleep(ms).then(() => {
      throw new Error(`timeout: ${what}`)
    }),
  ])


// ---- sniffing ------------------------------------------------------------------------------
const frames = [] // { direction, bytes: Buffer, msg }
const record = (direction, data) => {
  const bytes = Buffer.isBuffer(data)
    ? Buffer.from(data)
    : data instanceof ArrayBuffer
      ? Buffer.from(new Uint8Array(data))
      : Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  let msg
  try {
    msg = decode(bytes)
  } catch (e) {
    msg = { type: "<undecodable>", error: String(e) }
  }
  frames.push({ direction, bytes, msg })
}

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
await new Promise(r => wss.once("listening", r))
const port = wss.address().port
// Registered before the server adapter's own listener, so we see every frame.
wss.on("connection", socket => {
  socket.on("message", (data, isBinary) => {
    if (isBinary) record("client-to-server", data)
  })
  const origSend = socket.send.bind(socket)
  socket.send = (data, ...rest) => {
    if (typeof data !== "string") record("server-to-client", data)
    return origSend(data, ...rest)
  }
})

// ---- repos ---------------------------------------------------------------------------------
const server = new Repo({
  peerId: "server",
  network: [new NodeWSServerAdapter(wss)],
  storage: new DummyStorageAdapter(),
  sharePolicy: async () => false,
  enableRemoteHeadsGossiping: true,
})
const url = `ws://127.0.0.1:${port}`
const mkClient = (peerId, storage, extra = {}) =>
  new Repo({ peerId, network: [new WebSocketClientAdapter(url)], storage, ...extra })
const alice = mkClient("alice", new DummyStorageAdapter(), { enableRemoteHeadsGossiping: true })
const bob = mkClient("bob", undefined)
const carol = mkClient("carol", new DummyStorageAdapter())
const repos = [alice, bob, carol, server]

let raw
try {
  await withTimeout(
    Promise.all([alice, bob, carol].map(r => r.networkSubsystem.whenReady())),
    3000,
    "clients ready"
  )
  await sleep(200)

  // alice subscribes to remote heads of the server's and carol's storage ids.
  const serverSid = await server.storageId()
  const carolSid = await carol.storageId()
  alice.subscribeToRemotes([serverSid, carolSid])
  await sleep(200)

  // sync: alice creates a document (some bulk so one sync frame has large-ish data) and edits it.
  const handle = alice.create({ title: "wire fixtures", body: "lorem ipsum ".repeat(100) })
  handle.change(d => {
    d.count = 1
    d.items = ["a", "b", "c"]
  })
  await sleep(800)

  // request: bob has nothing, finds the existing doc by URL.
  const bobHandle = await withTimeout(bob.find(handle.url), 3000, "bob find")

  // doc-unavailable: bob finds a never-created document.
  try {
    await withTimeout(bob.find(generateAutomergeUrl()), 3000, "bob find unknown")
    console.error("unexpected: unknown document was found")
  } catch (e) {
    if (!/unavailable/.test(String(e))) console.error("bob find unknown:", String(e))
  }

  // remote-heads-changed: carol (storage) syncs the doc; the server tells alice, who is
  // subscribed to carol's storage id.
  const carolHandle = await withTimeout(carol.find(handle.url), 3000, "carol find")
  carolHandle.change(d => {
    d.count = 2
  })
  await sleep(500)

  // ephemeral: alice broadcasts on a doc bob has too (the server forwards it to bob/carol).
  handle.broadcast({ cursor: 3, name: "alice" })
  await sleep(400)
  void bobHandle

  // error: a raw client joins with an unsupported protocol version.
  raw = new WebSocket(url)
  raw.binaryType = "arraybuffer"
  await withTimeout(new Promise((r, j) => (raw.once("open", r), raw.once("error", j))), 2000, "raw open")
  const closed = new Promise(r => raw.once("close", r))
  raw.send(
    encode({
      type: "join",
      senderId: "mallory",
      peerMetadata: { isEphemeral: true },
      supportedProtocolVersions: ["99"],
    })
  )
  await withTimeout(closed, 2000, "raw close").catch(e => console.error(String(e)))
} catch (e) {
  console.error("scenario failed:", e)
} finally {
  for (const r of repos) {
    try {
      await withTimeout(Promise.resolve(r.shutdown()), 1000, "shutdown")
    } catch (e) {
      // flush() throws "DocHandle is not ready" for the unavailable handle: harmless here
      if (!/not ready/.test(String(e))) console.error("shutdown:", String(e))
    }
  }
  try {
    raw?.terminate()
  } catch {}
  for (const c of wss.clients) c.terminate()
  await new Promise(r => wss.close(() => r()))
}

// ---- selection -----------------------------------------------------------------------------
const byType = new Map()
for (const f of frames) {
  const t = f.msg?.type ?? "<untyped>"
  if (!byType.has(t)) byType.set(t, [])
  byType.get(t).push(f)
}
const ORDER = [
  "join",
  "peer",
  "sync",
  "request",
  "doc-unavailable",
  "ephemeral",
  "remote-subscription-change",
  "remote-heads-changed",
  "error",
]
const types = [...ORDER.filter(t => byType.has(t)), ...[...byType.keys()].filter(t => !ORDER.includes(t))]
const out = []
for (const t of types) {
  const all = byType.get(t)
  let keep
  if (t === "sync") {
    // the first frame, plus the largest frame of the other direction (the server sending
    // the whole document to a client), falling back to the largest frame overall
    const other = all.filter(f => f.direction !== all[0].direction)
    const pool = other.length ? other : all.slice(1)
    keep = pool.length
      ? [all[0], pool.reduce((a, b) => (b.bytes.length > a.bytes.length ? b : a))]
      : [all[0]]
  } else if (t === "join") {
    // the two first joins (alice: storageId set, bob: storageId undefined) plus the bad-version one
    const bad = all.filter(f => !(f.msg.supportedProtocolVersions ?? ["1"]).includes("1"))
    const rank = f => ["alice", "bob"].indexOf(f.msg.senderId) >>> 0
    const good = all.filter(f => !bad.includes(f)).sort((a, b) => rank(a) - rank(b))
    keep = [...good.slice(0, 2), ...bad.slice(0, 1)]
  } else if (t === "remote-heads-changed") {
    // prefer one with non-empty heads
    const nonEmpty = all.filter(f =>
      Object.values(f.msg.newHeads ?? {}).some(v => (v.heads ?? []).length > 0)
    )
    keep = [...new Set([all[0], ...nonEmpty])].slice(0, 2)
  } else {
    keep = all.slice(0, 2)
  }
  keep.forEach((f, i) =>
    out.push({
      name: `${t}-${i + 1}`,
      direction: f.direction,
      hex: f.bytes.toString("hex"),
      decoded: jsonView(f.msg),
    })
  )
}

writeFileSync(OUT, JSON.stringify(out, null, 2) + "\n")
const seen = [...byType].map(([t, l]) => `${t}x${l.length}`).join(" ")
console.error(`captured ${frames.length} frames (${seen}); wrote ${out.length} to ${OUT}`)
const missing = ORDER.filter(t => !byType.has(t))
if (missing.length) console.error("MISSING:", missing.join(", "))
clearTimeout(hardStop)
process.exit(0)
