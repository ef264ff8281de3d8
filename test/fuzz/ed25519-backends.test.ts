// The two Ed25519 backends (`ed25519: 'node:crypto'` and `'libsodium'`) give the same verdict on
// everything: a differential property test over random and mutated keys, signatures and tokens.
//
// Keys: ordinary keys, mixed-order keys (a·B plus a point of order 2, 4 or 8), the small-order
// encodings, non-canonical encodings (y + p), random bytes. Signatures: valid, bit flips, S + k·L,
// non-canonical S, small-order R (substituted, and the forgery the cofactorless equation accepts
// for a mixed-order key), non-canonical R, random. Each case goes through the package's import and
// verify path with each backend (`importEd25519Jwk` → `verifyEd25519`), and the tokens through two
// whole `PartnerTokenVerifier`s on one loopback JWKS.
//
// The bare primitives are compared too: libsodium may refuse what OpenSSL accepts (the cases
// docs/ed25519-backends.md lists, which the rules of ours in front of both make irrelevant), never
// the other way round.
import { expect } from 'chai'
import fc from 'fast-check'
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { createRequire } from 'node:module'
import { PartnerTokenError, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { importEd25519Jwk, verifyEd25519, type Ed25519Key } from '../../dist/core/token/ed25519.js'
import { resolveEd25519Backend } from '../../dist/core/token/ed25519-backend.js'
import {
  encode,
  encodeY,
  L,
  littleEndian,
  makeKey,
  NON_CANONICAL_YS,
  P,
  sign,
  SMALL_ORDER,
  smallOrderRSignature,
  IDENTITY,
  type Point,
  type TestKey,
} from '../support/ed25519-math.js'
import { b64url } from '../support/tokens.js'
import { startCountingServer, type CountingServer } from '../support/servers.js'
import { params } from './config.js'

const sodium = createRequire(import.meta.url)('sodium-native') as {
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean
}
const NODE = resolveEd25519Backend('node:crypto')
const SODIUM = resolveEd25519Backend('libsodium')

// Deterministic secret scalars, so a failure replays with the same keys.
const scalar = (label: string): bigint =>
  littleEndian(createHash('sha512').update(label).digest()) % L

interface Signer {
  readonly label: string
  readonly key: TestKey
  readonly torsion: Point
}
const SIGNERS: readonly Signer[] = [
  { label: 'ordinary key 1', torsion: IDENTITY },
  { label: 'ordinary key 2', torsion: IDENTITY },
  { label: 'mixed order 2', torsion: SMALL_ORDER[4]! }, // 4·T8 has order 2
  { label: 'mixed order 4', torsion: SMALL_ORDER[2]! },
  { label: 'mixed order 8', torsion: SMALL_ORDER[1]! },
].map((s) => ({ ...s, key: makeKey(s.torsion, scalar(s.label)) }))

const SMALL_ORDER_ENCODINGS = SMALL_ORDER.flatMap((q) => {
  const bytes = encode(q)
  const flipped = Buffer.from(bytes)
  flipped[31]! ^= 0x80
  // y = 0 and y = 1 also have a non-canonical encoding, y + p.
  const y = littleEndian(bytes) & ((1n << 255n) - 1n)
  const extra = y + P < 1n << 255n ? [encodeY(y + P, false), encodeY(y + P, true)] : []
  return [bytes, flipped, ...extra]
})
const NON_CANONICAL_KEYS = NON_CANONICAL_YS.flatMap((y) => [
  encodeY(y + P, false),
  encodeY(y + P, true),
])

const jwkOf = (bytes: Buffer, kid = 'k') => ({
  kty: 'OKP',
  crv: 'Ed25519',
  kid,
  x: bytes.toString('base64url'),
})

/** Import with both backends: the same rejection, or a key for each. */
function importBoth(bytes: Buffer): { node: Ed25519Key; sodium: Ed25519Key } | string {
  const node = importEd25519Jwk(jwkOf(bytes), NODE)
  const lib = importEd25519Jwk(jwkOf(bytes), SODIUM)
  expect(typeof node === 'string' ? node : 'key', bytes.toString('hex')).to.equal(
    typeof lib === 'string' ? lib : 'key',
  )
  if (typeof node === 'string' || typeof lib === 'string') return node as string
  return { node: node.key, sodium: lib.key }
}

function bareNode(bytes: Buffer, message: Buffer, signature: Buffer): boolean {
  try {
    const key = createPublicKey({ key: jwkOf(bytes), format: 'jwk' })
    return cryptoVerify(null, message, key, signature)
  } catch {
    return false
  }
}
const bareSodium = (bytes: Buffer, message: Buffer, signature: Buffer): boolean =>
  signature.length === 64 && sodium.crypto_sign_verify_detached(signature, message, bytes)

// S as 32 little-endian bytes, all 256 bits (encodeY writes 255 and a sign bit).
function sBytes(s: bigint): Buffer {
  const out = Buffer.alloc(32)
  let v = s
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

type Mutation =
  | { kind: 'valid' }
  | { kind: 'bit flip'; bit: number }
  | { kind: 'message bit flip'; bit: number }
  | { kind: 'S + k·L'; k: number }
  | { kind: 'S high bits'; bits: number }
  | { kind: 'small-order R'; which: number; sign: boolean }
  | { kind: 'small-order R forgery' }
  | { kind: 'non-canonical R'; which: number }
  | { kind: 'random'; bytes: Uint8Array }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ kind: 'valid' as const }),
  fc.nat(511).map((bit) => ({ kind: 'bit flip' as const, bit })),
  fc.nat(63).map((bit) => ({ kind: 'message bit flip' as const, bit })),
  fc.integer({ min: 1, max: 15 }).map((k) => ({ kind: 'S + k·L' as const, k })),
  fc.integer({ min: 1, max: 7 }).map((bits) => ({ kind: 'S high bits' as const, bits })),
  fc
    .record({ which: fc.nat(7), sign: fc.boolean() })
    .map((r) => ({ kind: 'small-order R' as const, ...r })),
  fc.constant({ kind: 'small-order R forgery' as const }),
  fc.nat(NON_CANONICAL_YS.length - 1).map((which) => ({ kind: 'non-canonical R' as const, which })),
  fc
    .uint8Array({ minLength: 64, maxLength: 64 })
    .map((b) => ({ kind: 'random' as const, bytes: b })),
)

