// Project Wycheproof's Ed25519 vectors (test/vectors/ed25519_test.json; provenance in SOURCE.md beside it)
// through the package's own key-import and verify path: every group's publicKeyJwk is served from a
// loopback JWKS, fetched and imported by the same code the JWKS cache runs (fetchJwksDocument →
// buildKeyMap → importEd25519Jwk), and every message/signature goes through verifyEd25519. Then
// the eight small-order points, canonical and not, which must all be refused at import.
import { expect } from 'chai'
import { existsSync, readFileSync } from 'node:fs'
import { createHash, createPublicKey, type KeyObject } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PartnerTokenError, PartnerTokenVerifier } from 'passport-agentpress-partner'
import {
  importEd25519Jwk,
  isSmallOrderPoint,
  verifyEd25519,
} from '../../dist/core/token/ed25519.js'
import { buildKeyMap, fetchJwksDocument } from '../../dist/core/jwks/fetch.js'
import { b64url } from '../support/tokens.js'
import { startCountingServer, type CountingServer } from '../support/servers.js'
import { reportRuntimeAdmits, smallOrderForgery } from '../support/small-order.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const VECTORS_DIR = path.resolve(repoRoot, 'test', 'vectors')
const VECTORS_FILE = path.join(VECTORS_DIR, 'ed25519_test.json')

interface Vector {
  tcId: number
  comment: string
  flags: string[]
  msg: string
  sig: string
  result: 'valid' | 'invalid' | 'acceptable'
}
interface Group {
  publicKeyJwk: { kty: string; crv: string; x: string; kid?: string }
  publicKey: { pk: string }
  tests: Vector[]
}
interface VectorFile {
  numberOfTests: number
  testGroups: Group[]
}

// Loaded at module load so that one `it` per vector can be declared; absence is a failure, not a
// silent skip: the vectors are part of the repository.
let file: VectorFile | undefined
let loadError: string | undefined
// The sha256 recorded in SOURCE.md: a changed or truncated copy fails loudly.
const VECTORS_SHA256 = '752d2ea7d7c6cf4736381b6cbacb61f8182b126ab7cd9b058f00c50084975536'
if (existsSync(VECTORS_FILE)) {
  const bytes = readFileSync(VECTORS_FILE)
  const digest = createHash('sha256').update(bytes).digest('hex')
  if (digest === VECTORS_SHA256) file = JSON.parse(bytes.toString('utf8')) as VectorFile
  else loadError = `${VECTORS_FILE} has sha256 ${digest}, not the ${VECTORS_SHA256} of SOURCE.md`
} else {
  loadError =
    `Wycheproof Ed25519 vectors not found: expected ${VECTORS_FILE} ` +
    `(committed in the repository, see test/vectors/SOURCE.md)`
}

const kidOf = (groupIndex: number) => `wycheproof-${groupIndex}`

// Every small-order point of edwards25519 by its y coordinate (mod p), each with both values of the
// sign bit, plus y + p for the y values where that still fits in 255 bits (non-canonical).
const P = (1n << 255n) - 19n
const SMALL_ORDER_Y: Array<[string, bigint]> = [
  ['identity (order 1), y = 1', 1n],
  ['order 2, y = p - 1', P - 1n],
  ['order 4, y = 0', 0n],
  ['order 8, y = 0x7a03…17c7', 0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n],
  ['order 8, y = 0x05fc…e826', 0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n],
  ['non-canonical y = p (≡ 0, order 4)', P],
  ['non-canonical y = p + 1 (≡ 1, identity)', P + 1n],
]
function encodePoint(y: bigint, signBit: boolean): Buffer {
  const bytes = Buffer.alloc(32)
  let v = y
  for (let i = 0; i < 32; i++) {
    bytes[i] = Number(v & 0xffn)
    v >>= 8n
  }
  if (signBit) bytes[31]! |= 0x80
  return bytes
}
const SMALL_ORDER_ENCODINGS = SMALL_ORDER_Y.flatMap(([label, y]) =>
  [false, true].map((sign) => ({
    label: `${label}, sign bit ${sign ? 1 : 0}`,
    bytes: encodePoint(y, sign),
  })),
)
// The eight canonical encodings of test/vectors/SOURCE.md, verbatim.
const SOURCE_MD_LIST = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
]

