// What the browser tests run against: weft-relay processes serving the built editor, and
// Debian's chromium driven by playwright-core. Everything on 127.0.0.1, cleaned up after.
import { spawn, execFileSync } from "node:child_process"
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { chromium } from "playwright-core"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, "target")

/** The relay binary (built by `scripts/test-browser`), the built page, and where artifacts go. */
export const relayBinary = process.env.WEFT_RELAY_BIN ?? join(targetDir, "debug", "weft-relay")
export const editorDist = process.env.WEFT_EDITOR_DIST ?? join(root, "examples", "collab-editor", "dist")
export const artifactsDir = process.env.WEFT_BROWSER_ARTIFACTS ?? join(targetDir, "browser-artifacts")
mkdirSync(artifactsDir, { recursive: true })

const STARTUP_MS = 15_000

/**
 * Starts `weft-relay --web <editor>` on a free port with a fresh data folder. Resolves to
 * `{ httpUrl, dataDir, stop }` once it logged its address; its log goes to the artifacts.
 */
export async function startRelay(name, flags = []) {
  const dataDir = mkdtempSync(join(tmpdir(), `weft-browser-${name}-`))
  return startRelayOn(name, dataDir, "127.0.0.1:0", flags)
}

/** Starts a relay on `dataDir` listening on `listen` (to restart one on its old port). */
export async function startRelayOn(name, dataDir, listen, flags = []) {
  const child = spawn(relayBinary, ["--listen", listen, "--data", dataDir, "--web", editorDist, ...flags], {
    stdio: ["ignore", "ignore", "pipe"],
  })
  const log = createWriteStream(join(artifactsDir, `relay-${name}.log`), { flags: "a" })
  const lines = createInterface({ input: child.stderr })
  const address = await new Promise((resolveAddress, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay ${name} did not start in time`)), STARTUP_MS)
    child.once("exit", (code) => reject(new Error(`relay ${name} exited with ${code} before listening`)))
    lines.on("line", (line) => {
      log.write(`${line}\n`)
      const found = /address=(\S+)/.exec(line)
      if (found) {
        clearTimeout(timer)
        resolveAddress(found[1])
      }
    })
  })
  const exited = new Promise((done) => child.once("exit", done))
  return {
    httpUrl: `http://${address}/`,
    address,
    dataDir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    },
    async remove() {
      await this.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** A token signed with the relay's generated secret that may read and write everything. */
export function mintToken(dataDir) {
  return execFileSync(relayBinary, ["token", "--data", dataDir, "--write", "*", "--subject", "browser-test"], {
    encoding: "utf8",
  }).trim()
}

/**
 * Debian's chromium, with the flags that keep it from reaching for Google's services on a
 * closed network. playwright gives each launch a fresh, empty profile folder of its own
 * (it refuses a `--user-data-dir` argument), and each context its own storage.
 */
export async function launchChromium() {
  return chromium.launch({
    executablePath: process.env.WEFT_CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  })
}
