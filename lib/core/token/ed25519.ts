/**
 * Ed25519 public keys from a JWKS, and the one-shot signature check on the hot path.
 *
 * The signature primitive is a backend's: by default Node's synchronous `crypto.verify` on a
 * cached `KeyObject`; opt-in, libsodium's `crypto_sign_verify_detached` on the cached raw 32 bytes
 * (`./ed25519-backend.ts`). Every rule that decides a verdict apart from the curve equation is
 * ours and runs in front of either backend, so both answer alike (docs/ed25519-backends.md):
 * keys must be canonical and not of small order (at import), a signature's `R` must not be of
 * small order (here), and `S < L` (both primitives check it). (jose 6 verifies through
 * WebCrypto's async path, measured at ~0.55× `crypto.verify` here.)
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto'
import { isCanonicalBase64url, isEd25519Alg } from './token.js'

// p = 2^255 - 19, the field prime of edwards25519.
const P = (1n << 255n) - 19n

// The y-coordinates (mod p) of the eight small-order points (RFC 8032 §5.1; list in
// test/vectors/SOURCE.md): identity (y=1), order 2 (y=-1), order 4 (y=0), order 8 (two values).
// With any of them as a public key, R = the point's encoding and S = 0 verify for every message.
const SMALL_ORDER_Y = new Set<bigint>([
  0n,
  1n,
  P - 1n,
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
  0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n,
])

// The small-order points' canonical encodings with the sign bit cleared, by first byte (libsodium
// keeps the same list): y = 0, 1, the two order-8 values, and p - 1, p, p + 1 (the last two
// non-canonical). A signature whose R is one of them (either sign bit) is refused, see below.
const SMALL_ORDER_R = (() => {
  const hex = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ]
  const byFirst = new Map<number, Buffer[]>()
  for (const h of hex) {
    const bytes = Buffer.from(h, 'hex')
    byFirst.set(bytes[0]!, [...(byFirst.get(bytes[0]!) ?? []), bytes])
  }
  return byFirst
})()

/**
 * Whether the `R` half of a 64-byte signature encodes a point of small order (either sign bit,
 * canonical or not). An honest signer's `R = rB` never is; with a key that has a small-order
 * component, OpenSSL's cofactorless check can accept such an `R` where libsodium refuses it, so we
 * refuse it for both backends. Costs one table lookup unless the first byte matches.
 *
 * @internal
 */
export function hasSmallOrderR(signature: Uint8Array): boolean {
  const candidates = SMALL_ORDER_R.get(signature[0]!)
  if (candidates === undefined) return false
  outer: for (const c of candidates) {
    for (let i = 1; i < 31; i++) if (signature[i] !== c[i]) continue outer
    if ((signature[31]! & 0x7f) === c[31]) return true
  }
  return false
}

function littleEndianY(bytes: Uint8Array): bigint {
  let y = 0n
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]!)
  return y & ((1n << 255n) - 1n) // bit 255 is the sign of x
}

/**
 * Whether a 32-byte Ed25519 public key encodes a point of small order, canonically or not
 * (y ≥ p reduces to the same point). Such keys must never be trusted.
 *
 * @internal
 */
export function isSmallOrderPoint(bytes: Uint8Array): boolean {
  return bytes.length === 32 && SMALL_ORDER_Y.has(littleEndianY(bytes) % P)
}

/**
 * Whether a 32-byte public key encodes its y coordinate canonically (y < p). Non-canonical
 * encodings of large-order points are refused at import: libsodium refuses them at every verify,
 * OpenSSL would reduce them, and no key generator produces them.
 *
 * @internal
 */
export function isCanonicalPoint(bytes: Uint8Array): boolean {
  return bytes.length === 32 && littleEndianY(bytes) < P
}

/**
 * A public key as a backend holds it: a `KeyObject` for `node:crypto`, the raw 32 bytes for
 * libsodium. Cached per kid by the JWKS cache either way.
 *
 * @internal
 */
export type Ed25519Key = KeyObject | Buffer

/**
 * The names `options.ed25519` accepts.
 *
 * @example
 * ```ts
 * const backend: Ed25519BackendName = 'libsodium' // needs `npm install sodium-native`
 * ```
 */
export type Ed25519BackendName = 'node:crypto' | 'libsodium'

/**
 * One Ed25519 primitive: turns the 32 checked key bytes into its key, and checks a 64-byte
 * signature. It decides only the curve equation; every other rule runs before it, the same for
 * every backend.
 *
 * @internal
 */
export interface Ed25519Backend {
  readonly name: Ed25519BackendName
  /** The key for 32 bytes that passed import's checks (canonical, not of small order). */
  importKey(bytes: Buffer, x: string): Ed25519Key
  /** The verdict on `signature` (64 bytes) over `message`; never throws. */
  verify(key: Ed25519Key, message: Buffer, signature: Buffer): boolean
}

