// Generates JS-side fixtures for automerge-repo document ids and URLs.
//
//   node make-id-fixtures.mjs > ../../core/tests/fixtures/js-ids.json
//
// Everything here is produced by the official libraries (@automerge/automerge-repo
// and @automerge/automerge) so the Rust side can check it is wire-compatible.
// Ids are random on every run; the output is a checked-in fixture.

import { readFileSync } from "node:fs"
import * as A from "@automerge/automerge"
import {
  Repo,
  cursor,
  decodeHeads,
  documentIdToBinary,
  encodeHeads,
  generateAutomergeUrl,
  interpretAsDocumentId,
  isValidAutomergeUrl,
  isValidDocumentId,
  parseAutomergeUrl,
  refFromUrl,
  stringifyAutomergeUrl,
} from "@automerge/automerge-repo"
// The ref-URL parser (automerge:<id>/<path>#<hexheads>) is not exported from the package
// entry point (and the package "exports" map hides it), so load the library's own file
// directly. It is the code refFromUrl()/findRef() use.
import { parseRefUrl } from "./node_modules/@automerge/automerge-repo/dist/refs/parser.js"

// Read versions from the installed packages (some hide package.json behind "exports").
const versionOf = name =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), "utf8")).version

const hex = bytes => Buffer.from(bytes).toString("hex")
const fromHex = s => new Uint8Array(Buffer.from(s, "hex"))

function check(cond, msg) {
  if (!cond) throw new Error("fixture self-check failed: " + msg)
}

function errorOf(fn) {
  try {
    const r = fn()
    return { threw: false, result: r }
  } catch (e) {
    return { threw: true, error_type: e?.constructor?.name ?? typeof e, error: String(e?.message ?? e) }
  }
}

// Builds a "valid" entry using only the library's own parser, and checks it round-trips.
function validEntry(url, note) {
  check(isValidAutomergeUrl(url), `isValidAutomergeUrl(${url})`)
  const p = parseAutomergeUrl(url)
  const entry = {
    url,
    documentId: p.documentId,
    bytes_hex: hex(p.binaryDocumentId),
    heads: p.heads ?? null,
    heads_hex: p.hexHeads ?? null,
    path: null,
    note,
  }
  // consistency checks against the other library functions
  check(isValidDocumentId(p.documentId), "isValidDocumentId")
  check(hex(documentIdToBinary(p.documentId)) === entry.bytes_hex, "documentIdToBinary")
  check(interpretAsDocumentId(url) === p.documentId, "interpretAsDocumentId(url)")
  check(
    stringifyAutomergeUrl(p.heads === undefined ? { documentId: p.documentId } : { documentId: p.documentId, heads: p.heads }) === url,
    "stringify round-trip"
  )
  check(stringifyAutomergeUrl({ documentId: p.binaryDocumentId, heads: p.heads }) === url, "stringify(binary) round-trip")
  if (p.heads) check(JSON.stringify(decodeHeads(p.heads)) === JSON.stringify(p.hexHeads), "decodeHeads")
  return entry
}

const valid = []

// 1. plain random URLs, exactly as Repo.create() makes them
for (let i = 0; i < 10; i++) valid.push(validEntry(generateAutomergeUrl(), "generateAutomergeUrl()"))

// 2. fixed byte patterns (leading zero bytes become leading '1' characters in base58)
for (const [bytes, note] of [
  ["00000000000000000000000000000000", "16 zero bytes"],
  ["000000000000000000000000000000ff", "15 leading zero bytes"],
  ["ffffffffffffffffffffffffffffffff", "16 0xff bytes"],
  ["00112233445566778899aabbccddeeff", "counting bytes"],
]) {
  const url = stringifyAutomergeUrl(fromHex(bytes))
  const e = validEntry(url, "stringifyAutomergeUrl(Uint8Array " + note + ")")
  check(e.bytes_hex === bytes, "bytes")
  valid.push(e)
}

// 3. URLs with heads, from real automerge change hashes
let doc1 = A.from({ title: "hello", n: 1 })
const oneHeadHex = A.getHeads(doc1)
check(oneHeadHex.length === 1, "1 head")
let fork = A.clone(doc1)
doc1 = A.change(doc1, d => {
  d.n = 2
})
fork = A.change(fork, d => {
  d.title = "world"
})
const merged = A.merge(A.clone(doc1), fork)
const twoHeadsHex = A.getHeads(merged)
check(twoHeadsHex.length === 2, "2 heads")

