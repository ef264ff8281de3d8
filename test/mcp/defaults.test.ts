// Compliant by default (issue 16): the documented setup — strategy + protectedResourceMetadata for
// the same audience — on real Express 4, Express 5 and Connect apps on 127.0.0.1, with real
// Passport and the mock AgentPress's loopback JWKS. The 401 links to a document the same app
// serves, names the route's scopes, and the options refuse what MCP rules out.
import { expect } from 'chai'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  AgentPressPartnerStrategy,
  PartnerTokenVerifier,
  authenticatePartner,
  protectedResourceMetadata,
  requireScopes,
} from 'passport-agentpress-partner'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

import {
  buildApp,
  captureErrorLogs,
  newPassport,
  STACKS,
  type Route,
  passportJson,
} from '../support/stacks.js'

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void

const ok: Handler = (req, res) => {
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify({ scopes: (req as { auth?: { scopes: string[] } }).auth?.scopes }))
}

/** A server on 127.0.0.1 whose handler is set once its URL (and so the audience) is known. */
async function listening(): Promise<{
  url: string
  serve(app: (req: IncomingMessage, res: ServerResponse) => void): void
  close(): Promise<void>
}> {
  let app: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  const server: Server = createServer((req, res) => app!(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    serve: (handler) => void (app = handler),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

async function post(url: string, authorization?: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: authorization === undefined ? {} : { Authorization: authorization },
  })
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    text: await res.text(),
  }
}