/**
 * The default backend: OpenSSL through `node:crypto`, on a cached `KeyObject`.
 *
 * @internal
 */
export const NODE_CRYPTO_BACKEND: Ed25519Backend = Object.freeze({
  name: 'node:crypto' as const,
  importKey(_bytes: Buffer, x: string): Ed25519Key {
    // Only the public member we checked is handed to OpenSSL.
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
  },
  verify(key: Ed25519Key, message: Buffer, signature: Buffer): boolean {
    try {
      return verify(null, message, key as KeyObject, signature)
    } catch {
      return false
    }
  },
})

/**
 * Why a JWKS entry was not taken as a candidate key.
 *
 * @internal
 */
export type KeyRejection =
  | 'not_object'
  | 'no_kid'
  | 'wrong_kty'
  | 'wrong_crv'
  | 'wrong_use'
  | 'wrong_alg'
  | 'wrong_key_ops'
  | 'bad_ext'
  | 'private_key'
  | 'bad_x'
  | 'small_order'
  | 'non_canonical_x'

/**
 * Turns one JWKS entry into a verification key, or says why it is not a candidate (§3):
 * `kty: OKP`, `crv: Ed25519`, `use` absent or `sig`, `alg` absent, `EdDSA` or `Ed25519` (RFC 9864's
 * fully specified name of the same algorithm), `key_ops` absent or an array containing `verify`
 * (RFC 7517 §4.3: a key published for other operations is not a verification key), `ext` absent or
 * a boolean, no private `d`, `x` a canonical base64url encoding of 32 bytes that is not a
 * small-order point and encodes its y coordinate canonically. The key is made by `backend` (default
 * `node:crypto`).
 *
 * @internal
 */
export function importEd25519Jwk(
  jwk: unknown,
  backend: Ed25519Backend = NODE_CRYPTO_BACKEND,
): { kid: string; key: Ed25519Key } | KeyRejection {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return 'not_object'
  const k = jwk as Record<string, unknown>
  if (typeof k.kid !== 'string' || k.kid.length === 0) return 'no_kid'
  if (k.kty !== 'OKP') return 'wrong_kty'
  if (k.crv !== 'Ed25519') return 'wrong_crv'
  if (k.use !== undefined && k.use !== 'sig') return 'wrong_use'
  if (k.alg !== undefined && !isEd25519Alg(k.alg)) return 'wrong_alg'
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) {
    return 'wrong_key_ops'
  }
  if (k.ext !== undefined && typeof k.ext !== 'boolean') return 'bad_ext'
  if (k.d !== undefined) return 'private_key'
  if (typeof k.x !== 'string' || k.x.length !== 43 || !isCanonicalBase64url(k.x)) return 'bad_x'
  const bytes = Buffer.from(k.x, 'base64url')
  if (isSmallOrderPoint(bytes)) return 'small_order'
  if (!isCanonicalPoint(bytes)) return 'non_canonical_x'
  try {
    return { kid: k.kid, key: backend.importKey(bytes, k.x) }
  } catch {
    return 'bad_x'
  }
}

/**
 * Verifies an Ed25519 signature (given as canonical base64url of 64 bytes) over an ASCII signing
 * input with `backend` (default `node:crypto`). A small-order `R` is refused before the backend
 * runs. Never throws.
 *
 * @internal
 */
export function verifyEd25519(
  key: Ed25519Key,
  signingInput: string,
  signature: string,
  backend: Ed25519Backend = NODE_CRYPTO_BACKEND,
): boolean {
  if (signature.length !== 86) return false // 64 bytes, unpadded base64url
  // Both inputs are written into buffers of this module, not allocated per call: a backend's verify
  // is synchronous, so nothing else can run between the writes and the verdict.
  if (SIGNATURE.write(signature, 0, 'base64url') !== 64 || hasSmallOrderR(SIGNATURE)) return false
  if (signingInput.length > MESSAGE.length) return false // longer than any token we parse
  return backend.verify(key, messageView(MESSAGE.write(signingInput, 0, 'latin1')), SIGNATURE)
}

const SIGNATURE = Buffer.allocUnsafeSlow(64)
// A signing input is shorter than the largest token (8 KiB, token.ts).
const MESSAGE = Buffer.allocUnsafeSlow(8192)
// The view of MESSAGE's first bytes last used: tokens of one issuer mostly share one length.
let lastView = MESSAGE.subarray(0, 0)
function messageView(length: number): Buffer {
  if (lastView.length !== length) lastView = MESSAGE.subarray(0, length)
  return lastView
}