/**
 * The signed message and signature for `signer` after `m`. The small-order R forgery needs its own
 * message (one whose challenge fits the torsion): `vary(i)` gives the candidates.
 */
function apply(
  signer: Signer,
  message: Buffer,
  m: Mutation,
  vary: (i: number) => Buffer = (i) => Buffer.concat([message, Buffer.from(` #${i}`)]),
): { message: Buffer; signature: Buffer } {
  const valid = sign(signer.key, message)
  switch (m.kind) {
    case 'valid':
      return { message, signature: valid }
    case 'bit flip': {
      const signature = Buffer.from(valid)
      signature[m.bit >> 3]! ^= 1 << (m.bit & 7)
      return { message, signature }
    }
    case 'message bit flip': {
      const flipped = Buffer.from(message)
      if (flipped.length > 0) flipped[(m.bit >> 3) % flipped.length]! ^= 1 << (m.bit & 7)
      return { message: flipped, signature: valid }
    }
    case 'S + k·L': {
      const s = littleEndian(valid.subarray(32)) + BigInt(m.k) * L
      return {
        message,
        signature: Buffer.concat([valid.subarray(0, 32), sBytes(s % (1n << 256n))]),
      }
    }
    case 'S high bits': {
      const signature = Buffer.from(valid)
      signature[63]! |= m.bits << 5
      return { message, signature }
    }
    case 'small-order R': {
      const r = encode(SMALL_ORDER[m.which]!)
      if (m.sign) r[31]! ^= 0x80
      return { message, signature: Buffer.concat([r, valid.subarray(32)]) }
    }
    case 'small-order R forgery': {
      // Found for the mixed-order keys (R = -[h]·torsion); for an ordinary key R is the identity
      // and S = h·a, which the equation refuses unless h ≡ 0 — kept as a refused case.
      const found = smallOrderRSignature(signer.key, signer.torsion, vary)
      return found ?? { message, signature: Buffer.concat([encode(IDENTITY), valid.subarray(32)]) }
    }
    case 'non-canonical R':
      return {
        message,
        signature: Buffer.concat([
          encodeY(NON_CANONICAL_YS[m.which]! + P, false),
          valid.subarray(32),
        ]),
      }
    case 'random':
      return { message, signature: Buffer.from(m.bytes) }
  }
}