describe('MCP authorization by default: the documented setup', function () {
  this.timeout(20_000)

  for (const stack of STACKS) {
    describe(`on ${stack}`, () => {
      let site: Awaited<ReturnType<typeof listening>>
      let mock: MockAgentPress
      let audience: string
      let metadataUrl: string

      before(async () => {
        site = await listening()
        audience = `${site.url}/mcp`
        metadataUrl = `${site.url}/.well-known/oauth-protected-resource/mcp`
        mock = await createMockAgentPress({ audience })
        const passport = newPassport()
        // Nothing about resource_metadata is configured: it is derived from the audience.
        const strategy = new AgentPressPartnerStrategy(
          { partnerMcp: mock.partnerMcp, realm: 'mcp' },
          async (claims) => ({ id: claims.sub }),
        )
        passport.use(strategy)
        const prm = protectedResourceMetadata({
          resource: audience,
          authorizationServers: [mock.issuer],
          scopesSupported: ['mcp:read', 'mcp:write'],
        })
        const routes: Route[] = [
          {
            path: '/mcp',
            handlers: [
              passport.authenticate('agentpress-partner', {
                session: false,
                scope: ['mcp:write'],
              }) as Handler,
              ok,
            ],
          },
          {
            path: '/json-rpc',
            handlers: [passportJson(passport, { body: 'jsonrpc', scope: ['mcp:write'] }), ok],
          },
          {
            path: '/direct',
            handlers: [authenticatePartner(strategy, { scope: ['mcp:write'] }), ok],
          },
          { path: '/unscoped', handlers: [authenticatePartner(strategy), ok] },
        ]
        // The metadata handler in front of the app, as `app.use(prm)` mounts it.
        const app = buildApp(stack, routes)
        site.serve((req, res) => prm(req, res, () => app(req, res)))
      })
      after(async () => {
        await site.close()
        await mock.close()
      })

      it('401 without a token: resource_metadata names a URL this app serves, whose resource is the audience', async () => {
        const res = await post(`${site.url}/mcp`)
        expect(res.status).to.equal(401)
        expect(res.challenge).to.equal(
          `Bearer realm="mcp", scope="mcp:write", resource_metadata="${metadataUrl}"`,
        )
        const linked = /resource_metadata="([^"]+)"/.exec(res.challenge!)![1]!
        const document = await fetch(linked)
        expect(document.status).to.equal(200)
        expect(document.headers.get('content-type')).to.equal('application/json; charset=utf-8')
        expect(await document.json()).to.deep.equal({
          resource: audience,
          authorization_servers: [mock.issuer],
          scopes_supported: ['mcp:read', 'mcp:write'],
          bearer_methods_supported: ['header'],
        })
      })

      it('401 for a bad token carries scope= and resource_metadata, on every way of mounting', async () => {
        const expected =
          'Bearer realm="mcp", error="invalid_token", error_description="Token expired", ' +
          `scope="mcp:write", resource_metadata="${metadataUrl}"`
        const now = Math.floor(Date.now() / 1000)
        const expired = `Bearer ${mock.signToken({ iat: now - 600, exp: now - 300 })}`
        for (const path of ['/mcp', '/json-rpc', '/direct']) {
          const res = await post(`${site.url}${path}`, expired)
          expect([path, res.status, res.challenge]).to.deep.equal([path, 401, expected])
        }
        const jsonRpc = await post(`${site.url}/json-rpc`, expired)
        expect(JSON.parse(jsonRpc.text)).to.deep.equal({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32001, message: 'Token expired', data: { reason: 'expired' } },
        })
      })

      it('the 403 names the route scopes; a route without scopes names none', async () => {
        const readOnly = `Bearer ${mock.signToken({ scope: 'mcp:read' })}`
        const res = await post(`${site.url}/direct`, readOnly)
        expect([res.status, res.challenge]).to.deep.equal([
          403,
          'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", ' +
            `scope="mcp:write", resource_metadata="${metadataUrl}"`,
        ])
        const unscoped = await post(`${site.url}/unscoped`)
        expect([unscoped.status, unscoped.challenge]).to.deep.equal([
          401,
          `Bearer realm="mcp", resource_metadata="${metadataUrl}"`,
        ])
        const allowed = await post(`${site.url}/mcp`, `Bearer ${mock.signToken()}`)
        expect([allowed.status, allowed.text]).to.deep.equal([
          200,
          '{"scopes":["mcp:read","mcp:write"]}',
        ])
      })
    })
  }

  describe('opting out, and what cannot be derived', () => {
    let mock: MockAgentPress
    before(async () => {
      mock = await createMockAgentPress()
    })
    after(() => mock.close())

    it('resourceMetadataUrl: false → no resource_metadata; requiredScopes are named in the 401', async () => {
      const strategy = new AgentPressPartnerStrategy(
        { partnerMcp: mock.partnerMcp, resourceMetadataUrl: false, requiredScopes: ['mcp:read'] },
        async () => ({}),
      )
      const site = await listening()
      site.serve(
        buildApp('express5', [{ path: '/mcp', handlers: [authenticatePartner(strategy), ok] }]),
      )
      try {
        const res = await post(`${site.url}/mcp`, 'Bearer x.y.z')
        expect([res.status, res.challenge]).to.deep.equal([
          401,
          'Bearer error="invalid_token", error_description="Malformed token", scope="mcp:read"',
        ])
      } finally {
        await site.close()
      }
    })

    it('verifiers for different audiences need an explicit resourceMetadataUrl (or false)', () => {
      const other = {
        ...mock.partnerMcp,
        issuer: `${mock.issuer}-2`,
        audience: 'https://b.example.com/mcp',
      }
      expect(
        () => new AgentPressPartnerStrategy({ partnerMcp: [mock.partnerMcp, other] }, () => {}),
      )
        .to.throw(TypeError)
        .with.property(
          'message',
          'options.resourceMetadataUrl must be given (or false) when the verifiers have different audiences: it cannot be derived',
        )
      const shared = { ...mock.partnerMcp, issuer: `${mock.issuer}-2` }
      expect(
        () => new AgentPressPartnerStrategy({ partnerMcp: [mock.partnerMcp, shared] }, () => {}),
      ).to.not.throw()
      expect(
        () =>
          new AgentPressPartnerStrategy(
            { partnerMcp: [mock.partnerMcp, other], resourceMetadataUrl: false },
            () => {},
          ),
      ).to.not.throw()
    })

    it('an audience with a query derives nothing: the option must be given', () => {
      expect(
        () =>
          new AgentPressPartnerStrategy(
            {
              partnerMcp: { ...mock.partnerMcp, audience: 'https://mcp.example.com/mcp?tenant=1' },
            },
            () => {},
          ),
      )
        .to.throw(TypeError)
        .with.property(
          'message',
          'options.resourceMetadataUrl must be given (or false) when the audience has a query: RFC 9728 derives none from it',
        )
    })

    it('resourceMetadataUrl of the wrong type names the choices', () => {
      expect(
        () =>
          new AgentPressPartnerStrategy(
            { partnerMcp: mock.partnerMcp, resourceMetadataUrl: true as never },
            () => {},
          ),
      )
        .to.throw(TypeError)
        .with.property('message', 'options.resourceMetadataUrl must be a URL string or false')
    })
  })
})

