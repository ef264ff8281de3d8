// readinessHandler and warmUp(): cold / fresh / stale / unavailable answered over HTTP by real
// Express 4, Express 5 and Connect apps, against real loopback JWKS servers that count requests.
import { expect } from 'chai'
import {
  AgentPressPartnerStrategy,
  MultiIssuerVerifier,
  PartnerTokenVerifier,
} from 'passport-agentpress-partner'
import { readinessHandler } from 'passport-agentpress-partner/diagnostics'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { listen, send, type Listening } from '../support/wire.js'
import { buildApp, STACKS } from '../support/stacks.js'

const AUDIENCE = 'http://127.0.0.1:3000/mcp'
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()

describe('readiness', function () {
  this.timeout(20_000)
  let acme: MockAgentPress
  let globex: MockAgentPress
  let now: number
  const clock = () => now

  beforeEach(async () => {
    now = T0
    acme = await createMockAgentPress({ audience: AUDIENCE, orgSlug: 'acme', clock })
    globex = await createMockAgentPress({ audience: AUDIENCE, orgSlug: 'globex', clock })
  })
  afterEach(async () => {
    await acme.close()
    await globex.close()
  })

  const strategyOf = () =>
    new AgentPressPartnerStrategy(
      {
        partnerMcp: [
          { ...acme.partnerMcp, clock },
          { ...globex.partnerMcp, clock },
        ],
      },
      async () => ({}),
    )

  const status = (
    mock: MockAgentPress,
    state: string,
    extra: Partial<Record<string, unknown>> = {},
  ) => ({
    issuer: mock.issuer,
    state,
    keyCount: 0,
    lastFetchAt: null,
    lastSuccessAt: null,
    lastFailureAt: null,
    lastFailureReason: null,
    ...extra,
  })

  for (const stack of STACKS) {
    describe(stack, () => {
      let server: Listening
      let strategy: AgentPressPartnerStrategy
      beforeEach(async () => {
        strategy = strategyOf()
        server = await listen(
          buildApp(stack, [{ path: '/readyz', handlers: [readinessHandler(strategy)] }]),
        )
      })
      afterEach(() => server.close())

      const probe = async (method = 'GET') => {
        const res = await send(server.port, { method, path: '/readyz' })
        return {
          status: res.status,
          cacheControl: res.get('cache-control'),
          retryAfter: res.get('retry-after'),
          type: res.get('content-type'),
          body: res.text === '' ? undefined : JSON.parse(res.text),
        }
      }

      it('cold (nothing fetched yet): 503, and the probe itself fetches nothing', async () => {
        expect(await probe()).to.deep.equal({
          status: 503,
          cacheControl: 'no-store',
          retryAfter: '5',
          type: 'application/json; charset=utf-8',
          body: { ready: false, issuers: [status(acme, 'cold'), status(globex, 'cold')] },
        })
        expect([acme.jwksRequestCount, globex.jwksRequestCount]).to.deep.equal([0, 0])
      })

      it('fresh after warmUp(): warmUp resolves ready, the probe answers 200', async () => {
        const fresh = (mock: MockAgentPress) =>
          status(mock, 'fresh', { keyCount: 1, lastFetchAt: T0, lastSuccessAt: T0 })
        expect(await strategy.warmUp()).to.deep.equal({
          ready: true,
          issuers: [fresh(acme), fresh(globex)],
        })
        expect([acme.jwksRequestCount, globex.jwksRequestCount]).to.deep.equal([1, 1])
        const at = (mock: MockAgentPress) =>
          status(mock, 'fresh', { keyCount: 1, lastFetchAt: iso(T0), lastSuccessAt: iso(T0) })
        expect(await probe()).to.deep.equal({
          status: 200,
          cacheControl: 'no-store',
          retryAfter: undefined,
          type: 'application/json; charset=utf-8',
          body: { ready: true, issuers: [at(acme), at(globex)] },
        })
        expect((await probe('HEAD')).status).to.equal(200)
        expect([acme.jwksRequestCount, globex.jwksRequestCount]).to.deep.equal([1, 1])
      })

      it('stale but serving (past max age, the refresh fails): still 200, with the failure', async () => {
        await strategy.warmUp()
        now = T0 + 3_600_000 + 1_000
        acme.setJwksMode('error')
        const retried = await strategy.warmUp()
        expect(retried.ready).to.equal(true)
        // "Ready" is true: the stale key still answers a request.
        const claims = await strategy.verifiers[0]!.verifyToken(acme.signToken({ sub: 'stale' }))
        expect(claims.sub).to.equal('stale')
        expect(await probe()).to.deep.equal({
          status: 200,
          cacheControl: 'no-store',
          retryAfter: undefined,
          type: 'application/json; charset=utf-8',
          body: {
            ready: true,
            issuers: [
              status(acme, 'stale', {
                keyCount: 1,
                lastFetchAt: iso(now),
                lastSuccessAt: iso(T0),
                lastFailureAt: iso(now),
                lastFailureReason: 'http_status',
              }),
              status(globex, 'fresh', {
                keyCount: 1,
                lastFetchAt: iso(now),
                lastSuccessAt: iso(now),
              }),
            ],
          },
        })
      })

      it('unavailable (JWKS down at boot): warmUp resolves not ready, never rejects; 503', async () => {
        globex.setJwksMode('stall')
        acme.setJwksMode('reset')
        const strategy2 = new AgentPressPartnerStrategy(
          {
            partnerMcp: [
              { ...acme.partnerMcp, clock },
              { ...globex.partnerMcp, clock, jwksTimeoutMs: 200 },
            ],
          },
          async () => ({}),
        )
        const result = await strategy2.warmUp()
        const down = (mock: MockAgentPress, reason: string) =>
          status(mock, 'unavailable', {
            lastFetchAt: T0,
            lastFailureAt: T0,
            lastFailureReason: reason,
          })
        expect(result).to.deep.equal({
          ready: false,
          issuers: [down(acme, 'network'), down(globex, 'timeout')],
        })
        const probe2 = await listen(
          buildApp(stack, [{ path: '/readyz', handlers: [readinessHandler(strategy2)] }]),
        )
        try {
          const res = await send(probe2.port, { method: 'GET', path: '/readyz' })
          expect(res.status).to.equal(503)
          expect(res.get('retry-after')).to.equal('5')
          expect(JSON.parse(res.text)).to.deep.equal({
            ready: false,
            issuers: [
              status(acme, 'unavailable', {
                lastFetchAt: iso(T0),
                lastFailureAt: iso(T0),
                lastFailureReason: 'network',
              }),
              status(globex, 'unavailable', {
                lastFetchAt: iso(T0),
                lastFailureAt: iso(T0),
                lastFailureReason: 'timeout',
              }),
            ],
          })
        } finally {
          await probe2.close()
        }
      })

      it('stale keys past the stale window with a failed refresh: unavailable, 503', async () => {
        await strategy.warmUp()
        now = T0 + 3_600_000 + 86_400_000
        acme.setJwksMode('error')
        await strategy.warmUp()
        const res = await probe()
        expect(res.status).to.equal(503)
        expect(res.body.issuers[0]).to.deep.equal(
          status(acme, 'unavailable', {
            lastFetchAt: iso(now),
            lastSuccessAt: iso(T0),
            lastFailureAt: iso(now),
            lastFailureReason: 'http_status',
          }),
        )
        expect(res.body.issuers[1].state).to.equal('fresh')
      })

      it('other methods: 405 with Allow: GET, HEAD', async () => {
        const res = await send(server.port, { method: 'POST', path: '/readyz', body: '' })
        expect(res.status).to.equal(405)
        expect(res.get('allow')).to.equal('GET, HEAD')
        expect(res.text).to.equal('{"error":"method_not_allowed"}')
      })
    })
  }

  it('a single verifier, an array of verifiers and a MultiIssuerVerifier all warm up and report', async () => {
    const a = new PartnerTokenVerifier({ ...acme.partnerMcp, clock })
    const b = new PartnerTokenVerifier({ ...globex.partnerMcp, clock })
    const fresh = (mock: MockAgentPress) =>
      status(mock, 'fresh', { keyCount: 1, lastFetchAt: T0, lastSuccessAt: T0 })
    expect(await a.warmUp()).to.deep.equal({ ready: true, issuers: [fresh(acme)] })
    const multi = new MultiIssuerVerifier([a, b])
    expect(await multi.warmUp()).to.deep.equal({
      ready: true,
      issuers: [fresh(acme), fresh(globex)],
    })
    expect(multi.jwksStatuses()).to.deep.equal([fresh(acme), fresh(globex)])
    expect(b.jwksStatus()).to.deep.equal(fresh(globex))
    for (const target of [a, [a, b]]) {
      const server = await listen(
        buildApp('express5', [{ path: '/readyz', handlers: [readinessHandler(target)] }]),
      )
      try {
        expect((await send(server.port, { method: 'GET', path: '/readyz' })).status).to.equal(200)
      } finally {
        await server.close()
      }
    }
  })

  it('refuses at construction what cannot report a status', () => {
    const foreign = { issuer: 'x', verifyToken: async () => ({}) as never }
    expect(() => readinessHandler([foreign])).to.throw(
      TypeError,
      'readinessHandler: no verifier reports a status (jwksStatus())',
    )
    expect(() => readinessHandler(null as never)).to.throw(
      TypeError,
      'readinessHandler: pass a strategy, a verifier or an array of verifiers',
    )
  })
})