describe('Wycheproof Ed25519 vectors through the package’s import and verify path', function () {
  this.timeout(20_000)

  if (file === undefined) {
    it('finds the vector file', () => {
      expect.fail(loadError)
    })
    return
  }
  const vectors = file
  const groups = vectors.testGroups

  let jwks: CountingServer
  let keys: Map<string, KeyObject | null>

  before(async () => {
    const document = {
      keys: groups.map((group, i) => ({ ...group.publicKeyJwk, kid: kidOf(i) })),
    }
    const body = JSON.stringify(document)
    jwks = await startCountingServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(body)
    })
    // Exactly what JwksCache#fetch does with a JWKS document.
    const fetched = await fetchJwksDocument(`${jwks.url}/jwks.json`, 5000)
    keys = buildKeyMap(fetched, `${jwks.url}/jwks.json`, new Set())
  })
  after(() => jwks.close())

  it('has the 151 tests in 78 groups of SOURCE.md (88 valid, 63 invalid)', () => {
    const all = groups.flatMap((g) => g.tests)
    expect(vectors.numberOfTests).to.equal(151)
    expect(all).to.have.length(151)
    expect(groups).to.have.length(78)
    expect(all.filter((t) => t.result === 'valid')).to.have.length(88)
    expect(all.filter((t) => t.result === 'invalid')).to.have.length(63)
    expect(all.filter((t) => t.result === 'acceptable')).to.have.length(0)
  })

  it('imports every group key from the loopback JWKS (one fetch, 78 candidates)', () => {
    expect(jwks.count).to.equal(1)
    expect(keys.size).to.equal(groups.length)
    groups.forEach((group, i) => {
      const key = keys.get(kidOf(i))
      expect(key, `group ${i}`).to.not.equal(undefined)
      expect(key, `group ${i}`).to.not.equal(null)
      // The imported key is the vector's key, byte for byte.
      const x = (key!.export({ format: 'jwk' }) as { x: string }).x
      expect(Buffer.from(x, 'base64url').toString('hex')).to.equal(group.publicKey.pk)
      // And the direct import path agrees.
      const direct = importEd25519Jwk({ ...group.publicKeyJwk, kid: kidOf(i) })
      expect(direct, `group ${i}`).to.not.be.a('string')
    })
  })

  it('RFC 9864 labels and key metadata (§3): alg "Ed25519", key_ops with verify, ext import the same key; key_ops without verify none', () => {
    groups.forEach((group, i) => {
      const base = { ...group.publicKeyJwk, kid: kidOf(i) }
      for (const extra of [
        { alg: 'Ed25519' },
        { alg: 'EdDSA' },
        { alg: 'Ed25519', key_ops: ['verify'], ext: true },
        { key_ops: ['sign', 'verify'], ext: false },
      ]) {
        const imported = importEd25519Jwk({ ...base, ...extra })
        expect(imported, `group ${i} ${JSON.stringify(extra)}`).to.not.be.a('string')
        const x = ((imported as { key: KeyObject }).key.export({ format: 'jwk' }) as { x: string })
          .x
        expect(Buffer.from(x, 'base64url').toString('hex')).to.equal(group.publicKey.pk)
      }
      expect(importEd25519Jwk({ ...base, key_ops: ['sign'] })).to.equal('wrong_key_ops')
      expect(importEd25519Jwk({ ...base, alg: 'ed25519' })).to.equal('wrong_alg')
      expect(importEd25519Jwk({ ...base, ext: 'true' })).to.equal('bad_ext')
    })
  })

  const counted = { valid: 0, invalid: 0 }
  after(() => {
    // Every vector ran with the expected verdict (a failure would have stopped short of 151).
    expect(counted.valid + counted.invalid).to.equal(151)
  })

  groups.forEach((group, g) => {
    describe(`group ${g} (pk ${group.publicKey.pk.slice(0, 12)}…)`, () => {
      for (const t of group.tests) {
        const label = `tcId ${t.tcId} ${t.result}${t.comment ? `: ${t.comment}` : ''} [${t.flags.join(', ')}]`
        it(label, () => {
          const key = keys.get(kidOf(g))!
          const msg = Buffer.from(t.msg, 'hex')
          const sig = Buffer.from(t.sig, 'hex')
          // verifyEd25519 takes the signing input as a latin1 string: that maps bytes 0x00-0xFF
          // one to one, so it represents arbitrary messages faithfully. Checked, not assumed.
          const asLatin1 = msg.toString('latin1')
          expect(Buffer.from(asLatin1, 'latin1').equals(msg)).to.equal(true)
          const verdict = verifyEd25519(key, asLatin1, sig.toString('base64url'))
          expect(verdict).to.equal(t.result === 'valid')
          counted[t.result === 'valid' ? 'valid' : 'invalid']++
        })
      }
    })
  })

  describe('wrapped as tokens through PartnerTokenVerifier and the same JWKS', () => {
    // A vector's message could be a token's signing input only if it were `<b64url>.<b64url>`.
    const asToken = groups.flatMap((group, g) =>
      group.tests
        .filter((t) =>
          /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(Buffer.from(t.msg, 'hex').toString('latin1')),
        )
        .map((t) => ({ group: g, tcId: t.tcId })),
    )

    it('no vector message is a JWS signing input, so none wraps verbatim as a token (counted: 0)', () => {
      // Wycheproof messages are arbitrary bytes, never `<b64url>.<b64url>`: a vector keeps its
      // verdict only over its own message, so the primitive above is the place to run them.
      expect(asToken).to.have.length(0)
    })

    it('each group key answers through the verifier: kid found, signature judged (signature_invalid)', async () => {
      // Every group key is looked up by kid through the verifier's own JWKS cache, and a vector's
      // signature placed on a token (whose signing input it does not cover) is refused for its
      // signature, not for its kid: the key was imported and used.
      const before = jwks.count
      const verifier = new PartnerTokenVerifier({
        issuer: 'https://api.agent.press/orgs/wycheproof',
        audience: 'https://mcp.example.com/mcp',
        expectedExtProvider: 'wycheproof',
        jwksUrl: `${jwks.url}/jwks.json`,
      })
      const now = Math.floor(Date.now() / 1000)
      const payload = b64url({
        iss: 'https://api.agent.press/orgs/wycheproof',
        aud: 'https://mcp.example.com/mcp',
        ext_provider: 'wycheproof',
        sub: 'u',
        jti: 'j',
        scope: 'mcp:read',
        iat: now,
        exp: now + 60,
      })
      let judged = 0
      for (let g = 0; g < groups.length; g++) {
        const t = groups[g]!.tests.find((v) => v.result === 'valid' && v.sig.length === 128)
        if (t === undefined) continue
        const token = `${b64url({ alg: 'EdDSA', kid: kidOf(g) })}.${payload}.${Buffer.from(t.sig, 'hex').toString('base64url')}`
        const reason = await verifier.verifyToken(token).then(
          () => 'ok',
          (err: PartnerTokenError) => err.reason,
        )
        expect(reason, `group ${g}`).to.equal('signature_invalid')
        judged++
      }
      expect(judged).to.be.greaterThan(60)
      expect(jwks.count - before).to.equal(1) // one cold fetch served every kid
    })
  })

  describe('the small-order points: refused at import, canonical or not', () => {
    it('covers the eight canonical encodings listed in SOURCE.md', () => {
      const listed = [
        ...readFileSync(path.join(VECTORS_DIR, 'SOURCE.md'), 'utf8').matchAll(
          /^- ([0-9a-f]{64}) /gm,
        ),
      ].map((m) => m[1])
      expect(listed).to.deep.equal(SOURCE_MD_LIST)
      const ours = new Set(SMALL_ORDER_ENCODINGS.map((e) => e.bytes.toString('hex')))
      for (const hex of SOURCE_MD_LIST) expect(ours.has(hex), hex).to.equal(true)
    })

    const admitted: string[] = []
    for (const { label, bytes } of SMALL_ORDER_ENCODINGS) {
      it(`${bytes.toString('hex')} (${label}) → small_order`, () => {
        const x = bytes.toString('base64url')
        expect(isSmallOrderPoint(bytes)).to.equal(true)
        expect(importEd25519Jwk({ kty: 'OKP', crv: 'Ed25519', x, kid: 'k' })).to.equal(
          'small_order',
        )
        expect(
          importEd25519Jwk({ kty: 'OKP', crv: 'Ed25519', x, kid: 'k', use: 'sig', alg: 'EdDSA' }),
        ).to.equal('small_order')
        // Why it matters, where the runtime allows it: with the raw key, OpenSSL 3.0 verifies S = 0
        // with R = the identity or the point itself for some message within a few tries (for the
        // identity key: every message), and so would our verify primitive, which is why import
        // refuses. Recorded for the informational test below, never required.
        const forgery = smallOrderForgery(bytes, (m) => `forged message ${m}`, 64)
        if (forgery.runtimeAdmits) {
          const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
          expect(
            verifyEd25519(key, forgery.input, forgery.signature.toString('base64url')),
          ).to.equal(true)
          admitted.push(label)
        }
      })
    }

    it('informational: the runtime’s crypto.verify alone admits an S = 0 forgery for all 14 encodings', function () {
      reportRuntimeAdmits(this, admitted.length > 0, 'S = 0 forgeries for small-order keys')
      expect(admitted).to.have.length(SMALL_ORDER_ENCODINGS.length)
    })

    it('served from a JWKS, none of the 14 encodings becomes a key; the genuine key beside them does', async () => {
      const doc = {
        keys: [
          ...SMALL_ORDER_ENCODINGS.map((e, i) => ({
            kty: 'OKP',
            crv: 'Ed25519',
            x: e.bytes.toString('base64url'),
            kid: `small-${i}`,
          })),
          { ...groups[0]!.publicKeyJwk, kid: 'genuine' },
        ],
      }
      const server = await startCountingServer((_req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(doc))
      })
      try {
        const map = buildKeyMap(
          await fetchJwksDocument(`${server.url}/`, 5000),
          server.url,
          new Set(),
        )
        expect([...map.keys()]).to.deep.equal(['genuine'])
      } finally {
        await server.close()
      }
    })

    it('points with y < p that are not small-order are not flagged (no false positives)', () => {
      for (const group of groups) {
        const bytes = Buffer.from(group.publicKey.pk, 'hex')
        expect(isSmallOrderPoint(bytes), group.publicKey.pk).to.equal(false)
      }
      expect(isSmallOrderPoint(encodePoint(2n, false))).to.equal(false)
      expect(isSmallOrderPoint(encodePoint(P - 2n, false))).to.equal(false)
      expect(isSmallOrderPoint(Buffer.alloc(31))).to.equal(false)
    })
  })
})
