// What the success path reads from and writes to the request itself. Under Express a request
// object's hidden class is seldom shared, so each property read or added there takes V8's slow
// path (several µs of CPU each over HTTP, docs/performance.md): with nobody observing (no audit
// trail, no decision subscriber), `authenticatePartner` reads the two header properties and adds
// the three properties users and the MCP SDK read — nothing else, and `requireScopes` after it
// reads `authInfo`; the route state (challenge context, scope implication, body format) travels
// hidden on `req.authInfo` and `req.auth`, and only a refused request gets an entry in the
// package's WeakMap (a weak entry per request costs collection work, docs/performance.md).
import { expect } from 'chai'
import assert from 'node:assert'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  AgentPressPartnerStrategy,
  authenticatePartner,
  requireScopes,
} from 'passport-agentpress-partner'
import { AUDIT_CHANNEL } from '../../lib/core/diagnostics/audit.js'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

interface Touches {
  reads: string[]
  writes: string[]
}

// A request whose every property access is recorded (the keys, as strings).
function recordedRequest(token: string, touches: Touches): IncomingMessage {
  const authorization = `Bearer ${token}`
  const target = {
    method: 'POST',
    url: '/mcp',
    headers: { host: 'mcp.example.com', authorization },
    rawHeaders: ['Host', 'mcp.example.com', 'Authorization', authorization],
  }
  return new Proxy(target, {
    get(t, key, receiver) {
      touches.reads.push(String(key))
      return Reflect.get(t, key, receiver)
    },
    has(t, key) {
      touches.reads.push(`in ${String(key)}`)
      return Reflect.has(t, key)
    },
    set(t, key, value, receiver) {
      touches.writes.push(String(key))
      return Reflect.set(t, key, value, receiver)
    },
  }) as unknown as IncomingMessage
}

// A response that records what is written to it and emits finish when ended.
function response(): ServerResponse & {
  written: { headers: Record<string, string>; body: string }
} {
  const res = Object.assign(new EventEmitter(), {
    statusCode: 200,
    headersSent: false,
    writableEnded: false,
    destroyed: false,
    written: { headers: {} as Record<string, string>, body: '' },
    setHeader(name: string, value: string) {
      res.written.headers[name.toLowerCase()] = value
    },
    end(chunk?: string) {
      res.written.body = chunk ?? ''
      res.writableEnded = true
      res.headersSent = true
      res.emit('finish')
    },
  })
  return res as unknown as ServerResponse & typeof res
}

