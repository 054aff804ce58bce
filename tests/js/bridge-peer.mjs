// An official automerge-repo peer (2.5.6) whose WebSocket connections are piped to stdio, so
// that a Rust test can join it through weft's `Transport::from_channels` with the real
// frames the official adapters put on the socket.
//
//   node bridge-peer.mjs server N   an official server Repo (NodeWSServerAdapter, sharePolicy
//                                   false, like automerge-repo-sync-server) on 127.0.0.1:0;
//                                   the bridge dials it N times and pipes each socket to a
//                                   channel (weft is the client on each)
//   node bridge-peer.mjs client     an official client Repo (WebSocketClientAdapter) dialling
//                                   a WebSocket server in the bridge, whose socket is piped
//                                   to channel 0 (weft is the server)
//   node bridge-peer.mjs ws-client URL   an official client Repo dialling URL (a weft relay)
//                                        over a real socket; stdio carries control only
//   node bridge-peer.mjs ws-server       an official server Repo on a real socket; its
//                                        ws:// URL is in the "ready" event
//
// stdio framing, both ways: u32 big-endian length of what follows, one channel byte, payload.
// Channels 0..N-1 carry WebSocket binary messages as is; channel 255 carries JSON:
//   commands in:  {"cmd":"create","value":{...}} {"cmd":"read","url":...}
//                 {"cmd":"change","url":...,"key":...,"value":...}
//                 {"cmd":"broadcast","url":...,"message":{...}} {"cmd":"missing"} {"cmd":"exit"}
//   answers out:  {"event":"ready","url"?} {"event":"created","url":...}
//                 {"event":"doc","url":...,"doc":{...},"heads":[...]} {"event":"changed"}
//                 {"event":"broadcast"} {"event":"unavailable","ms":...} (for "missing":
//                 how long a find of a random document took to be refused)
//                 {"event":"error","message":...}
//   unasked:      {"event":"ephemeral","url":...,"senderId":...,"message":...} for documents
//                 this peer created or read
// Exits when stdin ends or on "exit"; a watchdog ends it after 60 s in any case.

import { Repo, generateAutomergeUrl } from "@automerge/automerge-repo"
import {
  NodeWSServerAdapter,
  WebSocketClientAdapter,
} from "@automerge/automerge-repo-network-websocket"
import { DummyStorageAdapter } from "@automerge/automerge-repo/helpers/DummyStorageAdapter.js"
import { WebSocket, WebSocketServer } from "ws"

const CONTROL = 255
const [mode, count] = [process.argv[2], Number(process.argv[3] ?? 1)]
setTimeout(() => process.exit(3), 60_000).unref()

function emit(channel, payload) {
  const header = Buffer.alloc(5)
  header.writeUInt32BE(payload.length + 1, 0)
  header.writeUInt8(channel, 4)
  process.stdout.write(Buffer.concat([header, payload]))
}
const event = value => emit(CONTROL, Buffer.from(JSON.stringify(value)))

const sockets = new Map() // channel -> socket (open)
const pending = new Map() // channel -> frames before open
function toSocket(channel, payload) {
  const socket = sockets.get(channel)
  if (socket) socket.send(payload)
  else pending.set(channel, [...(pending.get(channel) ?? []), payload])
}
function attach(channel, socket) {
  socket.binaryType = "arraybuffer"
  socket.on("message", data => emit(channel, Buffer.from(data)))
  sockets.set(channel, socket)
  for (const payload of pending.get(channel) ?? []) socket.send(payload)
  pending.delete(channel)
}

const wss = mode === "ws-client" ? null : new WebSocketServer({ host: "127.0.0.1", port: 0 })
if (wss) await new Promise(resolve => wss.on("listening", resolve))
const url = wss ? `ws://127.0.0.1:${wss.address().port}` : process.argv[3]
let repo
if (mode === "server" || mode === "ws-server") {
  repo = new Repo({
    network: [new NodeWSServerAdapter(wss)],
    peerId: "js-server",
    storage: new DummyStorageAdapter(),
    sharePolicy: async () => false,
  })
  for (let channel = 0; mode === "server" && channel < count; channel++) {
    const socket = new WebSocket(url)
    socket.on("open", () => attach(channel, socket))
  }
} else if (mode === "ws-client") {
  repo = new Repo({
    network: [new WebSocketClientAdapter(url)],
    peerId: "js-client",
    storage: new DummyStorageAdapter(),
  })
} else {
  let next = 0
  wss.on("connection", socket => attach(next++, socket))
  repo = new Repo({
    network: [new WebSocketClientAdapter(url)],
    peerId: "js-client",
    storage: new DummyStorageAdapter(),
  })
}

const listening = new Set()
function listen(handle) {
  if (listening.has(handle.url)) return
  listening.add(handle.url)
  handle.on("ephemeral-message", ({ senderId, message }) =>
    event({ event: "ephemeral", url: handle.url, senderId, message }),
  )
}

async function command(c) {
  try {
    if (c.cmd === "create") {
      const handle = repo.create(c.value)
      listen(handle)
      event({ event: "created", url: handle.url })
    } else if (c.cmd === "read") {
      const handle = await repo.find(c.url)
      listen(handle)
      event({ event: "doc", url: c.url, doc: handle.doc(), heads: handle.heads() })
    } else if (c.cmd === "broadcast") {
      const handle = await repo.find(c.url)
      listen(handle)
      handle.broadcast(c.message)
      event({ event: "broadcast" })
    } else if (c.cmd === "missing") {
      const started = Date.now()
      try {
        await repo.find(generateAutomergeUrl())
        event({ event: "error", message: "a random document was found" })
      } catch (error) {
        event({ event: "unavailable", ms: Date.now() - started, message: String(error) })
      }
    } else if (c.cmd === "change") {
      const handle = await repo.find(c.url)
      handle.change(d => {
        d[c.key] = c.value
      })
      event({ event: "changed" })
    } else if (c.cmd === "exit") {
      await repo.shutdown().catch(() => {})
      process.exit(0)
    }
  } catch (error) {
    event({ event: "error", message: String(error) })
  }
}

let buffered = Buffer.alloc(0)
process.stdin.on("data", chunk => {
  buffered = Buffer.concat([buffered, chunk])
  while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
    const length = buffered.readUInt32BE(0)
    const channel = buffered.readUInt8(4)
    const payload = buffered.subarray(5, 4 + length)
    buffered = buffered.subarray(4 + length)
    if (channel === CONTROL) command(JSON.parse(payload.toString()))
    else toSocket(channel, payload)
  }
})
process.stdin.on("end", () => process.exit(0))
event({ event: "ready", url })
