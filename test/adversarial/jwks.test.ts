// The adversarial catalogue's JWKS attacks (ATTACKS.md, §3): each row gets a fresh verifier
// on Express 5 and a loopback JWKS whose document and request count the row controls; the exact
// answer and the number of fetches are asserted. Shared setup: catalogue-support.ts.
import { expect } from 'chai'
import { type KeyObject } from 'node:crypto'
import { newEd25519KeyPair } from '../../lib/testing/ed25519-key.js'
import { startCountingServer, type CountingServer } from '../support/servers.js'
import { reportRuntimeAdmits, smallOrderForgery } from '../support/small-order.js'
import { enc, signRaw } from '../support/tokens.js'
import { listen, send } from '../support/wire.js'
import { ED25519_BACKENDS } from '../support/backends.js'
import type { Ed25519BackendName } from '../support/backends.js'
import {
  catalogueSuite,
  clock,
  expectAnswer,
  NOW,
  NOW_MS,
  tokenAppFor,
  type Expected,
} from './catalogue-support.js'

describe('adversarial catalogue over HTTP: JWKS attacks (loopback JWKS the test controls, Express 5, a fresh verifier per row)', function () {
  this.timeout(60_000)
  catalogueSuite()

  const ISSUER = 'https://api.agent.press/orgs/jwks-attacks'
  const AUDIENCE = 'https://mcp.example.com/mcp'
  const PROVIDER = 'jwks-partner'
  let jwks: CountingServer
  let document: unknown
  const genuine = newEd25519KeyPair()
  const other = newEd25519KeyPair()
  const jwkOf = (key: KeyObject, extra: Record<string, unknown> = {}) => ({
    ...(key.export({ format: 'jwk' }) as Record<string, string>),
    kid: 'k1',
    ...extra,
  })
  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: ISSUER,
    aud: AUDIENCE,
    ext_provider: PROVIDER,
    sub: 'user-123',
    jti: 'j',
    scope: 'mcp:read',
    iat: NOW,
    exp: NOW + 60,
    ...extra,
  })
  const token = (kid = 'k1', key: KeyObject = genuine.privateKey) =>
    signRaw(key, { alg: 'EdDSA', kid }, claims())

  before(async () => {
    jwks = await startCountingServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(typeof document === 'string' ? document : JSON.stringify(document))
    })
  })
  after(() => jwks.close())

  async function run(
    doc: unknown,
    tokenValue: string,
    expected: Expected,
    ed25519: Ed25519BackendName = 'node:crypto',
  ): Promise<number> {
    document = doc
    const before = jwks.count
    const server = await listen(
      tokenAppFor('express5', {
        issuer: ISSUER,
        audience: AUDIENCE,
        expectedExtProvider: PROVIDER,
        jwksUrl: `${jwks.url}/jwks.json`,
        clock,
        ed25519,
      }),
    )
    try {
      const res = await send(server.port, {
        path: '/mcp',
        headers: [['Authorization', `Bearer ${tokenValue}`]],
        body: '',
      })
      expectAnswer(res, expected, [tokenValue])
    } finally {
      await server.close()
    }
    return jwks.count - before
  }

  const pub = genuine.publicKey
  const cases: Array<[string, () => unknown, () => string, Expected]> = [
    [
      'control: the genuine key → 200',
      () => ({ keys: [jwkOf(pub)] }),
      () => token(),
      { user: 'user-123' },
    ],
    [
      'a published private key (d) → kid_missing_or_unknown',
      () => ({
        keys: [genuine.privateKey.export({ format: 'jwk' })].map((k) => ({ ...k, kid: 'k1' })),
      }),
      () => token(),
      'kid_missing_or_unknown',
    ],
    ...(
      [
        ['kty "EC"', { kty: 'EC' }],
        ['kty "oct"', { kty: 'oct' }],
        ['crv "X25519"', { crv: 'X25519' }],
        ['crv "Ed448"', { crv: 'Ed448' }],
        ['use "enc"', { use: 'enc' }],
        ['alg "RS256"', { alg: 'RS256' }],
        ['alg "none"', { alg: 'none' }],
        // §3: `EdDSA` or `Ed25519` exactly (RFC 9864); no case folding, no trimming.
        ['alg "ed25519"', { alg: 'ed25519' }],
        ['alg "EdDSA " (a trailing space)', { alg: 'EdDSA ' }],
        ['alg "Ed448"', { alg: 'Ed448' }],
        // §3 / RFC 7517 §4.3: a key published for other operations never verifies a token.
        ['key_ops ["encrypt"]', { key_ops: ['encrypt'] }],
        ['key_ops ["sign"]', { key_ops: ['sign'] }],
        ['key_ops [] (no operation)', { key_ops: [] }],
        ['key_ops "verify" (a string, not an array)', { key_ops: 'verify' }],
        ['key_ops ["Verify"]', { key_ops: ['Verify'] }],
        ['ext "true" (a string)', { ext: 'true' }],
        ['ext 1', { ext: 1 }],
        ['x with "=" padding', { x: `${(pub.export({ format: 'jwk' }) as { x: string }).x}=` }],
        [
          'x in standard base64',
          {
            x: Buffer.from(
              (pub.export({ format: 'jwk' }) as { x: string }).x,
              'base64url',
            ).toString('base64'),
          },
        ],
        ['x of 31 bytes', { x: Buffer.alloc(31, 7).toString('base64url') }],
        ['x a number', { x: 1 }],
        ['kid empty', { kid: '' }],
      ] as Array<[string, Record<string, unknown>]>
    ).map(
      ([label, extra]) =>
        [
          `key with ${label} → kid_missing_or_unknown`,
          () => ({ keys: [jwkOf(pub, extra)] }),
          () => token(),
          'kid_missing_or_unknown',
        ] as [string, () => unknown, () => string, Expected],
    ),
    [
      'key with alg "Ed25519" key, header alg "EdDSA" → 200 (§2/§3, RFC 9864)',
      () => ({ keys: [jwkOf(pub, { alg: 'Ed25519' })] }),
      () => signRaw(genuine.privateKey, { alg: 'EdDSA', kid: 'k1' }, claims()),
      { user: 'user-123' },
    ],
    [
      'key with alg "Ed25519" key, header alg "Ed25519" → 200 (§2/§3, RFC 9864)',
      () => ({ keys: [jwkOf(pub, { alg: 'Ed25519' })] }),
      () => signRaw(genuine.privateKey, { alg: 'Ed25519', kid: 'k1' }, claims()),
      { user: 'user-123' },
    ],
    [
      'key with alg "EdDSA" key, header alg "Ed25519" → 200 (§2/§3, RFC 9864)',
      () => ({ keys: [jwkOf(pub, { alg: 'EdDSA' })] }),
      () => signRaw(genuine.privateKey, { alg: 'Ed25519', kid: 'k1' }, claims()),
      { user: 'user-123' },
    ],
    [
      'key with no alg on the key, header alg "Ed25519" → 200 (§2/§3, RFC 9864)',
      () => ({ keys: [jwkOf(pub, {})] }),
      () => signRaw(genuine.privateKey, { alg: 'Ed25519', kid: 'k1' }, claims()),
      { user: 'user-123' },
    ],
    [
      'key with key_ops ["verify"] → 200 (§2/§3, RFC 9864)',
      () => ({ keys: [jwkOf(pub, { key_ops: ['verify'] })] }),
      () => signRaw(genuine.privateKey, { alg: 'EdDSA', kid: 'k1' }, claims()),
      { user: 'user-123' },
    ],
    [
      'key with key_ops ["sign", "verify"] → 200 (§2/§3, RFC 9864)',
      () => ({ keys: [jwkOf(pub, { key_ops: ['sign', 'verify'] })] }),
      () => signRaw(genuine.privateKey, { alg: 'EdDSA', kid: 'k1' }, claims()),
      { user: 'user-123' },
    ],
    [
      'key with ext true → 200 (§2/§3, RFC 9864)',
      () => ({ keys: [jwkOf(pub, { ext: true })] }),
      () => signRaw(genuine.privateKey, { alg: 'EdDSA', kid: 'k1' }, claims()),
      { user: 'user-123' },
    ],
    [
      'key with ext false → 200 (§2/§3, RFC 9864)',
      () => ({ keys: [jwkOf(pub, { ext: false })] }),
      () => signRaw(genuine.privateKey, { alg: 'EdDSA', kid: 'k1' }, claims()),
      { user: 'user-123' },
    ],
    [
      'two different keys under one kid → kid_missing_or_unknown (ambiguous)',
      () => ({ keys: [jwkOf(pub), jwkOf(other.publicKey)] }),
      () => token(),
      'kid_missing_or_unknown',
    ],
    [
      'the same key twice under one kid → kid_missing_or_unknown (ambiguous, pinned)',
      () => ({ keys: [jwkOf(pub), jwkOf(pub)] }),
      () => token(),
      'kid_missing_or_unknown',
    ],
    [
      'non-object entries beside the genuine key → 200',
      () => ({ keys: [null, 1, 'x', [], true, jwkOf(pub)] }),
      () => token(),
      { user: 'user-123' },
    ],
    [
      'a genuine key whose kid is "__proto__" → 200 (no prototype confusion)',
      () => ({ keys: [jwkOf(pub, { kid: '__proto__' })] }),
      () => token('__proto__'),
      { user: 'user-123' },
    ],
    [
      'kid "constructor" not published → kid_missing_or_unknown',
      () => ({ keys: [jwkOf(pub)] }),
      () => token('constructor'),
      'kid_missing_or_unknown',
    ],
    [
      'kid "hasOwnProperty" not published → kid_missing_or_unknown',
      () => ({ keys: [jwkOf(pub)] }),
      () => token('hasOwnProperty'),
      'kid_missing_or_unknown',
    ],
    [
      'an empty key set → kid_missing_or_unknown (a good fetch is authoritative)',
      () => ({ keys: [] }),
      () => token(),
      'kid_missing_or_unknown',
    ],
    [
      '"keys" an object, not an array → 503 (a bad document is an outage)',
      () => ({ keys: { 0: jwkOf(pub) } }),
      () => token(),
      'jwks_unavailable',
    ],
    ['"keys" a string → 503', () => ({ keys: 'k1' }), () => token(), 'jwks_unavailable'],
    ['"keys" null → 503', () => ({ keys: null }), () => token(), 'jwks_unavailable'],
    ['no "keys" member → 503', () => ({ key: [jwkOf(pub)] }), () => token(), 'jwks_unavailable'],
    ['the document is an array → 503', () => [jwkOf(pub)], () => token(), 'jwks_unavailable'],
    [
      'a key carrying x5u/jku pointing at the trap → 200, trap unused',
      () => ({
        keys: [jwkOf(pub, { x5u: 'http://127.0.0.1:9/x', jku: 'http://127.0.0.1:9/j' })],
      }),
      () => token(),
      { user: 'user-123' },
    ],
    [
      'duplicate "keys" members in the JSON text: the last one wins → 200',
      () => `{"keys":[],"keys":[${JSON.stringify(jwkOf(pub))}]}`,
      () => token(),
      { user: 'user-123' },
    ],
  ]
  // Every row once with each Ed25519 backend.
  for (const ed25519 of ED25519_BACKENDS) {
    describe(`ed25519: '${ed25519}'`, () => {
      for (const [title, doc, tok, expected] of cases) {
        it(title, async () => {
          const fetches = await run(doc(), tok(), expected, ed25519)
          expect(fetches).to.equal(1)
        })
      }
    })
  }

  // A small-order key admits an S = 0 forgery under some OpenSSL builds; find one (bounded) and
  // send it. The package's refusal is asserted on every runtime; whether the runtime alone would
  // accept the forgery is reported in a separate, informational test.
  const SMALL = [
    '0100000000000000000000000000000000000000000000000000000000000000',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0000000000000000000000000000000000000000000000000000000000000080',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  ]
  const forgeryFor = (point: Buffer) =>
    smallOrderForgery(
      point,
      (i) => `${enc({ alg: 'EdDSA', kid: 'small' })}.${enc(claims({ jti: `forged-${i}` }))}`,
    )
  const admitted: string[] = []
  for (const ed25519 of ED25519_BACKENDS) {
    for (const hex of SMALL) {
      it(`small-order key ${hex.slice(0, 8)}…${hex.slice(-2)} with an S = 0 forgery, ed25519: '${ed25519}' → kid_missing_or_unknown`, async () => {
        const point = Buffer.from(hex, 'hex')
        const forgery = forgeryFor(point)
        await run(
          { keys: [{ kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url'), kid: 'small' }] },
          forgery.token,
          'kid_missing_or_unknown',
          ed25519,
        )
        if (forgery.runtimeAdmits && ed25519 === 'node:crypto') admitted.push(hex)
      })
    }
  }
  it('informational: the runtime’s crypto.verify alone accepts an S = 0 forgery for every small-order key', function () {
    reportRuntimeAdmits(this, admitted.length > 0, 'S = 0 forgeries for small-order keys')
    expect(admitted).to.have.length(SMALL.length)
  })

  it('200 simultaneous cold requests → 200 × 200 and exactly 1 fetch', async () => {
    document = { keys: [jwkOf(pub)] }
    const before = jwks.count
    const server = await listen(
      tokenAppFor('express5', {
        issuer: ISSUER,
        audience: AUDIENCE,
        expectedExtProvider: PROVIDER,
        jwksUrl: `${jwks.url}/jwks.json`,
        clock,
      }),
    )
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, () =>
          send(server.port, {
            path: '/mcp',
            headers: [['Authorization', `Bearer ${token()}`]],
            body: '',
          }),
        ),
      )
      for (const r of results) expectAnswer(r, { user: 'user-123' }, [])
      expect(jwks.count - before).to.equal(1)
    } finally {
      await server.close()
    }
  })

  it('300 random kids per cooldown window → held for, then refused by, exactly 1 refetch per window, never a 503', async () => {
    document = { keys: [jwkOf(pub)] }
    let now = NOW_MS
    const before = jwks.count
    const app = tokenAppFor('express5', {
      issuer: ISSUER,
      audience: AUDIENCE,
      expectedExtProvider: PROVIDER,
      jwksUrl: `${jwks.url}/jwks.json`,
      jwksCooldownMs: 30_000,
      clock: () => now,
    })
    let arrived = 0
    const server = await listen((req, res) => {
      arrived++
      app(req, res)
    })
    const miss = (kid: string) =>
      send(server.port, {
        path: '/mcp',
        headers: [
          [
            'Authorization',
            `Bearer ${signRaw(genuine.privateKey, { alg: 'EdDSA', kid }, claims())}`,
          ],
        ],
        body: '',
      })
    try {
      const ok = await send(server.port, {
        path: '/mcp',
        headers: [['Authorization', `Bearer ${token()}`]],
        body: '',
      })
      expectAnswer(ok, { user: 'user-123' }, [])
      // The cold fetch starts no kid-miss cooldown: the first miss refetches at once.
      expectAnswer(await miss('first'), 'kid_missing_or_unknown', [])
      expect(jwks.count - before).to.equal(2)
      const perWindow: number[] = []
      for (let window = 0; window < 3; window++) {
        const start = jwks.count
        // Inside the cooldown, an unknown kid is held (§3: it could be a key rotated in a
        // moment ago), not refused: nothing is fetched and nothing answered yet.
        const arrivedBefore = arrived
        const held = Array.from({ length: 300 }, (_, i) => miss(`random-${window}-${i}`))
        // Every one of them has reached the verifier before the clock moves on.
        const deadline = Date.now() + 10_000
        while (arrived < arrivedBefore + 300 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
        await new Promise((resolve) => setTimeout(resolve, 100))
        expect(jwks.count - start, 'fetches while held').to.equal(0)
        now += 30_000 // the next cooldown window: the next miss starts the refetch
        const results = await Promise.all([...held, miss(`trigger-${window}`)])
        for (const r of results) expectAnswer(r, 'kid_missing_or_unknown', [])
        perWindow.push(jwks.count - start)
      }
      // Each window's 301 misses share exactly one refetch, which started after they arrived.
      expect(perWindow, 'fetches per window').to.deep.equal([1, 1, 1])
      expect(jwks.count - before).to.equal(5)
    } finally {
      await server.close()
    }
  })
})
