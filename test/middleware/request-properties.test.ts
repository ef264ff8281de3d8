// What a successful request gains from the adapters, on a real Express 5 app: exactly the
// properties users and the MCP SDK read. Express gives every request object a hidden class of its
// own, so every extra property costs V8's slow path on every request (docs/performance.md); the
// route state (challenge context, body format) lives beside the request, in a WeakMap shared by
// every copy of the package.
import { expect } from 'chai'
import express from 'express'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import type { IncomingMessage, Server } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Passport } from 'passport'
import {
  agentPressErrorHandler,
  AgentPressPartnerStrategy,
  authenticatePartner,
  requireScopes,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import * as refusal from '../../dist/http/refusal.js'

type Added = { route: string; added: string[] }

describe('request properties added by the adapters (Express 5)', () => {
  let mock: MockAgentPress
  let server: Server
  let base: string[] = []
  const seen: Added[] = []
  // Named properties, and symbols of this package (Node's own symbol-keyed internals vary by
  // version and by which getters ran).
  const keysOf = (req: IncomingMessage): string[] =>
    Reflect.ownKeys(req)
      .filter(
        (k) =>
          typeof k === 'string' || String(k.description).startsWith('passport-agentpress-partner'),
      )
      .map(String)
  const record = (route: string) => (req: IncomingMessage, res: express.Response) => {
    seen.push({
      route,
      added: keysOf(req)
        .filter((k) => !base.includes(k))
        .sort(),
    })
    res.json({ ok: true })
  }

  before(async () => {
    mock = await createMockAgentPress()
    const strategy = new AgentPressPartnerStrategy(
      { partnerMcp: mock.partnerMcp, realm: 'mcp' },
      (claims, done) => done(null, { id: claims.sub }),
    )
    const passport = new Passport()
    passport.use(strategy)
    const app = express()
    app.get('/plain', (req, res) => {
      base = keysOf(req)
      res.json({ ok: true })
    })
    app.get('/direct', authenticatePartner(strategy), record('direct'))
    app.get(
      '/direct-jsonrpc',
      authenticatePartner(strategy, { body: 'jsonrpc' }),
      requireScopes('mcp:write'),
      record('direct-jsonrpc'),
    )
    app.get(
      '/passport',
      passport.authenticate('agentpress-partner', { session: false }),
      record('passport'),
    )
    // Passport's `authInfo: false` leaves req.authInfo unset: the route state is found on req.auth.
    app.get(
      '/passport-no-authinfo',
      passport.authenticate('agentpress-partner', { session: false, authInfo: false }),
      requireScopes('mcp:write'),
      record('passport-no-authinfo'),
    )
    app.use(agentPressErrorHandler())
    server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
  })
  after(async () => {
    await new Promise((resolve) => server.close(resolve))
    await mock.close()
  })

  const get = async (path: string, scope = 'mcp:read') => {
    const { port } = server.address() as { port: number }
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      headers: { Authorization: `Bearer ${mock.signToken({ scope })}` },
    })
    return {
      status: res.status,
      challenge: res.headers.get('www-authenticate'),
      body: (await res.json()) as unknown,
    }
  }

  it('authenticatePartner adds req.auth, req.user and req.authInfo, nothing else', async () => {
    await get('/plain')
    expect(await get('/direct')).to.deep.equal({ status: 200, challenge: null, body: { ok: true } })
    expect(seen.at(-1)).to.deep.equal({ route: 'direct', added: ['auth', 'authInfo', 'user'] })
  })

  it("passport.authenticate adds req.auth beside Passport's own, nothing else", async () => {
    await get('/plain')
    expect((await get('/passport')).status).to.equal(200)
    const added = seen
      .at(-1)!
      .added.filter(
        (k) =>
          ![
            'logIn',
            'login',
            'logOut',
            'logout',
            'isAuthenticated',
            'isUnauthenticated',
            '_sessionManager',
          ].includes(k),
      )
    expect(added).to.deep.equal(['auth', 'authInfo', 'user'])
  })

  // The 403 challenge of a route needing mcp:write, from the strategy's realm and audience.
  const writeScopeChallenge = (): string =>
    'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:write", ' +
    `resource_metadata="${mock.partnerMcp.audience.replace(/\/mcp$/, '')}/.well-known/oauth-protected-resource/mcp"`

  it('the route state still reaches requireScopes: the jsonrpc body and the realm of the 403', async () => {
    expect(await get('/direct-jsonrpc')).to.deep.equal({
      status: 403,
      challenge: writeScopeChallenge(),
      body: {
        jsonrpc: '2.0',
        id: null,
        error: {
          code: -32001,
          message: 'Insufficient scope',
          data: { reason: 'insufficient_scope' },
        },
      },
    })
  })

  it("after Passport's authInfo: false, requireScopes still answers with the strategy's realm and metadata", async () => {
    expect(await get('/passport-no-authinfo')).to.deep.equal({
      status: 403,
      challenge: writeScopeChallenge(),
      body: { error: 'insufficient_scope', error_description: 'Insufficient scope' },
    })
    expect((await get('/passport-no-authinfo', 'mcp:write')).status).to.equal(200)
  })

  it('a second copy of the package reads the route state this copy recorded', () => {
    const dir = mkdtempSync(join(tmpdir(), 'app-copy-'))
    try {
      const dist = new URL('../../dist/', import.meta.url)
      cpSync(dist, join(dir, 'dist'), { recursive: true })
      const other = createRequire(join(dir, 'index.js'))(
        join(dir, 'dist', 'http', 'refusal.js'),
      ) as typeof refusal
      expect(other.challengeContextOf).to.not.equal(refusal.challengeContextOf)
      const req = {}
      const context = Object.freeze({ realm: 'copy' })
      const route = refusal.routeState(context, undefined, 'jsonrpc')
      // A refusal: the state beside the request.
      refusal.recordRoute(req, route)
      expect(other.challengeContextOf(req)).to.equal(context)
      expect(other.grantedRefusalRoute(req as never, undefined)).to.deep.equal({
        context,
        format: 'jsonrpc',
      })
      // An acceptance: the state on the authInfo this copy built, hidden from JSON and spread.
      const implication = new Map([['notes:write', ['notes:read']]])
      const authInfo = refusal.markGranted(
        { scopes: ['notes:write'] },
        refusal.routeState(context, implication, 'json'),
      )
      const accepted = { authInfo } as unknown as Parameters<typeof other.scopeImplicationOf>[0]
      expect(other.scopeImplicationOf(accepted)).to.equal(implication)
      expect(other.grantedRefusalRoute(accepted, authInfo)).to.deep.equal({
        context,
        format: 'json',
      })
      expect(JSON.stringify(authInfo)).to.equal('{"scopes":["notes:write"]}')
      expect({ ...authInfo }).to.deep.equal({ scopes: ['notes:write'] })
      // A request an older copy annotated with the Symbol.for keys is still read.
      const old = { [Symbol.for('passport-agentpress-partner.context')]: context }
      expect(refusal.challengeContextOf(old)).to.equal(context)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