const docUrl = generateAutomergeUrl()
const { documentId } = parseAutomergeUrl(docUrl)
{
  const url = stringifyAutomergeUrl({ documentId, heads: encodeHeads(oneHeadHex) })
  const e = validEntry(url, "1 head: stringifyAutomergeUrl({documentId, heads: encodeHeads(A.getHeads(doc))})")
  check(JSON.stringify(e.heads_hex) === JSON.stringify(oneHeadHex), "1 head hex")
  valid.push(e)
}
{
  const url = stringifyAutomergeUrl({ documentId, heads: encodeHeads(twoHeadsHex) })
  const e = validEntry(url, "2 heads, in A.getHeads() order (sorted by hex hash)")
  check(JSON.stringify(e.heads_hex) === JSON.stringify(twoHeadsHex), "2 heads hex")
  valid.push(e)
}
{
  const rev = [...twoHeadsHex].reverse()
  const url = stringifyAutomergeUrl({ documentId, heads: encodeHeads(rev) })
  valid.push(validEntry(url, "2 heads in reverse order: JS neither sorts nor rejects, order is preserved"))
}
{
  const url = stringifyAutomergeUrl({ documentId, heads: [] })
  const e = validEntry(url, "empty heads list: stringify gives a trailing '#', parse gives heads []")
  check(url.endsWith("#") && e.heads.length === 0, "empty heads")
  valid.push(e)
}

// 4. heads URLs made by a real Repo/DocHandle (handle.view(heads).url)
const repo = new Repo()
const handle = repo.create({
  todos: [{ title: "a", id: "alice" }, { title: "b", id: "bob" }],
  "a/b": 1,
  "@at": 2,
  "100%": 3,
  text: "hello world",
})
handle.change(d => {
  d.todos[0].title = "A"
})
{
  const headsNow = handle.heads()
  const viewUrl = handle.view(headsNow).url
  const e = validEntry(viewUrl, "DocHandle.view(handle.heads()).url")
  check(JSON.stringify(e.heads) === JSON.stringify(headsNow), "view heads")
  valid.push(e)
  valid.push(validEntry(handle.url, "DocHandle.url (no heads)"))
}

// 5. ref URLs (automerge:<id>/<path>[#<hex heads>]): the experimental "refs" API.
// These are NOT accepted by isValidAutomergeUrl/parseAutomergeUrl in this version.
const refSpecs = [
  [["todos", 0, "title"], "key / index / key"],
  [["a/b"], "key containing '/' (percent-encoded)"],
  [["@at"], "key starting with '@' (escaped with %5C)"],
  [["100%"], "key containing '%'"],
  [["todos", { id: "bob" }, "title"], "match pattern segment"],
  [["text", cursor(0, 5)], "cursor range segment"],
  [["text", cursor(3)], "collapsed cursor segment"],
]
const refUrls = []
const mkRef = (h, segs, note) => {
  const ref = h.ref(...segs)
  const url = ref.url
  const parsed = parseRefUrl(url)
  const back = refFromUrl(handle, url)
  refUrls.push({
    url,
    documentId: parsed.documentId,
    path: url.slice("automerge:".length + parsed.documentId.length + 1).split("#")[0],
    segments: parsed.segments,
    heads_hex: parsed.heads ?? null,
    value: ref.value() ?? null,
    value_via_refFromUrl: back.value() ?? null,
    isValidAutomergeUrl: isValidAutomergeUrl(url),
    parseAutomergeUrl: errorOf(() => parseAutomergeUrl(url)),
    note,
  })
}
for (const [segs, note] of refSpecs) mkRef(handle, segs, note)
{
  const viewHandle = handle.view(handle.heads())
  mkRef(viewHandle, ["todos", 0, "title"], "ref on a view handle: heads appended as '#' + HEX hashes joined by '|'")
}

// 6. invalid inputs
const good = generateAutomergeUrl()
const goodId = good.slice("automerge:".length)
const lastChar = goodId[goodId.length - 1]
const badChecksumId = goodId.slice(0, -1) + (lastChar === "2" ? "3" : "2")
const goodHead = encodeHeads(oneHeadHex)[0]
const badHead = goodHead.slice(0, -1) + (goodHead.endsWith("2") ? "3" : "2")
const invalidInputs = [
  ["", "empty string"],
  ["automerge:", "prefix only"],
  [goodId, "bare documentId, no prefix"],
  ["Automerge:" + goodId, "prefix is case-sensitive"],
  ["automerge://" + goodId, "no '//' allowed"],
  ["am:" + goodId, "wrong prefix"],
  ["automerge:" + badChecksumId, "bad checksum (last char changed)"],
  ["automerge:0OIl" + goodId.slice(4), "\\w characters that are not in the base58 alphabet (0 O I l)"],
  ["automerge:" + goodId + "_", "underscore: matches \\w but is not base58"],
  [" automerge:" + goodId, "leading space"],
  ["automerge:" + goodId + " ", "trailing space"],
  ["automerge:" + goodId + "/", "trailing slash"],
  ["automerge:" + goodId + "/todos/0", "path part (only the refs API accepts this)"],
  ["automerge:" + goodId + "?x=1", "query string"],
  ["automerge:" + goodId + "#" + goodHead + "#" + goodHead, "two '#' sections"],
  ["automerge:" + goodId + "#" + badHead, "head with bad checksum"],
  ["automerge:" + goodId + "#" + oneHeadHex[0], "head given as hex instead of bs58check"],
  ["automerge:" + goodId + "#" + goodHead + "|", "trailing '|' (empty head)"],
  ["automerge:" + goodId + "#|" + goodHead, "leading '|' (empty head)"],
  ["automerge:" + goodId + "#" + goodHead + "," + goodHead, "',' as heads separator"],
  ["automerge:f47ac10b-58cc-4372-a567-0e02b2c3d479", "legacy UUID inside a URL"],
  ["f47ac10b-58cc-4372-a567-0e02b2c3d479", "bare legacy UUID is not a URL"],
]
const invalid = invalidInputs.map(([input, note]) => {
  const v = isValidAutomergeUrl(input)
  check(v === false, "expected invalid: " + input)
  const p = errorOf(() => parseAutomergeUrl(input))
  const entry = { input, note, isValidAutomergeUrl: v }
  if (p.threw) {
    entry.error_type = p.error_type
    entry.error = p.error
  } else {
    entry.error = null
    entry.parse_result = { ...p.result, binaryDocumentId: p.result.binaryDocumentId ? hex(p.result.binaryDocumentId) : null }
  }
  return entry
})

