/**
 * Ed25519 public keys from a JWKS, and the one-shot signature check on the hot path.
 *
 * The signature primitive is Node's synchronous `crypto.verify` on a cached `KeyObject`: it is
 * the physical limit the benchmarks measure against. (jose 6 verifies through WebCrypto's async
 * path, measured at ~0.55× that rate here; the structural and claim rules jose would add are
 * enforced by this package itself, more strictly.)
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

/**
 * Turns one JWKS entry into a verification key, or says why it is not a candidate (§3):
 * `kty: OKP`, `crv: Ed25519`, `use` absent or `sig`, `alg` absent, `EdDSA` or `Ed25519` (RFC 9864's
 * fully specified name of the same algorithm), `key_ops` absent or an array containing `verify`
 * (RFC 7517 §4.3: a key published for other operations is not a verification key), `ext` absent or
 * a boolean, no private `d`, `x` a canonical base64url encoding of 32 bytes that is not a
 * small-order point.
 *
 * @internal
 */
export function importEd25519Jwk(jwk: unknown): { kid: string; key: KeyObject } | KeyRejection {
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
  try {
    // Only the public members we checked are handed to OpenSSL.
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' })
    return { kid: k.kid, key }
  } catch {
    return 'bad_x' // not a point on the curve
  }
}

/**
 * Verifies an Ed25519 signature (given as canonical base64url of 64 bytes) over an ASCII signing
 * input. Never throws.
 *
 * @internal
 */
export function verifyEd25519(key: KeyObject, signingInput: string, signature: string): boolean {
  if (signature.length !== 86) return false // 64 bytes, unpadded base64url
  try {
    return verify(
      null,
      Buffer.from(signingInput, 'latin1'),
      key,
      Buffer.from(signature, 'base64url'),
    )
  } catch {
    return false
  }
}
