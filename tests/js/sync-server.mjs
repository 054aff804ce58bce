// The official automerge-repo sync server, set up as automerge-repo-sync-server sets it up
// (NodeWSServerAdapter, NodeFSStorageAdapter, sharePolicy false), for the cold-sync benchmark
// (server/benches/cold_sync.rs), which runs it beside weft-relay on the same documents.
//
//   node sync-server.mjs import STORAGE_DIR SEED_DIR
//       stores every SEED_DIR/<documentId>.am (automerge bytes) under its id, flushes to
//       STORAGE_DIR and exits; prints {"imported":N}
//   node sync-server.mjs serve STORAGE_DIR
//       serves STORAGE_DIR on ws://127.0.0.1:<free port>; prints {"url":...} once listening;
//       exits when stdin ends (so it never outlives the benchmark)

import { readFile, readdir } from "node:fs/promises"
import { join } from "node:path"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { WebSocketServer } from "ws"

const [mode, storageDir, seedDir] = process.argv.slice(2)
const print = value => process.stdout.write(JSON.stringify(value) + "\n")

if (mode === "import") {
  const repo = new Repo({ network: [], storage: new NodeFSStorageAdapter(storageDir) })
  const files = (await readdir(seedDir)).filter(name => name.endsWith(".am"))
  for (const name of files) {
    const bytes = await readFile(join(seedDir, name))
    repo.import(new Uint8Array(bytes), { docId: name.slice(0, -".am".length) })
  }
  await repo.flush()
  await repo.shutdown()
  print({ imported: files.length })
} else if (mode === "serve") {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise(resolve => wss.on("listening", resolve))
  const repo = new Repo({
    network: [new NodeWSServerAdapter(wss)],
    storage: new NodeFSStorageAdapter(storageDir),
    peerId: "automerge-repo-sync-server",
    sharePolicy: async () => false,
  })
  // The adapter starts handling sockets only once the repo has its storage id; a client
  // that connects earlier is never answered. Announce the URL after that.
  for (let tries = 0; wss.listenerCount("connection") === 0; tries++) {
    if (tries > 1000) throw new Error("the server adapter never started")
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  print({ url: `ws://127.0.0.1:${wss.address().port}` })
  // A server that only serves has nothing of its own to flush; automerge-repo's shutdown
  // can also reject (flushing handles that never became ready), so just exit.
  process.stdin.on("end", () => process.exit(0))
  process.stdin.resume()
} else {
  console.error("usage: node sync-server.mjs import STORAGE_DIR SEED_DIR | serve STORAGE_DIR")
  process.exit(2)
}