describe('request reads and writes on the success path', () => {
  let mock: MockAgentPress
  let strategy: AgentPressPartnerStrategy

  before(async () => {
    mock = await createMockAgentPress()
    strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, (claims, done) =>
      done(null, { id: claims.sub }),
    )
    // Warm: the JWKS is fetched once, so the requests below take the synchronous path.
    const warm = authenticatePartner(strategy)
    await new Promise((resolve) =>
      warm(recordedRequest(mock.signToken(), { reads: [], writes: [] }), response(), resolve),
    )
  })
  after(() => mock.close())

  // Runs `middleware` on a recorded request and resolves with what it touched and how it ended.
  function run(
    middleware: (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<unknown> {
    return new Promise((resolve) => middleware(req, res, resolve))
  }

  it('authenticatePartner reads headers and rawHeaders, writes auth, user and authInfo', async () => {
    const touches: Touches = { reads: [], writes: [] }
    const req = recordedRequest(mock.signToken({ sub: 'user-7', scope: 'mcp:tools' }), touches)
    const outcome = await run(authenticatePartner(strategy), req, response())
    expect(outcome).to.equal(undefined)
    expect([...new Set(touches.reads)].sort()).to.deep.equal(['headers', 'rawHeaders'])
    expect(touches.writes).to.deep.equal(['auth', 'user', 'authInfo'])
    expect((req as { user?: unknown }).user).to.deep.equal({ id: 'user-7' })
    // requireScopes after it, granted: it reads the granted scopes from req.authInfo, nothing else.
    touches.reads.length = 0
    expect(await run(requireScopes('mcp:tools'), req, response())).to.equal(undefined)
    expect(touches.reads).to.deep.equal(['authInfo'])
    expect(touches.writes).to.deep.equal(['auth', 'user', 'authInfo'])
  })

  it('requireScopes after it still answers 403 with the strategy’s challenge (route state kept)', async () => {
    const touches: Touches = { reads: [], writes: [] }
    const req = recordedRequest(mock.signToken({ scope: 'mcp:tools' }), touches)
    const res = response()
    await run(authenticatePartner(strategy, { body: 'jsonrpc' }), req, res)
    const next = await new Promise((resolve) => {
      requireScopes('mcp:admin')(req, res, resolve)
      setImmediate(() => resolve('answered'))
    })
    expect(next).to.equal('answered')
    expect(res.statusCode).to.equal(403)
    const audience = new URL(mock.partnerMcp.audience)
    const metadata = `${audience.origin}/.well-known/oauth-protected-resource${audience.pathname}`
    expect(res.written.headers['www-authenticate']).to.equal(
      `Bearer error="insufficient_scope", error_description="Insufficient scope", scope="mcp:admin", resource_metadata="${metadata}"`,
    )
    // The body format given to authenticatePartner, kept in the route state.
    expect(JSON.parse(res.written.body)).to.deep.equal({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32001,
        message: 'Insufficient scope',
        data: { reason: 'insufficient_scope' },
      },
    })
  })

  it('an accepted request gets no route-state entry; its state is hidden on authInfo and auth; a refused one gets the entry', async () => {
    const routeStates = (globalThis as Record<symbol, WeakMap<object, unknown>>)[
      Symbol.for('passport-agentpress-partner.routeStates')
    ]!
    expect(routeStates).to.be.an.instanceOf(WeakMap)
    const middleware = authenticatePartner(strategy, { body: 'jsonrpc' })
    const accepted = recordedRequest(mock.signToken({ scope: 'mcp:tools' }), {
      reads: [],
      writes: [],
    })
    expect(await run(middleware, accepted, response())).to.equal(undefined)
    expect(routeStates.has(accepted)).to.equal(false)
    const { authInfo, auth } = accepted as unknown as { authInfo: object; auth: object }
    const stamp = (globalThis as Record<symbol, { read(holder: object): unknown }>)[
      Symbol.for('passport-agentpress-partner.routeStamp')
    ]!
    for (const holder of [authInfo, auth]) {
      const route = stamp.read(holder)
      expect(route).to.include({ format: 'jsonrpc' })
      expect(Object.isFrozen(route)).to.equal(true)
      // A private field, no property: invisible to JSON, spread, reflection and deep equality.
      expect(Reflect.ownKeys(holder).every((key) => typeof key === 'string')).to.equal(true)
      expect(Object.getPrototypeOf(holder)).to.equal(Object.prototype)
    }
    expect(Reflect.ownKeys(authInfo).sort()).to.deep.equal(['claims', 'issuer', 'scopes'])
    expect(stamp.read({ ...authInfo })).to.equal(undefined)
    const { claims, scopes, issuer } = authInfo as Record<string, unknown>
    assert.deepStrictEqual(authInfo, { claims, scopes, issuer })
    // The same frozen state for every request of the route: nothing built per request.
    const again = recordedRequest(mock.signToken(), { reads: [], writes: [] })
    await run(middleware, again, response())
    expect(stamp.read((again as { authInfo?: object }).authInfo!)).to.equal(stamp.read(authInfo))

    const refused = recordedRequest('not-a-token', { reads: [], writes: [] })
    const res = response()
    await new Promise((resolve) => {
      middleware(refused, res, resolve)
      setImmediate(() => resolve('answered'))
    })
    expect(res.statusCode).to.equal(401)
    const audience = new URL(mock.partnerMcp.audience)
    const metadata = `${audience.origin}/.well-known/oauth-protected-resource${audience.pathname}`
    expect(res.written.headers['www-authenticate']).to.equal(
      `Bearer error="invalid_token", error_description="Malformed token", resource_metadata="${metadata}"`,
    )
    expect(JSON.parse(res.written.body)).to.deep.equal({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32001, message: 'Malformed token', data: { reason: 'malformed' } },
    })
    expect(routeStates.get(refused)).to.include({ format: 'jsonrpc' })
  })

  it('with an audit subscriber the request carries its audit state, and the count of open audits returns to 0', async () => {
    const seen: unknown[] = []
    const listener = (event: unknown) => seen.push(event)
    subscribe(AUDIT_CHANNEL, listener)
    try {
      const touches: Touches = { reads: [], writes: [] }
      const req = recordedRequest(mock.signToken(), touches)
      const open = (globalThis as Record<symbol, { count: number }>)[
        Symbol.for('passport-agentpress-partner.openAudits')
      ]!
      const res = response()
      await run(authenticatePartner(strategy), req, res)
      expect(touches.writes).to.include('Symbol(passport-agentpress-partner.audit)')
      expect(open.count).to.equal(1) // published when the response finishes
      expect(seen).to.have.length(0)
      res.end('{}')
      expect(open.count).to.equal(0)
      expect(seen).to.have.length(1)
      expect(seen[0]).to.include({
        outcome: 'accepted',
        status: 200,
        reason: null,
        issuer: mock.partnerMcp.issuer,
        extProvider: mock.partnerMcp.expectedExtProvider,
        methods: null,
        tools: null,
        traceparent: null,
      })
    } finally {
      unsubscribe(AUDIT_CHANNEL, listener)
    }
  })
})
