// Regression: warmUp() / readinessHandler reported `fresh`, keyCount 0, ready when no key could
// verify a token — (a) the JWKS published only unusable keys (RSA, a small-order Ed25519 point, a
// wrong alg), (b) the only cached key had been revoked by an emergency rotation while the JWKS was
// down — while every token got 401. "Ready" now means a usable key: (a) is `cold`, (b) is
// `unavailable`, both 503; stale-but-serving stays 200. `keyCount` is one number everywhere: the
// usable kids (jwks:fetch:end counted every distinct kid, shared and revoked ones included).
import { expect } from 'chai'
import express from 'express'
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { newEd25519KeyPair } from '../../lib/testing/ed25519-key.js'
import { PartnerTokenVerifier } from 'passport-agentpress-partner'
import { readinessHandler } from 'passport-agentpress-partner/diagnostics'
import { recordChannels } from '../support/channels.js'
import { startCountingServer, type CountingServer } from '../support/servers.js'
import { listen, send, type Listening } from '../support/wire.js'

const ISSUER_PATH = '/orgs/acme'
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()

const ed25519 = (kid: string) => ({
  ...(newEd25519KeyPair().publicKey.export({ format: 'jwk' }) as object),
  kid,
  use: 'sig',
  alg: 'EdDSA',
})
const RSA = {
  // Generated as DER and re-imported: a key object of generateKeyPairSync's own can deadlock
  // Node 20 when exported during a garbage collection (lib/testing/ed25519-key.ts).
  ...(createPublicKey({
    key: generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    }).publicKey,
    format: 'der',
    type: 'spki',
  }).export({ format: 'jwk' }) as object),
  kid: 'rsa-1',
  alg: 'RS256',
}
// The identity point (0, 1): small order, refused at import (§3).
const SMALL_ORDER = {
  kty: 'OKP',
  crv: 'Ed25519',
  x: 'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  kid: 'small-order',
  alg: 'EdDSA',
}
const WRONG_ALG = { ...ed25519('wrong-alg'), alg: 'ES256' }
const GOOD = ed25519('good-1')

describe('regression: ready only with a usable key (readinessHandler over HTTP)', function () {
  this.timeout(20_000)
  let jwks: CountingServer
  let keys: unknown[]
  let down: boolean
  let now: number
  let verifier: PartnerTokenVerifier
  let app: Listening

  beforeEach(async () => {
    now = T0
    down = false
    keys = [GOOD]
    jwks = await startCountingServer((_req, res) => {
      if (down) {
        res.statusCode = 500
        res.end()
        return
      }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ keys }))
    })
    verifier = new PartnerTokenVerifier({
      issuer: `${jwks.url}${ISSUER_PATH}`,
      audience: 'https://mcp.example.com/mcp',
      expectedExtProvider: 'example',
      clock: () => now,
    })
    const server = express()
    server.get('/readyz', readinessHandler([verifier]))
    app = await listen(server)
  })
  afterEach(async () => {
    await app.close()
    await jwks.close()
  })

  const probe = async () => {
    const res = await send(app.port, { method: 'GET', path: '/readyz' })
    return { status: res.status, retryAfter: res.get('retry-after'), body: JSON.parse(res.text) }
  }
  const answer = (ready: boolean, issuer: Record<string, unknown>) => ({
    status: ready ? 200 : 503,
    retryAfter: ready ? undefined : '5',
    body: {
      ready,
      issuers: [
        {
          issuer: `${jwks.url}${ISSUER_PATH}`,
          lastFetchAt: null,
          lastSuccessAt: null,
          lastFailureAt: null,
          lastFailureReason: null,
          ...issuer,
        },
      ],
    },
  })

  it('cold (nothing fetched): 503', async () => {
    expect(await probe()).to.deep.equal(answer(false, { state: 'cold', keyCount: 0 }))
  })

  it('fresh with a usable key: 200, keyCount 1', async () => {
    expect((await verifier.warmUp()).ready).to.equal(true)
    expect(await probe()).to.deep.equal(
      answer(true, { state: 'fresh', keyCount: 1, lastFetchAt: iso(T0), lastSuccessAt: iso(T0) }),
    )
  })

  it('only unusable keys (RSA, small-order, wrong alg): warmUp not ready, 503 cold', async () => {
    keys = [RSA, SMALL_ORDER, WRONG_ALG]
    const channels = recordChannels()
    try {
      const result = await verifier.warmUp()
      expect(result.ready).to.equal(false)
      expect(result.issuers[0]!.state).to.equal('cold')
      expect(
        channels.of('jwksFetchEnd').map((m) => [m.outcome, m.keyCount]),
        'jwks:fetch:end counts usable kids',
      ).to.deep.equal([['success', 0]])
    } finally {
      channels.stop()
    }
    expect(await probe()).to.deep.equal(
      answer(false, { state: 'cold', keyCount: 0, lastFetchAt: iso(T0), lastSuccessAt: iso(T0) }),
    )
  })

  it('a kid two keys share is not usable: keyCount counts it nowhere', async () => {
    keys = [GOOD, ed25519('shared'), ed25519('shared')]
    const channels = recordChannels()
    try {
      await verifier.warmUp()
      expect(channels.of('jwksFetchEnd').map((m) => m.keyCount)).to.deep.equal([1])
    } finally {
      channels.stop()
    }
    expect((await probe()).body.issuers[0].keyCount).to.equal(1)
  })

  it('the only key revoked by an emergency while the JWKS is down: 503 unavailable', async () => {
    await verifier.warmUp()
    down = true
    const channels = recordChannels()
    try {
      verifier.revokeKid('good-1')
      await verifier.refreshJwks().catch(() => {})
      expect(channels.of('jwksState').map((m) => [m.previous, m.state])).to.deep.equal([
        ['fresh', 'cold'],
        ['cold', 'unavailable'],
      ])
    } finally {
      channels.stop()
    }
    expect(await probe()).to.deep.equal(
      answer(false, {
        state: 'unavailable',
        keyCount: 0,
        lastFetchAt: iso(T0),
        lastSuccessAt: iso(T0),
        lastFailureAt: iso(T0),
        lastFailureReason: 'http_status',
      }),
    )
  })

  it('stale but serving (past max age, the refresh fails): still 200', async () => {
    await verifier.warmUp()
    now = T0 + 3_600_000 + 1_000
    down = true
    expect((await verifier.warmUp()).ready).to.equal(true)
    expect(await probe()).to.deep.equal(
      answer(true, {
        state: 'stale',
        keyCount: 1,
        lastFetchAt: iso(now),
        lastSuccessAt: iso(T0),
        lastFailureAt: iso(now),
        lastFailureReason: 'http_status',
      }),
    )
  })
})
