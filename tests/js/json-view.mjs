// The JSON view of decoded CBOR shared by the wire scripts (and mirrored by core/tests/wire.rs):
// Uint8Array -> {"$bytes": "<hex>"}, undefined -> {"$undefined": true},
// BigInt -> {"$bigint": "<decimal>"}; everything else as is.

export const toHex = u8 => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString("hex")

export function jsonView(v) {
  if (v === undefined) return { $undefined: true }
  if (typeof v === "bigint") return { $bigint: v.toString() }
  if (v instanceof Uint8Array) return { $bytes: toHex(v) }
  if (Array.isArray(v)) return v.map(jsonView)
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonView(x)]))
  if (v !== null && typeof v === "object") {
    const o = {}
    for (const [k, x] of Object.entries(v)) o[k] = jsonView(x)
    return o
  }
  return v
}