describe('Ed25519 backends: node:crypto and libsodium give the same verdicts (differential)', function () {
  this.timeout(180_000)

  it('sanity: both accept a valid signature of every signer key through the package path', () => {
    for (const signer of SIGNERS) {
      const keys = importBoth(signer.key.bytes)
      expect(keys, signer.label).to.not.be.a('string')
      const { node, sodium: lib } = keys as { node: Ed25519Key; sodium: Ed25519Key }
      // A mixed-order key verifies its honest signatures only when [h]·torsion = 0: try until one.
      let accepted = 0
      for (let i = 0; i < 64 && accepted === 0; i++) {
        const message = Buffer.from(`sanity ${signer.label} ${i}`)
        const signature = sign(signer.key, message).toString('base64url')
        const input = message.toString('latin1')
        const verdict = verifyEd25519(node, input, signature, NODE)
        expect(verifyEd25519(lib, input, signature, SODIUM), `${signer.label} #${i}`).to.equal(
          verdict,
        )
        if (verdict) accepted++
      }
      expect(accepted, signer.label).to.equal(1)
    }
  })

  it('keys: both import or refuse alike (small-order, non-canonical, random, ordinary, mixed-order)', () => {
    const refused: Record<string, number> = {}
    const keyBytes = fc.oneof(
      fc.constantFrom(...SMALL_ORDER_ENCODINGS),
      fc.constantFrom(...NON_CANONICAL_KEYS),
      fc.constantFrom(...SIGNERS.map((s) => s.key.bytes)),
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
    )
    fc.assert(
      fc.property(keyBytes, fc.uint8Array({ minLength: 64, maxLength: 64 }), (bytes, sig) => {
        const keys = importBoth(bytes)
        if (typeof keys === 'string') {
          refused[keys] = (refused[keys] ?? 0) + 1
          return
        }
        const signature = Buffer.from(sig).toString('base64url')
        expect(verifyEd25519(keys.sodium, 'a.b', signature, SODIUM)).to.equal(
          verifyEd25519(keys.node, 'a.b', signature, NODE),
        )
      }),
      params(3),
    )
    // Every small-order and non-canonical encoding is refused, by both.
    for (const bytes of SMALL_ORDER_ENCODINGS) expect(importBoth(bytes)).to.equal('small_order')
    for (const bytes of NON_CANONICAL_KEYS) expect(importBoth(bytes)).to.equal('non_canonical_x')
    expect(refused.small_order).to.be.greaterThan(0)
    expect(refused.non_canonical_x).to.be.greaterThan(0)
  })

  it('signatures: same verdict through the package path; bare libsodium never accepts what OpenSSL refuses', () => {
    const bareDiffers: Record<string, number> = {}
    const accepted: Record<string, number> = {}
    fc.assert(
      fc.property(
        fc.nat(SIGNERS.length - 1),
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        mutation,
        (which, bytes, m) => {
          const signer = SIGNERS[which]!
          const { message, signature } = apply(signer, Buffer.from(bytes), m)
          const keys = importBoth(signer.key.bytes) as { node: Ed25519Key; sodium: Ed25519Key }
          const input = message.toString('latin1')
          const encoded = signature.toString('base64url')
          const ours = verifyEd25519(keys.node, input, encoded, NODE)
          expect(
            verifyEd25519(keys.sodium, input, encoded, SODIUM),
            `${signer.label}, ${m.kind}`,
          ).to.equal(ours)
          if (ours) accepted[m.kind] = (accepted[m.kind] ?? 0) + 1
          const bareOpenssl = bareNode(signer.key.bytes, message, signature)
          const bareLibsodium = bareSodium(signer.key.bytes, message, signature)
          // libsodium stricter is allowed (and documented); laxer is a defect.
          if (bareLibsodium) expect(bareOpenssl, `${signer.label}, ${m.kind}`).to.equal(true)
          if (bareOpenssl !== bareLibsodium) bareDiffers[m.kind] = (bareDiffers[m.kind] ?? 0) + 1
        },
      ),
      params(5),
    )
    // Only valid signatures (and the message bit flips that hit an empty message) pass ours.
    expect(
      Object.keys(accepted).filter((k) => k !== 'valid' && k !== 'message bit flip'),
    ).to.deep.equal([])
    // Where the bare primitives differ at all, it is on a small-order R (OpenSSL 3.0 of Node 20
    // accepts the forgery for mixed-order keys; OpenSSL 3.5 of Node 22+ refuses it as libsodium does).
    expect(Object.keys(bareDiffers).filter((k) => k !== 'small-order R forgery')).to.deep.equal([])
  })

  describe('tokens through two PartnerTokenVerifiers on one JWKS', () => {
    const issuer = 'https://api.agent.press/orgs/differential'
    const audience = 'https://mcp.example.com/mcp'
    let jwks: CountingServer
    let verifiers: Record<'node:crypto' | 'libsodium', PartnerTokenVerifier>

    before(async () => {
      // The signers' keys, and refused entries beside them (which must not disturb the others).
      const body = JSON.stringify({
        keys: [
          ...SIGNERS.map((s, i) => jwkOf(s.key.bytes, `signer-${i}`)),
          ...SMALL_ORDER_ENCODINGS.map((b, i) => jwkOf(b, `small-${i}`)),
          ...NON_CANONICAL_KEYS.map((b, i) => jwkOf(b, `non-canonical-${i}`)),
        ],
      })
      jwks = await startCountingServer((_req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(body)
      })
      const options = {
        issuer,
        audience,
        expectedExtProvider: 'differential',
        jwksUrl: `${jwks.url}/jwks.json`,
      }
      verifiers = {
        'node:crypto': new PartnerTokenVerifier({ ...options, ed25519: 'node:crypto' }),
        libsodium: new PartnerTokenVerifier({ ...options, ed25519: 'libsodium' }),
      }
      await verifiers['node:crypto'].warmUp()
      await verifiers.libsodium.warmUp()
    })
    after(() => jwks.close())

    const outcome = (verifier: PartnerTokenVerifier, token: string): Promise<string> =>
      verifier.verifyToken(token).then(
        (claims) => `ok ${claims.sub}`,
        (error: unknown) =>
          error instanceof PartnerTokenError ? error.reason : `unexpected ${String(error)}`,
      )

    it('same outcome (claims or reason) for random and mutated tokens, with one fetch each', async () => {
      const seen: Record<string, number> = {}
      await fc.assert(
        fc.asyncProperty(
          fc.nat(SIGNERS.length - 1),
          fc.string({ maxLength: 12 }),
          fc.integer({ min: -700, max: 700 }),
          mutation,
          async (which, sub, age, m) => {
            const signer = SIGNERS[which]!
            const now = Math.floor(Date.now() / 1000)
            const header = b64url({ alg: 'EdDSA', kid: `signer-${which}` })
            const inputFor = (jti: string) =>
              Buffer.from(
                `${header}.${b64url({
                  iss: issuer,
                  aud: audience,
                  ext_provider: 'differential',
                  sub: sub || 'user',
                  jti,
                  scope: 'mcp:read',
                  iat: now - age,
                  exp: now - age + 60,
                })}`,
                'latin1',
              )
            // The forgery's candidates differ in jti only, so each is still a token.
            const { message, signature } = apply(signer, inputFor('j'), m, (i) =>
              inputFor(`j-${i}`),
            )
            const token = `${message.toString('latin1')}.${signature.toString('base64url')}`
            const [a, b] = await Promise.all([
              outcome(verifiers['node:crypto'], token),
              outcome(verifiers.libsodium, token),
            ])
            expect(b, `${signer.label}, ${m.kind}, ${token}`).to.equal(a)
            const key = a.startsWith('ok') ? 'ok' : a
            seen[key] = (seen[key] ?? 0) + 1
            // A small-order R never passes, whatever the runtime's OpenSSL would say.
            if (m.kind.startsWith('small-order R')) expect(a).to.not.match(/^ok/)
          },
        ),
        params(2),
      )
      // Both kinds of verdict were reached: accepted tokens and refused signatures.
      expect(seen.ok ?? 0).to.be.greaterThan(0)
      expect(seen.signature_invalid ?? 0).to.be.greaterThan(0)
      expect(jwks.count).to.equal(2) // one warm-up fetch per verifier, nothing since
    })
  })
})
