// Edwards25519 arithmetic in BigInt, for tests only (slow, variable time): enough to make the keys
// and signatures no key generator produces — mixed-order keys (a·B plus a small-order point),
// small-order R, non-canonical encodings, S ≥ L — so both Ed25519 backends can be compared on them.
import { createHash, randomBytes } from 'node:crypto'

export const P = (1n << 255n) - 19n
export const L = (1n << 252n) + 27742317777372353535851937790883648493n

const mod = (a: bigint, m = P): bigint => ((a % m) + m) % m
function pow(base: bigint, exp: bigint, m = P): bigint {
  let result = 1n
  let b = mod(base, m)
  let e = exp
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m
    b = (b * b) % m
    e >>= 1n
  }
  return result
}
const inv = (a: bigint): bigint => pow(a, P - 2n)
const D = mod(-121665n * inv(121666n))
const SQRT_M1 = pow(2n, (P - 1n) / 4n)

/** A point in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z. */
export interface Point {
  X: bigint
  Y: bigint
  Z: bigint
  T: bigint
}

export const IDENTITY: Point = { X: 0n, Y: 1n, Z: 1n, T: 0n }

export function add(p: Point, q: Point): Point {
  const a = mod((p.Y - p.X) * (q.Y - q.X))
  const b = mod((p.Y + p.X) * (q.Y + q.X))
  const c = mod(p.T * 2n * D * q.T)
  const d = mod(p.Z * 2n * q.Z)
  const e = b - a
  const f = d - c
  const g = d + c
  const h = b + a
  return { X: mod(e * f), Y: mod(g * h), Z: mod(f * g), T: mod(e * h) }
}

export function mul(p: Point, n: bigint): Point {
  let result = IDENTITY
  let addend = p
  let k = n
  while (k > 0n) {
    if (k & 1n) result = add(result, addend)
    addend = add(addend, addend)
    k >>= 1n
  }
  return result
}

export function negate(p: Point): Point {
  return { X: mod(-p.X), Y: p.Y, Z: p.Z, T: mod(-p.T) }
}

/** The canonical 32-byte encoding (RFC 8032 §5.1.2). */
export function encode(p: Point): Buffer {
  const zi = inv(p.Z)
  const x = mod(p.X * zi)
  const y = mod(p.Y * zi)
  return encodeY(y, (x & 1n) === 1n)
}

/** y (any value below 2^255, so also a non-canonical y ≥ p) with the sign bit. */
export function encodeY(y: bigint, signBit: boolean): Buffer {
  const bytes = Buffer.alloc(32)
  let v = y
  for (let i = 0; i < 32; i++) {
    bytes[i] = Number(v & 0xffn)
    v >>= 8n
  }
  if (signBit) bytes[31]! |= 0x80
  return bytes
}

export function littleEndian(bytes: Uint8Array): bigint {
  let v = 0n
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!)
  return v
}

/** The point of y (reduced mod p) with the sign bit, or undefined when y is not on the curve. */
export function pointOfY(y: bigint, signBit: boolean): Point | undefined {
  const yy = mod(y)
  const u = mod(yy * yy - 1n)
  const v = mod(D * yy * yy + 1n)
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n))
  if (mod(v * x * x) !== u) {
    if (mod(v * x * x) !== mod(-u)) return undefined
    x = mod(x * SQRT_M1)
  }
  if (x === 0n && signBit) return undefined
  if ((x & 1n) !== (signBit ? 1n : 0n)) x = mod(-x)
  return { X: x, Y: yy, Z: 1n, T: mod(x * yy) }
}

export const BASE: Point = pointOfY(mod(4n * inv(5n)), false)!

const equal = (p: Point, q: Point): boolean =>
  mod(p.X * q.Z - q.X * p.Z) === 0n && mod(p.Y * q.Z - q.Y * p.Z) === 0n

/** The eight small-order points, by order: 1, 2, 4, 4, 8, 8, 8, 8. */
export const SMALL_ORDER: readonly Point[] = (() => {
  const t8 = pointOfY(0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n, false)!
  return Array.from({ length: 8 }, (_, i) => mul(t8, BigInt(i)))
})()

export function randomScalar(): bigint {
  return mod(littleEndian(randomBytes(64)), L)
}

function challenge(r: Uint8Array, a: Uint8Array, message: Uint8Array): bigint {
  const digest = createHash('sha512').update(r).update(a).update(message).digest()
  return mod(littleEndian(digest), L)
}

/** A key pair with secret scalar `a`: A = a·B + torsion (IDENTITY: an ordinary key). */
export interface TestKey {
  readonly a: bigint
  readonly point: Point
  /** The 32 bytes a JWKS publishes: `encode(point)` unless a test chose another encoding. */
  readonly bytes: Buffer
}

export function makeKey(torsion: Point = IDENTITY, a = randomScalar()): TestKey {
  const point = add(mul(BASE, a), torsion)
  return { a, point, bytes: encode(point) }
}

/** RFC 8032 signing with the scalar `a` (and a random nonce), over the key's own encoding. */
export function sign(key: TestKey, message: Uint8Array): Buffer {
  const r = randomScalar()
  const R = encode(mul(BASE, r))
  const h = challenge(R, key.bytes, message)
  return Buffer.concat([R, encodeY(mod(r + h * key.a, L), false)])
}

/**
 * For a key with a small-order component: a signature whose R is a small-order point and which
 * the cofactorless equation [S]B = R + [h]A accepts (S = h·a, R = -[h]·torsion), found by varying
 * the message's suffix. Returns the message and signature, or undefined after `tries`.
 */
export function smallOrderRSignature(
  key: TestKey,
  torsion: Point,
  message: (i: number) => Buffer,
  tries = 96,
): { message: Buffer; signature: Buffer } | undefined {
  for (let i = 0; i < tries; i++) {
    const m = message(i)
    for (const q of SMALL_ORDER) {
      const R = encode(q)
      const h = challenge(R, key.bytes, m)
      if (equal(negate(mul(torsion, h % 8n)), q)) {
        return { message: m, signature: Buffer.concat([R, encodeY(mod(h * key.a, L), false)]) }
      }
    }
  }
  return undefined
}

/** The y values 2 ≤ y < 19 that are on the curve: y + p is then a non-canonical encoding. */
export const NON_CANONICAL_YS: readonly bigint[] = Array.from({ length: 17 }, (_, i) =>
  BigInt(i + 2),
).filter((y) => pointOfY(y, false) !== undefined)
