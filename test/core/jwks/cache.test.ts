import { expect } from 'chai'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  DIAGNOSTICS_CHANNELS,
  type JwksFetchEndMessage,
} from 'passport-agentpress-partner/diagnostics'
import {
  JwksFetchError,
  JwksUnavailableError,
  PartnerTokenVerifier,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { closedPort, startCountingServer, within } from '../../support/servers.js'
import { signWith } from '../../support/tokens.js'
import { reasonOf } from '../../support/doubles.js'

/** Resolves once `count` JWKS fetches of `issuer` have ended (from the diagnostics channel). */
function fetchEnds(issuer: string, count: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0
    const listener = (message: unknown): void => {
      if ((message as JwksFetchEndMessage).issuer !== issuer || ++seen < count) return
      unsubscribe(DIAGNOSTICS_CHANNELS.jwksFetchEnd, listener)
      resolve()
    }
    subscribe(DIAGNOSTICS_CHANNELS.jwksFetchEnd, listener)
  })
}

describe('JWKS cache', () => {
  let mock: MockAgentPress
  let now: number
  const clock = () => now

  beforeEach(async () => {
    now = Date.UTC(2026, 10, 21, 12, 0, 0)
    mock = await createMockAgentPress({ clock })
  })
  afterEach(() => mock.close())

  it('cold start: 200 concurrent verifications share exactly one fetch', async () => {
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    const tokens = Array.from({ length: 200 }, (_, i) => mock.signToken({ sub: `u${i}` }))
    const results = await Promise.all(tokens.map((t) => verifier.verifyToken(t)))
    expect(results.map((c) => c.sub)).to.deep.equal(tokens.map((_, i) => `u${i}`))
    expect(mock.jwksRequestCount).to.equal(1)
    expect(verifier.jwksFetchCount).to.equal(1)
  })

  it('500 random unknown kids inside one cooldown are held for, then refused by, one extra fetch', async () => {
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    await verifier.verifyToken(mock.signToken())
    const key = mock.keys[0]!.privateKey
    const forged = Array.from({ length: 500 }, (_, i) =>
      signWith(key, { alg: 'EdDSA', kid: `random-${i}-${Math.random()}` }, { iss: mock.issuer }),
    )
    // Pin the order instead of sleeping: wait (bounded) for the end of the refetch the first miss
    // starts, whatever the load of the machine.
    const refetchEnded = fetchEnds(verifier.issuer, 1)
    const pending = forged.map((t) => reasonOf(verifier.verifyToken(t)))
    await within(refetchEnded, 10_000)
    // The first miss started a refetch at once; the 499 that arrived after it started are held:
    // only a fetch that starts after them may refuse them.
    expect(mock.jwksRequestCount).to.equal(2)
    now += 5_000 // the default cooldown has passed; the next miss starts the refetch
    const reasons = await Promise.all([...pending, reasonOf(verifier.verifyToken(forged[0]!))])
    expect(new Set(reasons)).to.deep.equal(new Set(['kid_missing_or_unknown']))
    expect(mock.jwksRequestCount).to.equal(3)
    // After the cooldown, one more refetch is allowed.
    now += 5_000
    expect(await reasonOf(verifier.verifyToken(forged[1]!))).to.equal('kid_missing_or_unknown')
    expect(mock.jwksRequestCount).to.equal(4)
  })

  it('a rotated-in key is accepted on its first use, with one refetch and no failure', async () => {
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    await verifier.verifyToken(mock.signToken())
    mock.rotateKeys()
    const tokens = Array.from({ length: 50 }, () => mock.signToken())
    const reasons = await Promise.all(tokens.map((t) => reasonOf(verifier.verifyToken(t))))
    expect(reasons.every((r) => r === 'ok')).to.equal(true)
    expect(mock.jwksRequestCount).to.equal(2)
  })

  it('a stalled JWKS → JwksUnavailableError within the timeout + 1 s', async () => {
    mock.setJwksMode('stall')
    const errors: JwksFetchError[] = []
    const verifier = new PartnerTokenVerifier({
      ...mock.partnerMcp,
      jwksTimeoutMs: 300,
      onJwksError: (e) => errors.push(e),
    })
    const started = Date.now()
    const error = await within(
      verifier.verifyToken(mock.signToken()).catch((e: unknown) => e),
      1300,
    )
    expect(error).to.be.instanceOf(JwksUnavailableError)
    expect((error as JwksUnavailableError).status).to.equal(503)
    expect((error as JwksUnavailableError).headers).to.deep.equal({ 'Retry-After': '5' })
    expect((error as Error).cause).to.be.instanceOf(JwksFetchError)
    expect(Date.now() - started).to.be.below(1300)
    expect(errors.map((e) => e.reason)).to.deep.equal(['timeout'])
  })

  for (const [mode, reason] of [
    ['error', 'http_status'],
    ['not_found', 'http_status'],
    ['redirect', 'redirect'],
    ['garbage', 'invalid_json'],
    ['html', 'invalid_json'],
    ['keys_null', 'invalid_jwks'],
    ['oversized', 'too_large'],
    ['reset', 'network'],
  ] as const) {
    it(`cold start with JWKS "${mode}" → 503 (${reason}), never a 401`, async () => {
      mock.setJwksMode(mode)
      const errors: JwksFetchError[] = []
      const verifier = new PartnerTokenVerifier({
        ...mock.partnerMcp,
        onJwksError: (e) => errors.push(e),
      })
      expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('jwks_unavailable')
      expect(errors.map((e) => e.reason)).to.deep.equal([reason])
      expect(errors[0]!.message).not.to.match(/garbage|Maintenance|xxxx/)
    })

    it(`after a good fetch, JWKS "${mode}" leaves the cached keys working (stale-if-error)`, async () => {
      const errors: JwksFetchError[] = []
      const verifier = new PartnerTokenVerifier({
        ...mock.partnerMcp,
        clock,
        jwksCacheMaxAgeMs: 60_000,
        jwksTimeoutMs: 500,
        onJwksError: (e) => errors.push(e),
      })
      await verifier.verifyToken(mock.signToken())
      mock.setJwksMode(mode)
      now += 61_000 // past max age: a refresh is due and fails
      expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('ok')
      await verifier.refreshJwks().catch(() => {})
      expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('ok')
      expect(errors.length).to.be.greaterThan(0)
      expect(errors.every((e) => e.reason === reason)).to.equal(true)
    })
  }

  it('refused connection on cold start → 503; recovers on the first good fetch', async () => {
    const port = await closedPort()
    const verifier = new PartnerTokenVerifier({
      ...mock.partnerMcp,
      clock,
      jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
    })
    expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('jwks_unavailable')
    // The same verifier pointed at the working mock: a fresh one models the endpoint coming back.
    const recovered = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    mock.setJwksMode('error')
    expect(await reasonOf(recovered.verifyToken(mock.signToken()))).to.equal('jwks_unavailable')
    mock.setJwksMode('ok')
    now += 5_000 // the post-failure pause (Retry-After) has passed
    expect(await reasonOf(recovered.verifyToken(mock.signToken()))).to.equal('ok')
  })

  it('after a failed fetch, requests inside the pause get 503 at once without refetching', async () => {
    mock.setJwksMode('error')
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    await reasonOf(verifier.verifyToken(mock.signToken()))
    const before = mock.jwksRequestCount
    const reasons = await Promise.all(
      Array.from({ length: 100 }, () => reasonOf(verifier.verifyToken(mock.signToken()))),
    )
    expect(new Set(reasons)).to.deep.equal(new Set(['jwks_unavailable']))
    expect(mock.jwksRequestCount).to.equal(before)
  })

  it('serves stale keys for jwksStaleMaxMs past max age, then answers 503', async () => {
    const errors: JwksFetchError[] = []
    const verifier = new PartnerTokenVerifier({
      ...mock.partnerMcp,
      clock,
      jwksCacheMaxAgeMs: 60_000,
      jwksStaleMaxMs: 120_000,
      onJwksError: (e) => errors.push(e),
    })
    await verifier.verifyToken(mock.signToken())
    mock.setJwksMode('error')
    now += 170_000 // 60 s fresh + 110 s into the 120 s stale window
    expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('ok')
    await new Promise((r) => setTimeout(r, 50)) // let the background refresh fail
    expect(errors.length).to.equal(1)
    now += 20_000 // beyond the stale window
    expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('jwks_unavailable')
    mock.setJwksMode('ok')
    now += 5_000
    expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('ok')
  })

  it('an unknown kid whose refetch fails is an outage (503), not a bad token', async () => {
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    await verifier.verifyToken(mock.signToken())
    mock.rotateKeys()
    mock.setJwksMode('error')
    expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('jwks_unavailable')
  })

  it('refreshJwks: concurrent calls share one fetch plus one follow-up, and bypass the cooldown', async () => {
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    await verifier.verifyToken(mock.signToken())
    // The first starts a fetch; the 49 asked while it runs share one follow-up (§5: a refresh
    // is served by a fetch that started after it was asked for).
    await Promise.all(Array.from({ length: 50 }, () => verifier.refreshJwks()))
    expect(mock.jwksRequestCount).to.equal(3)
    await verifier.refreshJwks()
    expect(mock.jwksRequestCount).to.equal(4)
  })

  it('refreshJwks during an unknown-kid fetch queues exactly one follow-up', async () => {
    mock.setJwksMode('stall') // the in-flight fetch started before the rotation and will fail
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock, jwksTimeoutMs: 300 })
    const first = verifier.verifyToken(mock.signToken()).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 50))
    mock.setJwksMode('ok')
    await Promise.all([verifier.refreshJwks(), verifier.refreshJwks(), verifier.refreshJwks()])
    expect(mock.jwksRequestCount).to.equal(2)
    expect(await first).to.be.instanceOf(JwksUnavailableError)
    expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('ok')
    expect(mock.jwksRequestCount).to.equal(2)
  })

  it('refreshJwks rejects with the fetch failure', async () => {
    const verifier = new PartnerTokenVerifier(mock.partnerMcp)
    mock.setJwksMode('error')
    const error = await verifier.refreshJwks().catch((e: unknown) => e)
    expect(error).to.be.instanceOf(JwksFetchError)
    expect((error as JwksFetchError).reason).to.equal('http_status')
    expect((error as JwksFetchError).httpStatus).to.equal(500)
  })

  it('a throwing onJwksError hook does not break anything', async () => {
    mock.setJwksMode('error')
    const verifier = new PartnerTokenVerifier({
      ...mock.partnerMcp,
      onJwksError: () => {
        throw new Error('hook failed')
      },
    })
    expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('jwks_unavailable')
  })

  it('filters candidate keys: kty, crv, use, alg, private d, bad x, small-order points', async () => {
    const good = mock.keys[0]!.publicJwk
    const smallOrder = [
      '0100000000000000000000000000000000000000000000000000000000000000',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0000000000000000000000000000000000000000000000000000000000000080',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
      // non-canonical encodings (y >= p) of the identity and of y = 0
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    ]
    const variants: Array<[string, Record<string, unknown>]> = [
      ['kty EC', { ...good, kty: 'EC' }],
      ['crv Ed448', { ...good, crv: 'Ed448' }],
      ['crv X25519', { ...good, crv: 'X25519' }],
      ['use enc', { ...good, use: 'enc' }],
      ['alg RS256', { ...good, alg: 'RS256' }],
      ['alg ed25519 (RFC 9864 name, wrong case)', { ...good, alg: 'ed25519' }],
      ['alg "EdDSA " (a trailing space)', { ...good, alg: 'EdDSA ' }],
      ['key_ops ["encrypt"]', { ...good, key_ops: ['encrypt'] }],
      ['key_ops "verify" (not an array)', { ...good, key_ops: 'verify' }],
      ['ext "false" (not a boolean)', { ...good, ext: 'false' }],
      ['a private d', { ...good, d: good.x }],
      ['x too short', { ...good, x: good.x.slice(0, 42) }],
      ['x padded', { ...good, x: `${good.x}=` }],
      ['x a number', { ...good, x: 1 }],
      ...smallOrder.map((hex, i): [string, Record<string, unknown>] => [
        `small-order point #${i}`,
        { ...good, x: Buffer.from(hex, 'hex').toString('base64url') },
      ]),
    ]
    for (const [label, jwk] of variants) {
      mock.setJwksDocument({ keys: [jwk] })
      const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
      expect(await reasonOf(verifier.verifyToken(mock.signToken())), label).to.equal(
        'kid_missing_or_unknown',
      )
    }
    mock.setJwksDocument({ keys: [null, 1, 'x', [], { ...good, kid: '' }, good] })
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    expect(await reasonOf(verifier.verifyToken(mock.signToken()))).to.equal('ok')
  })

  it('keeps instances apart: staging and production in one process, no cross-talk', async () => {
    const staging = await createMockAgentPress({ orgSlug: 'mock-org', clock })
    try {
      const prodVerifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
      const stagingVerifier = new PartnerTokenVerifier({ ...staging.partnerMcp, clock })
      expect(await reasonOf(prodVerifier.verifyToken(mock.signToken()))).to.equal('ok')
      expect(await reasonOf(stagingVerifier.verifyToken(staging.signToken()))).to.equal('ok')
      expect(await reasonOf(prodVerifier.verifyToken(staging.signToken()))).to.equal(
        'issuer_mismatch',
      )
      expect(await reasonOf(stagingVerifier.verifyToken(mock.signToken()))).to.equal(
        'issuer_mismatch',
      )
      // Even with the issuer forged to match, the other environment's key is not trusted.
      // (its kid is unknown to production: one kid-miss refetch, then refused)
      expect(
        await reasonOf(prodVerifier.verifyToken(staging.signToken({ iss: mock.issuer }))),
      ).to.equal('kid_missing_or_unknown')
      expect(mock.jwksRequestCount).to.equal(2)
      expect(staging.jwksRequestCount).to.equal(1)
    } finally {
      await staging.close()
    }
  })

  it('fetches only the configured URL, never one derived from a token', async () => {
    const other = await startCountingServer()
    try {
      const verifier = new PartnerTokenVerifier(mock.partnerMcp)
      await reasonOf(verifier.verifyToken(mock.signToken({ iss: `${other.url}/orgs/x` })))
      expect(other.count).to.equal(0)
      expect(mock.jwksRequestCount).to.equal(0)
    } finally {
      await other.close()
    }
  })
})
