// The one token-crafting module: tokens the mock would never mint. First JSON-part helpers
// (arbitrary headers and payloads), then the forgery kit of the hardening suites: raw signing of
// any bytes, HMAC tokens, signature surgery (S + L, bit flips, truncation), tokens of an exact length.
import { createHmac, sign, type KeyObject } from 'node:crypto'

export const b64url = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** Signs `<b64(header)>.<b64(payload)>` with an Ed25519 private key. */
export function signWith(
  privateKey: KeyObject,
  header: Record<string, unknown> | string,
  payload: Record<string, unknown> | string,
): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`
}

/** HS256 over the signing input keyed with `secret` (algorithm-confusion attempts). */
export function hmacToken(header: unknown, payload: unknown, secret: Buffer | string): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** Splits a compact token into its three parts. */
export function parts(token: string): [string, string, string] {
  const [h, p, s] = token.split('.')
  return [h!, p!, s!]
}

/** Decodes the payload of a compact token. */
export function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(parts(token)[1], 'base64url').toString())
}

/** Flips one bit of the character at `index` of a base64url segment, keeping it canonical. */
export function flipChar(segment: string, index: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const c = alphabet.indexOf(segment[index]!)
  // Flip the highest bit of the 6: never touches the spare low bits of a final character.
  return segment.slice(0, index) + alphabet[c ^ 0x20] + segment.slice(index + 1)
}

// ---------------------------------------------------------------------------------------------
// Forgery kit (was test/adversarial/tokens.ts)

type Part = Buffer | string | Record<string, unknown> | unknown[] | number | boolean | null

/** base64url of a part: a Buffer as its bytes, a string as its UTF-8 bytes, anything else as JSON. */
export function enc(part: Part): string {
  if (Buffer.isBuffer(part)) return part.toString('base64url')
  if (typeof part === 'string') return Buffer.from(part, 'utf8').toString('base64url')
  return Buffer.from(JSON.stringify(part), 'utf8').toString('base64url')
}

/** Ed25519-signs `<enc(header)>.<enc(payload)>` with `key`, whatever the parts contain. */
export function signRaw(key: KeyObject, header: Part, payload: Part): string {
  const input = `${enc(header)}.${enc(payload)}`
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`
}

/** An HMAC-SHA-(256|384|512) token keyed with `secret` (algorithm confusion). */
export function hmacRaw(
  bits: 256 | 384 | 512,
  header: Part,
  payload: Part,
  secret: Buffer | string,
): string {
  const input = `${enc(header)}.${enc(payload)}`
  return `${input}.${createHmac(`sha${bits}`, secret).update(input).digest('base64url')}`
}

export function split(token: string): [string, string, string] {
  const [h, p, s] = token.split('.')
  return [h!, p!, s!]
}

export function withSignature(token: string, signature: Buffer | string): string {
  const [h, p] = split(token)
  return `${h}.${p}.${Buffer.isBuffer(signature) ? signature.toString('base64url') : signature}`
}

export function signatureBytes(token: string): Buffer {
  return Buffer.from(split(token)[2], 'base64url')
}

/** The group order of edwards25519 (RFC 8032 §5.1). */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n

function leToBigInt(bytes: Buffer): bigint {
  let v = 0n
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!)
  return v
}
function bigIntToLe(v: bigint, length: number): Buffer {
  const out = Buffer.alloc(length)
  for (let i = 0; i < length; i++) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

/** The same signature with S replaced by S + L: valid under a non-strict verifier (malleability). */
export function sPlusL(signature: Buffer): Buffer {
  const s = leToBigInt(signature.subarray(32))
  return Buffer.concat([signature.subarray(0, 32), bigIntToLe(s + L, 32)])
}

/** A copy of `bytes` with bit `bit` of byte `index` flipped. */
export function flipBit(bytes: Buffer, index: number, bit = 0): Buffer {
  const out = Buffer.from(bytes)
  out[index]! ^= 1 << bit
  return out
}

/** Flips one bit of a byte inside a JSON segment, re-encoded canonically. */
export function flipInSegment(segment: string, from: string, to: string): string {
  const text = Buffer.from(segment, 'base64url').toString('utf8')
  if (!text.includes(from)) throw new Error(`segment has no ${from}`)
  return Buffer.from(text.replace(from, to), 'utf8').toString('base64url')
}

/**
 * A token of exactly `length` characters: `make(pad)` builds a token around a pad string, which is
 * grown until the length matches (the base64url length moves by 1 or 2 per byte, so two fillers
 * are tried).
 */
export function tokenOfLength(
  length: number,
  make: (pad: string, filler: string) => string,
): string {
  // Binary search on the pad, then a small neighbourhood of pads and fillers: the base64url length
  // moves by 1 or 2 per byte, so some lengths are only reached with another filler.
  let lo = 0
  let hi = length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (make('a'.repeat(mid), '').length < length) lo = mid + 1
    else hi = mid
  }
  for (let filler = 0; filler < 4; filler++) {
    for (let pad = Math.max(0, lo - 4); pad <= lo + 4; pad++) {
      const token = make('a'.repeat(pad), 'x'.repeat(filler))
      if (token.length === length) return token
    }
  }
  throw new Error(`no token of length ${length}`)
}
