// The `jwksAgent` option: the JWKS fetch through a real HTTP CONNECT proxy on loopback (the `proxy`
// package, with `https-proxy-agent` as the application's agent), every bound of the fetch kept,
// and a proxy that is down answered as an outage (503 + Retry-After), never as a bad token.
import { expect } from 'chai'
import { Agent, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { HttpsProxyAgent } from 'https-proxy-agent'
import { createProxy } from 'proxy'
import {
  AgentPressPartnerStrategy,
  PartnerTokenVerifier,
  type JwksFetchError,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { listen, send, type Listening, type WireResponse } from '../../support/wire.js'
import { newPassport, passportJson } from '../../support/stacks.js'
import { closedPort, within } from '../../support/servers.js'

const AUDIENCE = 'http://127.0.0.1:3000/mcp'

interface LoopbackProxy {
  readonly url: string
  /** The target of every CONNECT the proxy received, in order. */
  readonly connects: string[]
  close(): Promise<void>
}

async function startProxy(): Promise<LoopbackProxy> {
  const server = createProxy(createServer())
  const connects: string[] = []
  server.on('connect', (req: { url?: string }) => connects.push(req.url ?? ''))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    connects,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

// The exact answer to an outage: 503, Retry-After: 5, no challenge, the fixed JSON body.
function expectOutage(res: WireResponse): void {
  expect(res.status).to.equal(503)
  expect(res.get('retry-after')).to.equal('5')
  expect(res.all('www-authenticate')).to.deep.equal([])
  expect(JSON.parse(res.text)).to.deep.equal({
    error: 'jwks_unavailable',
    error_description: 'Signing keys unavailable',
  })
}

describe('jwksAgent: the JWKS fetch through a CONNECT proxy', function () {
  this.timeout(20_000)
  let mock: MockAgentPress
  let proxy: LoopbackProxy
  let agents: Agent[]
  let servers: Listening[]
  const host = () => new URL(mock.url).host

  beforeEach(async () => {
    mock = await createMockAgentPress({ audience: AUDIENCE })
    proxy = await startProxy()
    agents = []
    servers = []
  })
  afterEach(async () => {
    for (const server of servers) await server.close()
    for (const agent of agents) agent.destroy()
    await proxy.close()
    await mock.close()
  })

  const agentFor = (url: string) => {
    const agent = new HttpsProxyAgent(url)
    agents.push(agent)
    return agent
  }

  // A real Express 5 app with real Passport and the strategy configured with `jwksAgent`.
  const app = async (options: Record<string, unknown>, failures: JwksFetchError[] = []) => {
    const passport = newPassport()
    passport.use(
      new AgentPressPartnerStrategy(
        {
          partnerMcp: { ...mock.partnerMcp, onJwksError: (e) => failures.push(e), ...options },
          realm: 'mcp',
        },
        async (claims) => ({ id: claims.sub }),
      ),
    )
    const built = express()
    built.get('/mcp', passportJson(passport, { body: 'json' }), (req, res) => {
      res.json({ user: (req as { user?: unknown }).user })
    })
    const server = await listen(built)
    servers.push(server)
    return (token: string) =>
      send(server.port, {
        method: 'GET',
        path: '/mcp',
        headers: [['Authorization', `Bearer ${token}`]],
      })
  }

  it('a valid token is accepted, and the proxy saw exactly the one CONNECT to the JWKS host', async () => {
    const request = await app({ jwksAgent: agentFor(proxy.url) })
    const res = await request(mock.signToken({ sub: 'alice' }))
    expect(res.status).to.equal(200)
    expect(res.text).to.equal('{"user":{"id":"alice"}}')
    expect(proxy.connects).to.deep.equal([host()])
    expect(mock.jwksRequestCount).to.equal(1)
    // Cached: the next request costs no fetch and no CONNECT.
    expect((await request(mock.signToken({ sub: 'bob' }))).status).to.equal(200)
    expect(proxy.connects).to.deep.equal([host()])
  })

  it('without jwksAgent nothing goes through the proxy (the default is unchanged)', async () => {
    const request = await app({})
    expect((await request(mock.signToken())).status).to.equal(200)
    expect(proxy.connects).to.deep.equal([])
    expect(mock.jwksRequestCount).to.equal(1)
  })

  it('the proxy is down: 503 with Retry-After: 5 and no challenge, never 401', async () => {
    const failures: JwksFetchError[] = []
    const request = await app(
      { jwksAgent: agentFor(`http://127.0.0.1:${await closedPort()}`) },
      failures,
    )
    expectOutage(await within(request(mock.signToken()), 5_000))
    expect(failures.map((f) => f.reason)).to.deep.equal(['network'])
    expect(mock.jwksRequestCount).to.equal(0)
  })

  it('the proxy refuses the tunnel (407 to the CONNECT): 503, not 401', async () => {
    const refusing = createProxy(createServer())
    refusing.authenticate = () => false
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
    const port = (refusing.address() as AddressInfo).port
    try {
      const failures: JwksFetchError[] = []
      const request = await app({ jwksAgent: agentFor(`http://127.0.0.1:${port}`) }, failures)
      expectOutage(await within(request(mock.signToken()), 5_000))
      expect(failures.map((f) => [f.reason, f.httpStatus])).to.deep.equal([['http_status', 407]])
      expect(mock.jwksRequestCount).to.equal(0)
    } finally {
      refusing.closeAllConnections()
      await new Promise<void>((resolve) => refusing.close(() => resolve()))
    }
  })

  describe('every bound of the fetch holds through the agent', () => {
    const cases = [
      ['stall', 'timeout'],
      ['redirect', 'redirect'],
      ['oversized', 'too_large'],
    ] as const
    for (const [mode, reason] of cases) {
      it(`${mode} → ${reason}, one CONNECT, 503`, async () => {
        mock.setJwksMode(mode)
        const failures: JwksFetchError[] = []
        // The short deadline only where it is the point (a loaded machine may stream slowly).
        const request = await app(
          { jwksAgent: agentFor(proxy.url), jwksTimeoutMs: mode === 'stall' ? 400 : 5_000 },
          failures,
        )
        const started = Date.now()
        expectOutage(await within(request(mock.signToken()), 5_000))
        expect(failures.map((f) => f.reason)).to.deep.equal([reason])
        // A redirect is not followed: the proxy saw only the CONNECT to the JWKS host.
        expect(proxy.connects).to.deep.equal([host()])
        if (reason === 'timeout') expect(Date.now() - started).to.be.lessThan(3_000)
      })
    }
  })

  it('is validated at construction', () => {
    const message = 'options.jwksAgent must be an http.Agent (such as a proxy agent)'
    for (const bad of [{}, null, 'http://proxy:3128', 42, { addRequest: 'no' }]) {
      expect(
        () => new PartnerTokenVerifier({ ...mock.partnerMcp, jwksAgent: bad as never }),
      ).to.throw(TypeError, message)
    }
    const plain = new Agent()
    agents.push(plain)
    expect(
      new PartnerTokenVerifier({ ...mock.partnerMcp, jwksAgent: plain }).options.jwksAgent,
    ).to.equal(plain)
  })
})
