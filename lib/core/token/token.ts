/**
 * The compact-JWS grammar a partner token must satisfy before any cryptography (§2,
 * RFC 8725 §3.x): bounded size, exactly three canonical base64url segments, JSON-object header and
 * payload, `alg` pinned to EdDSA (`EdDSA` or RFC 9864's `Ed25519`), no `crit`, a non-empty `kid`.
 */
import { PartnerTokenError } from '../refusals/errors.js'

/**
 * The two names of EdDSA over Ed25519 a token header or a JWK may carry (§2, §3): `EdDSA` (RFC 8037)
 * and `Ed25519` (RFC 9864). Exact strings: `ed25519`, `EdDSA ` and every other value are refused.
 * A header and a key may name it differently; both name the one algorithm the key verifies.
 *
 * @internal
 */
export function isEd25519Alg(alg: unknown): boolean {
  return alg === 'EdDSA' || alg === 'Ed25519'
}

/** Largest accepted token, in characters (§2: 8 KiB). */
const MAX_TOKEN_LENGTH = 8192

/**
 * A token that passed the structural checks; nothing in it is verified yet.
 *
 * @internal
 */
export interface ParsedToken {
  readonly header: Readonly<Record<string, unknown>>
  readonly payload: Readonly<Record<string, unknown>>
  /** The `kid` header: a non-empty string (checked). */
  readonly kid: string
  /** `<header>.<payload>`, the bytes the signature covers. */
  readonly signingInput: string
  /** The third segment, still base64url. */
  readonly signature: string
}

// base64url alphabet only: no padding, no whitespace (RFC 7515 §2, RFC 4648 §5).
const SEGMENT = /^[A-Za-z0-9_-]+$/
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * Whether a base64url segment is canonical: a length that encodes whole bytes and zero unused bits
 * in its last character. Decoders (Node's included) accept non-canonical forms, which makes the
 * token string malleable (ATTACKS.md); refusing them costs one table lookup.
 *
 * @internal
 */
export function isCanonicalBase64url(segment: string): boolean {
  if (!SEGMENT.test(segment)) return false
  const rem = segment.length % 4
  if (rem === 1) return false
  if (rem === 0) return true
  const last = ALPHABET.indexOf(segment[segment.length - 1]!)
  // 2 chars carry 1 byte (4 spare bits); 3 chars carry 2 bytes (2 spare bits).
  return (last & (rem === 2 ? 0x0f : 0x03)) === 0
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

// JSON whitespace (RFC 8259 §2) that may precede the opening brace.
const isJsonSpace = (byte: number): boolean =>
  byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d

// One buffer every segment is decoded into: decoding is synchronous and the text is copied out of it
// before anything else runs, so no token's bytes outlive its parse. A segment of the largest token
// (8 KiB of base64url) decodes to at most 6 KiB.
const scratch = Buffer.allocUnsafeSlow((MAX_TOKEN_LENGTH * 3) / 4)

function decodeJsonObject(segment: string): Record<string, unknown> | undefined {
  if (!isCanonicalBase64url(segment)) return undefined
  const length = scratch.write(segment, 0, 'base64url')
  // Only an object can pass: answer anything else without paying for a thrown SyntaxError.
  let first = 0
  while (first < length && isJsonSpace(scratch[first]!)) first++
  if (first === length || scratch[first] !== 0x7b) return undefined
  // Decoding replaces invalid UTF-8 with U+FFFD; only then is the strict decoder needed to tell an
  // encoded U+FFFD from invalid input.
  const text = scratch.toString('utf8', 0, length)
  if (text.includes('\ufffd')) {
    try {
      utf8.decode(scratch.subarray(0, length))
    } catch {
      return undefined
    }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  return value as Record<string, unknown>
}

function malformed(): PartnerTokenError {
  return new PartnerTokenError('malformed')
}

/**
 * Splits and decodes a compact JWS, enforcing §2's structural rules in order:
 * size and shape → `malformed`; `alg` other than `EdDSA` or `Ed25519` → `alg_not_allowed`; `crit` → `malformed`;
 * `kid` absent, empty or not a string → `kid_missing_or_unknown`.
 *
 * Duplicate JSON members resolve as `JSON.parse` does (the last one wins), the same value the
 * signature covers, as in jose.
 *
 * @internal
 */
export function parseToken(token: unknown): ParsedToken {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw malformed()
  }
  const first = token.indexOf('.')
  const second = first === -1 ? -1 : token.indexOf('.', first + 1)
  if (second === -1 || token.indexOf('.', second + 1) !== -1) throw malformed()
  const signature = token.slice(second + 1)
  if (first === 0 || second === first + 1 || !isCanonicalBase64url(signature)) throw malformed()

  const headerSegment = token.slice(0, first)
  // An issuer signs every token of a key with the same header: one it already passed is not
  // decoded again (the checks below are a pure function of the segment's text).
  const known = passedHeaders.get(headerSegment)
  const header = known?.header ?? decodeJsonObject(headerSegment)
  const payload = header && decodeJsonObject(token.slice(first + 1, second))
  if (!header || !payload) throw malformed()
  const signingInput = token.slice(0, second)
  if (known !== undefined) return { header, payload, kid: known.kid, signingInput, signature }

  // RFC 8725 §3.1: the algorithm is pinned, never taken from the token: EdDSA over Ed25519, under
  // either of its names (`EdDSA`, RFC 8037; `Ed25519`, RFC 9864), exactly.
  if (!isEd25519Alg(header.alg)) throw new PartnerTokenError('alg_not_allowed')
  // RFC 7515 §4.1.11: we understand no extension, so any `crit` (even empty) is refused.
  if ('crit' in header) throw malformed()
  const kid = header.kid
  if (typeof kid !== 'string' || kid.length === 0) {
    throw new PartnerTokenError('kid_missing_or_unknown')
  }
  rememberHeader(headerSegment, Object.freeze(header), kid)
  // `jku`, `x5u`, `jwk`, `x5c` are deliberately never read: keys come only from the configured JWKS.
  return { header, payload, kid, signingInput, signature }
}

// The last few header segments that passed every header check, with what they decoded to (frozen:
// shared by every token that carries the same segment). Bounded: a stream of distinct headers only
// replaces entries, it never grows the map.
const PASSED_HEADERS_MAX = 16
const passedHeaders = new Map<string, { header: Readonly<Record<string, unknown>>; kid: string }>()

function rememberHeader(segment: string, header: Readonly<Record<string, unknown>>, kid: string) {
  if (segment.length > 1024) return
  if (passedHeaders.size >= PASSED_HEADERS_MAX) {
    passedHeaders.delete(passedHeaders.keys().next().value!)
  }
  passedHeaders.set(segment, { header, kid })
}
