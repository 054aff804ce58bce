// Checks automerge URLs (e.g. made by weft's Rust code) against the official JS library.
//
//   echo '["automerge:...", "automerge:...#head1|head2"]' | node check-ids.mjs
//
// stdin:  a JSON array of strings
// stdout: a JSON array, one object per input, in order:
//   {
//     "input":      the input string,
//     "valid":      isValidAutomergeUrl(input),
//     "documentId": parseAutomergeUrl(input).documentId, or null if it throws,
//     "bytes_hex":  parseAutomergeUrl(input).binaryDocumentId as hex, or null,
//     "heads":      parseAutomergeUrl(input).heads (bs58check strings), or null if none/throws,
//     "heads_hex":  parseAutomergeUrl(input).hexHeads, or null,
//     "error":      the message parseAutomergeUrl threw, or null,
//     "ref":        parseRefUrl(input) (the refs API: automerge:<id>/<path>#<hexheads>) as
//                   { documentId, segments, heads_raw } or null; "ref_error" holds its message.
//                   heads_raw is the "#" section split on "|" with no decoding (refs write HEX hashes).
//                   Note parseRefUrl does NOT validate the documentId.
//   }
// Exit code 0 even when inputs are invalid; 1 only if the script itself fails
// (unreadable stdin, input not a JSON array of strings, ...).

import {
  isValidAutomergeUrl,
  parseAutomergeUrl,
} from "@automerge/automerge-repo"
// Not exported from the package entry point; this is the library's own ref-URL parser.
import { parseRefUrl } from "./node_modules/@automerge/automerge-repo/dist/refs/parser.js"

const hex = bytes => Buffer.from(bytes).toString("hex")
const message = e => String(e?.message ?? e)

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString("utf8")
}

function checkOne(input) {
  const out = {
    input,
    valid: isValidAutomergeUrl(input),
    documentId: null,
    bytes_hex: null,
    heads: null,
    heads_hex: null,
    error: null,
    ref: null,
    ref_error: null,
  }
  try {
    const p = parseAutomergeUrl(input)
    out.documentId = p.documentId
    out.bytes_hex = hex(p.binaryDocumentId)
    out.heads = p.heads ?? null
    out.heads_hex = p.hexHeads ?? null
  } catch (e) {
    out.error = message(e)
  }
  try {
    const r = parseRefUrl(input)
    out.ref = { documentId: r.documentId, segments: r.segments, heads_raw: r.heads ?? null }
  } catch (e) {
    out.ref_error = message(e)
  }
  return out
}

async function main() {
  const text = await readStdin()
  const inputs = JSON.parse(text)
  if (!Array.isArray(inputs) || !inputs.every(s => typeof s === "string")) {
    throw new Error("stdin must be a JSON array of strings")
  }
  process.stdout.write(JSON.stringify(inputs.map(checkOne), null, 2) + "\n")
}

main().then(
  () => process.exit(0),
  e => {
    process.stderr.write(`check-ids.mjs: ${e?.stack ?? e}\n`)
    process.exit(1)
  }
)
