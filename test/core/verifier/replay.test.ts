// Replay rejection with the in-memory store and with foreign stores: once per (iss, jti), only
// after every other check, 503 (never acceptance, never 401) when the store cannot decide; and the
// HTTP answers on real Express 4 / Express 5 / Connect apps with real Passport.
import { expect } from 'chai'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  AgentPressPartnerStrategy,
  MemoryReplayStore,
  PartnerTokenError,
  PartnerTokenVerifier,
  ReplayUnavailableError,
  authenticatePartner,
  type ReplayStore,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { STACKS, buildApp, echo, newPassport, passportJson } from '../../support/stacks.js'
import { flipChar, parts } from '../../support/tokens.js'

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'accepted'
  } catch (error) {
    return `${(error as Error).name}:${(error as { reason?: string }).reason}`
  }
}

describe('replay rejection (verifier option `replay`)', () => {
  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(() => mock.close())

  it('accepts each (iss, jti) once; a second use is token_replayed; another jti is accepted', async () => {
    const verifier = new PartnerTokenVerifier({
      ...mock.partnerMcp,
      replay: new MemoryReplayStore(),
    })
    const token = mock.signToken()
    expect(await reason(verifier.verifyToken(token))).to.equal('accepted')
    expect(await reason(verifier.verifyToken(token))).to.equal('PartnerTokenError:token_replayed')
    // The same jti re-signed (a new token string) is the same use.
    const jti = 'same-jti'
    expect(await reason(verifier.verifyToken(mock.signToken({ jti })))).to.equal('accepted')
    expect(await reason(verifier.verifyToken(mock.signToken({ jti, sub: 'other' })))).to.equal(
      'PartnerTokenError:token_replayed',
    )
    expect(await reason(verifier.verifyToken(mock.signToken()))).to.equal('accepted')
  })

  it('records only tokens that passed the signature and every claim check', async () => {
    const store = new MemoryReplayStore()
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, replay: store })
    const [h, p, s] = parts(mock.signToken())
    const refused = [
      `${h}.${p}.${flipChar(s, 2)}`,
      mock.signToken({ aud: 'https://elsewhere.example/mcp' }),
      mock.signToken({ exp: Math.floor(Date.now() / 1000) - 600 }),
      mock.signToken({ ext_provider: 'someone-else' }),
    ]
    for (const token of refused) {
      expect(await reason(verifier.verifyToken(token))).to.match(/^PartnerTokenError:/)
    }
    expect(store.size).to.equal(0)
  })

  it('remembers until exp + clock tolerance, then forgets (bounded memory)', async () => {
    let now = Date.now()
    const store = new MemoryReplayStore({ maxEntries: 2, clock: () => now })
    const exp = Math.floor(now / 1000) + 60
    expect(store.claim('iss', 'a', (exp + 30) * 1000)).to.equal(true)
    expect(store.claim('iss', 'b', (exp + 30) * 1000)).to.equal(true)
    expect(store.claim('iss', 'a', (exp + 30) * 1000)).to.equal(false)
    // Full of live entries: refuse rather than evict one (that would re-open its replay).
    expect(() => store.claim('iss', 'c', (exp + 30) * 1000)).to.throw('replay store full')
    now = (exp + 30) * 1000 + 1
    expect(store.claim('iss', 'c', (exp + 90) * 1000)).to.equal(true)
    expect(store.size).to.equal(1)
    // Namespaced by issuer: the same jti of another issuer is another pair.
    expect(store.claim('other-iss', 'c', (exp + 90) * 1000)).to.equal(true)
  })

  it('a store that cannot decide is 503 replay_unavailable, whatever it does', async () => {
    const stores: ReplayStore[] = [
      {
        claim() {
          throw new Error('connection refused')
        },
      },
      { claim: () => Promise.reject(new Error('timeout')) },
      { claim: () => 'yes' as unknown as boolean },
      { claim: () => Promise.resolve(undefined as unknown as boolean) },
      new MemoryReplayStore({ maxEntries: 1 }),
    ]
    ;(stores[4] as MemoryReplayStore).claim('x', 'y', Date.now() + 60_000)
    for (const replay of stores) {
      const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, replay })
      const error = await verifier.verifyToken(mock.signToken()).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).to.be.instanceOf(ReplayUnavailableError)
      expect(error).to.include({ status: 503, reason: 'replay_unavailable' })
      expect((error as ReplayUnavailableError).headers).to.deep.equal({ 'Retry-After': '5' })
      expect(error).not.to.be.instanceOf(PartnerTokenError)
    }
    // The store's own failure stays in `cause`, for logs.
    const cause = new Error('connection refused')
    const verifier = new PartnerTokenVerifier({
      ...mock.partnerMcp,
      replay: {
        claim() {
          throw cause
        },
      },
    })
    const error = await verifier.verifyToken(mock.signToken()).catch((e: unknown) => e)
    expect((error as Error).cause).to.equal(cause)
  })

  it('MemoryReplayStore refuses bad options with exact TypeErrors', () => {
    expect(() => new MemoryReplayStore({ maxEntries: 0 })).to.throw(
      TypeError,
      'options.maxEntries must be a positive integer, got 0',
    )
    expect(() => new MemoryReplayStore({ size: 1 } as never)).to.throw(
      TypeError,
      'Unknown MemoryReplayStore option: size',
    )
  })

  for (const stack of STACKS) {
    it(`${stack}: 200, then 401 token_replayed with the exact challenge and body; 503 + Retry-After when the store fails`, async () => {
      let failing = false
      const memory = new MemoryReplayStore()
      const replay: ReplayStore = {
        claim: (iss, jti, exp) => {
          if (failing) throw new Error('down')
          return memory.claim(iss, jti, exp)
        },
      }
      const strategy = new AgentPressPartnerStrategy(
        { partnerMcp: { ...mock.partnerMcp, replay }, realm: 'mcp' },
        async (claims) => ({ id: claims.sub }),
      )
      const passport = newPassport()
      passport.use(strategy)
      const app = buildApp(stack, [
        { path: '/mcp', handlers: [passportJson(passport, { body: 'json' }), echo] },
        // Without Passport: the same answers.
        { path: '/direct', handlers: [authenticatePartner(strategy, { body: 'json' }), echo] },
      ])
      const server: Server = createServer(app)
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const get = async (token: string, url = `${base}/mcp`) => {
        const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } })
        return {
          status: res.status,
          challenge: res.headers.get('www-authenticate'),
          retryAfter: res.headers.get('retry-after'),
          body: await res.text(),
        }
      }
      try {
        const token = mock.signToken()
        expect((await get(token)).status).to.equal(200)
        expect(await get(token)).to.deep.equal({
          status: 401,
          challenge:
            'Bearer realm="mcp", error="invalid_token", error_description="Token already used", resource_metadata="http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp"',
          retryAfter: null,
          body: '{"error":"invalid_token","error_description":"Token already used"}',
        })
        expect(await get(token, `${base}/direct`)).to.deep.equal({
          status: 401,
          challenge:
            'Bearer realm="mcp", error="invalid_token", error_description="Token already used", resource_metadata="http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp"',
          retryAfter: null,
          body: '{"error":"invalid_token","error_description":"Token already used"}',
        })
        failing = true
        for (const url of [`${base}/mcp`, `${base}/direct`]) {
          expect(await get(mock.signToken(), url)).to.deep.equal({
            status: 503,
            challenge: null,
            retryAfter: '5',
            body: '{"error":"replay_unavailable","error_description":"Replay check unavailable"}',
          })
        }
      } finally {
        server.closeAllConnections()
        await new Promise<void>((resolve) => server.close(() => resolve()))
      }
    })
  }
})