// 7. inputs JS ACCEPTS although they are not "16-byte id / 32-byte hash"
//    (documentIdToBinary = bs58check.decodeUnsafe: any payload length; heads: bs58check.decode, any length)
const lenientInputs = [
  [stringifyAutomergeUrl(new Uint8Array(0)), "bs58check of a 0-byte payload as documentId"],
  [stringifyAutomergeUrl(fromHex("0102030405060708")), "bs58check of an 8-byte payload as documentId"],
  [stringifyAutomergeUrl(fromHex("00".repeat(15) + "01" + "ff".repeat(16))), "bs58check of a 32-byte payload as documentId"],
  [good + "#" + encodeHeads(["0102030405060708"])[0], "head that is an 8-byte payload"],
  [good + "#" + goodHead + "|" + goodHead, "duplicate heads"],
]
const accepted_lenient = lenientInputs.map(([input, note]) => {
  const v = isValidAutomergeUrl(input)
  const p = errorOf(() => parseAutomergeUrl(input))
  return {
    input,
    note,
    isValidAutomergeUrl: v,
    documentId: p.threw ? null : p.result.documentId,
    bytes_hex: p.threw ? null : hex(p.result.binaryDocumentId),
    heads: p.threw ? null : (p.result.heads ?? null),
    heads_hex: p.threw ? null : (p.result.hexHeads ?? null),
    error: p.threw ? p.error : null,
  }
})

// 8. legacy UUIDs -> documentId via interpretAsDocumentId (prints a console.warn on stderr)
const legacyInputs = [
  "f47ac10b-58cc-4372-a567-0e02b2c3d479",
  "F47AC10B-58CC-4372-A567-0E02B2C3D479",
  "00000000-0000-0000-0000-000000000000",
  "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
  "6f9619ff-8b86-d011-b42d-00cf4fc964ff",
  "f47ac10b58cc4372a5670e02b2c3d479",
]
const legacy_uuid = legacyInputs.map(uuid => {
  const r = errorOf(() => interpretAsDocumentId(uuid))
  if (r.threw) return { uuid, documentId: null, url: null, bytes_hex: null, error: r.error }
  const documentId = r.result
  return {
    uuid,
    documentId,
    url: stringifyAutomergeUrl({ documentId }),
    bytes_hex: hex(documentIdToBinary(documentId)),
    error: null,
  }
})

const out = {
  generated_by: "tests/js/make-id-fixtures.mjs",
  versions: {
    node: process.versions.node,
    "@automerge/automerge-repo": versionOf("@automerge/automerge-repo"),
    "@automerge/automerge": versionOf("@automerge/automerge"),
    bs58check: versionOf("bs58check"),
    uuid: versionOf("uuid"),
  },
  format: {
    prefix: "automerge:",
    document_id: "bs58check(16 random bytes) = base58btc(payload || sha256(sha256(payload))[0..4])",
    base58_alphabet: "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz",
    url: "automerge:<documentId>[#<head>(|<head>)*]  (heads section may be empty)",
    head: "bs58check(32-byte change hash), in the order given (DocHandle uses A.getHeads order: ascending hex)",
    ref_url: "automerge:<documentId>/<seg>(/<seg>)*[#<hexhead>(|<hexhead>)*]  (refs API only; not a valid AutomergeUrl)",
  },
  valid,
  invalid,
  accepted_lenient,
  legacy_uuid,
  ref_urls: refUrls,
}

process.stdout.write(JSON.stringify(out, null, 2) + "\n")
// Repo may hold timers; we are done.
process.exit(0)
