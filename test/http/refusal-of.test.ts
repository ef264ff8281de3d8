// lib/http/refusal-of.ts on real Express apps on 127.0.0.1:0: a Passport custom callback and an
// error handler after failWithError each learn the exact reason, status and challenge.
import { expect } from 'chai'
import express, { type ErrorRequestHandler } from 'express'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import passportModule from 'passport'
import { Strategy as BearerStrategy } from 'passport-http-bearer'
import {
  AgentPressPartnerStrategy,
  AgentPressHttpError,
  PartnerTokenError,
  refusalOf,
  requireScopes,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

interface Answer {
  status: number
  challenge: string | null
  body: unknown
}

async function ask(server: Server, token?: string, path = '/mcp'): Promise<Answer> {
  const { port } = server.address() as AddressInfo
  const headers: Record<string, string> =
    token === undefined ? {} : { authorization: `Bearer ${token}` }
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers })
  return {
    status: response.status,
    challenge: response.headers.get('www-authenticate'),
    body: (await response.json()) as unknown,
  }
}

async function listen(app: express.Express): Promise<Server> {
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

describe('refusalOf(req, err)', () => {
  let mock: MockAgentPress
  const servers: Server[] = []
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(async () => {
    for (const server of servers) server.close()
    await mock.close()
  })

  function strategy(name: string, requiredScopes: string[] = []) {
    return new AgentPressPartnerStrategy(
      { partnerMcp: mock.partnerMcp, realm: 'mcp', requiredScopes, name },
      async (claims) => (claims.sub === 'stranger' ? false : { id: claims.sub }),
    )
  }

  describe('in a Passport custom callback', () => {
    let server: Server
    before(async () => {
      const passport = new passportModule.Passport()
      passport.use(strategy('agentpress-partner', ['mcp:read']))
      const app = express()
      app.post('/mcp', (req, res, next) => {
        passport.authenticate(
          'agentpress-partner',
          { session: false },
          (err: unknown, user: unknown, info: unknown) => {
            const refusal = refusalOf(req, err)
            if (refusal !== undefined) {
              res.status(refusal.status).set(refusal.headers)
              res.json({ reason: refusal.reason, passportInfo: info ?? null })
              return
            }
            if (err) return next(err)
            res.json({ user })
          },
        )(req, res, next)
      })
      server = await listen(app)
      servers.push(server)
    })

    it('a success: no refusal', async () => {
      expect(await ask(server, mock.signToken({ sub: 'alice' }))).to.deep.equal({
        status: 200,
        challenge: null,
        body: { user: { id: 'alice' } },
      })
    })

    it('no credentials → 401 no_credentials with the realm-only challenge', async () => {
      expect(await ask(server)).to.deep.equal({
        status: 401,
        challenge: 'Bearer realm="mcp"',
        body: { reason: 'no_credentials', passportInfo: 'Bearer realm="mcp"' },
      })
    })

    it('each token failure → 401 with its reason, where Passport alone gives only the challenge', async () => {
      const expired = mock.signToken({ exp: Math.floor(Date.now() / 1000) - 600 })
      for (const [token, reason, description] of [
        ['x.y.z', 'malformed', 'Malformed token'],
        [expired, 'expired', 'Token expired'],
      ] as const) {
        const challenge = `Bearer realm="mcp", error="invalid_token", error_description="${description}"`
        expect(await ask(server, token)).to.deep.equal({
          status: 401,
          challenge,
          body: { reason, passportInfo: challenge },
        })
      }
    })

    it('403s and 400s arrive as our error: insufficient_scope keeps its scope, user_not_provisioned', async () => {
      expect(await ask(server, mock.signToken({ scope: 'other' }))).to.deep.equal({
        status: 403,
        challenge:
          'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:read"',
        body: { reason: 'insufficient_scope', passportInfo: null },
      })
      expect(await ask(server, mock.signToken({ sub: 'stranger' }))).to.deep.equal({
        status: 403,
        challenge:
          'Bearer realm="mcp", error="user_not_provisioned", error_description="User not provisioned"',
        body: { reason: 'user_not_provisioned', passportInfo: null },
      })
      expect(await ask(server, 'not a b64token')).to.deep.equal({
        status: 400,
        challenge:
          'Bearer realm="mcp", error="invalid_request", error_description="Malformed authorization header"',
        body: { reason: 'invalid_request', passportInfo: null },
      })
    })
  })

  describe('in an error handler after failWithError, keeping WWW-Authenticate', () => {
    let server: Server
    before(async () => {
      const passport = new passportModule.Passport()
      passport.use(strategy('agentpress-partner'))
      passport.use(
        new BearerStrategy((token, done) => done(null, token === 'api-key' ? { id: 'k' } : false)),
      )
      const app = express()
      const chain = ['agentpress-partner', 'bearer']
      app.post(
        '/mcp',
        passport.authenticate(chain, { session: false, failWithError: true }),
        requireScopes('mcp:write'),
        (req, res) => {
          res.json({ user: req.user })
        },
      )
      app.post(
        '/open',
        passport.authenticate(chain, { session: false, failWithError: true }),
        (req) => {
          throw new Error(`handler failed for ${(req.user as { id: string }).id}`)
        },
      )
      // The custom handler of the README: our refusals as JSON; WWW-Authenticate as already set
      // (Passport sets every strategy's challenge on a 401), else ours.
      const onError: ErrorRequestHandler = (err, req, res, next) => {
        const refusal = refusalOf(req, err)
        if (refusal === undefined) return next(err)
        for (const [name, value] of Object.entries(refusal.headers)) {
          if (!res.hasHeader(name)) res.setHeader(name, value)
        }
        res.status(refusal.status).json({ error: refusal.reason, message: refusal.message })
      }
      app.use(onError)
      app.use(((err, _req, res, _next) => {
        res.status(500).json({ unhandled: String(err) })
      }) as ErrorRequestHandler)
      server = await listen(app)
      servers.push(server)
    })

    it('a 401 of the chain: our reason, and both strategies’ challenges kept', async () => {
      expect(await ask(server, 'x.y.z')).to.deep.equal({
        status: 401,
        challenge:
          'Bearer realm="mcp", error="invalid_token", error_description="Malformed token", Bearer realm="Users", error="invalid_token"',
        body: { error: 'malformed', message: 'Malformed token' },
      })
    })

    it('a 403 of requireScopes: our error, with its scope challenge', async () => {
      expect(await ask(server, mock.signToken({ scope: 'mcp:read' }))).to.deep.equal({
        status: 403,
        challenge:
          'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:write"',
        body: { error: 'insufficient_scope', message: 'Insufficient scope' },
      })
    })

    it('after another strategy’s success, a later error is not taken for our earlier 401', async () => {
      // 'api-key' is no JWT: ours fails (recorded: malformed), the bearer strategy succeeds.
      expect(await ask(server, 'api-key', '/open')).to.deep.equal({
        status: 500,
        challenge: null,
        body: { unhandled: 'Error: handler failed for k' },
      })
    })
  })

  it('returns our error as is, the right class for a recorded 401, and undefined otherwise', () => {
    const req = {} as Parameters<typeof refusalOf>[0]
    expect(refusalOf(req)).to.equal(undefined)
    expect(refusalOf(req, new Error('boom'))).to.equal(undefined)
    const ours = new AgentPressHttpError('insufficient_scope', { scope: 'a' })
    expect(refusalOf(req, ours)).to.equal(ours)
    const recorded = req as unknown as Record<symbol, unknown>
    recorded[Symbol.for('passport-agentpress-partner.failure')] = 'expired'
    recorded[Symbol.for('passport-agentpress-partner.context')] = { realm: 'r' }
    const refusal = refusalOf(req)
    expect(refusal).to.be.instanceOf(PartnerTokenError)
    expect({
      reason: refusal?.reason,
      status: refusal?.status,
      headers: refusal?.headers,
    }).to.deep.equal({
      reason: 'expired',
      status: 401,
      headers: {
        'WWW-Authenticate':
          'Bearer realm="r", error="invalid_token", error_description="Token expired"',
      },
    })
    // Some other error after our 401 (e.g. a later middleware's): that error is what happened.
    expect(refusalOf(req, new Error('later'))).to.equal(undefined)
    recorded[Symbol.for('passport-agentpress-partner.failure')] = 'no_credentials'
    expect(refusalOf(req)).to.be.instanceOf(AgentPressHttpError)
    // A recorded 403 without its error: the error carried it, so nothing is invented here.
    recorded[Symbol.for('passport-agentpress-partner.failure')] = 'user_not_provisioned'
    expect(refusalOf(req)).to.equal(undefined)
  })
})