describe('audience: an absolute https: URI (http: on loopback), without fragment', () => {
  const base = {
    issuer: 'https://api.agent.press/orgs/acme-org',
    expectedExtProvider: 'example',
  }
  const refused: Array<[string, string]> = [
    ['my-mcp', 'options.audience must be an absolute URL, got "my-mcp"'],
    ['/mcp', 'options.audience must be an absolute URL, got "/mcp"'],
    [
      'http://mcp.example.com/mcp',
      'options.audience must use https: (http: is allowed only for loopback hosts), got http:',
    ],
    [
      'urn:example:mcp',
      'options.audience must use https: (http: is allowed only for loopback hosts), got urn:',
    ],
    ['https://mcp.example.com/mcp#x', 'options.audience must not contain a fragment'],
    ['https://mcp.example.com/mcp#', 'options.audience must not contain a fragment'],
    ['https://user:pw@mcp.example.com/mcp', 'options.audience must not contain credentials'],
  ]
  for (const [audience, message] of refused) {
    it(`refuses ${JSON.stringify(audience)}`, () => {
      expect(() => new PartnerTokenVerifier({ ...base, audience }))
        .to.throw(TypeError)
        .with.property('message', message)
    })
  }

  it('accepts https:, loopback http:, and keeps the value exactly as given (aud is compared as is)', () => {
    for (const audience of [
      'https://mcp.example.com/mcp',
      'https://mcp.example.com',
      'http://127.0.0.1:3000/mcp',
      'http://localhost:8080/mcp',
      'http://[::1]:3000/mcp',
    ]) {
      expect(new PartnerTokenVerifier({ ...base, audience }).options.audience).to.equal(audience)
    }
  })
})

describe('offline_access: refused wherever a scope list is configured', () => {
  const message = (name: string) =>
    `${name} must not be offline_access: it asks the authorization server for refresh tokens, and a resource server neither requires nor advertises it`
  const partnerMcp = {
    issuer: 'https://api.agent.press/orgs/acme-org',
    audience: 'https://mcp.example.com/mcp',
    expectedExtProvider: 'example',
  }
  const cases: Array<[string, () => unknown, string]> = [
    [
      'requiredScopes',
      () =>
        new AgentPressPartnerStrategy(
          { partnerMcp, requiredScopes: ['mcp:read', 'offline_access'] },
          () => {},
        ),
      message('options.requiredScopes[1]'),
    ],
    [
      'requireScopes()',
      () => requireScopes('offline_access'),
      message('requireScopes() scopes[0]'),
    ],
    [
      'requireToolScopes()',
      () => requireToolScopes({ sync: ['offline_access'] }),
      message('requireToolScopes() toolScopes["sync"][0]'),
    ],
    [
      'protectedResourceMetadata() scopesSupported',
      () =>
        protectedResourceMetadata({
          resource: partnerMcp.audience,
          authorizationServers: [partnerMcp.issuer],
          scopesSupported: ['mcp:read', 'offline_access'],
        }),
      message('options.scopesSupported[1]'),
    ],
    [
      'authenticatePartner() scope',
      () =>
        authenticatePartner(new AgentPressPartnerStrategy({ partnerMcp }, () => ({})), {
          scope: ['offline_access'],
        }),
      message('authenticatePartner() options.scope[0]'),
    ],
  ]
  for (const [what, build, expected] of cases) {
    it(`in ${what}`, () => {
      expect(build).to.throw(TypeError).with.property('message', expected)
    })
  }
})

describe('sessions: passport.authenticate() without { session: false } is refused', () => {
  const logged = captureErrorLogs()
  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(() => mock.close())

  for (const stack of STACKS) {
    it(`on ${stack}: a clear TypeError for every request, before any token work or user lookup`, async () => {
      const lookups: string[] = []
      const passport = newPassport()
      passport.use(
        new AgentPressPartnerStrategy(
          { partnerMcp: mock.partnerMcp, resourceMetadataUrl: false },
          async (claims) => {
            lookups.push(claims.sub)
            return { id: claims.sub }
          },
        ),
      )
      const site = await listening()
      const fetches = mock.jwksRequestCount
      site.serve(
        buildApp(stack, [
          {
            path: '/plain',
            handlers: [passport.authenticate('agentpress-partner') as Handler, ok],
          },
          {
            path: '/session',
            handlers: [
              passport.authenticate('agentpress-partner', { session: true }) as Handler,
              ok,
            ],
          },
          {
            path: '/bad-scope',
            handlers: [
              passport.authenticate('agentpress-partner', {
                session: false,
                scope: 'mcp:read',
              }) as Handler,
              ok,
            ],
          },
        ]),
      )
      try {
        for (const path of ['/plain', '/session']) {
          const res = await post(`${site.url}${path}`, `Bearer ${mock.signToken()}`)
          expect(res.status).to.equal(500)
          expect(res.text).to.include(
            'TypeError: passport.authenticate() needs { session: false } for this strategy: MCP servers must not use sessions for authentication (every request carries its own token)',
          )
        }
        const bad = await post(`${site.url}/bad-scope`, `Bearer ${mock.signToken()}`)
        expect(bad.status).to.equal(500)
        expect(bad.text).to.include(
          'TypeError: passport.authenticate() options.scope must be an array of scope strings',
        )
        expect(lookups).to.deep.equal([])
        expect(mock.jwksRequestCount).to.equal(fetches)
        // Connect's finalhandler logs the errors it renders; Express does only outside tests.
        for (const line of logged.lines)
          expect(line).to.match(/^TypeError: passport\.authenticate\(\)/)
      } finally {
        await site.close()
      }
    })
  }
})
