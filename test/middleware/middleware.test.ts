// requireScopes, authenticatePartner and agentPressErrorHandler on real Express 4, Express 5 and
// Connect apps: exact statuses, challenges and bodies, and foreign errors passed on untouched.
import { expect } from 'chai'
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  AgentPressHttpError,
  AgentPressPartnerStrategy,
  PartnerTokenError,
  agentPressErrorHandler,
  authenticatePartner,
  requireScopes,
} from 'passport-agentpress-partner'
// Internals, from the built package (the same module instances as the package name).
import { JSONRPC_AUTH_ERROR_CODE, refusalBody } from '../../dist/http/refusal.js'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { Strategy as BearerStrategy } from 'passport-http-bearer'
import request from 'supertest'
import {
  buildApp,
  captureErrorLogs,
  challenges,
  echo,
  finalhandlerPage,
  newPassport,
  STACKS,
  type Route,
  successBody,
} from '../support/stacks.js'

const PRM = 'https://mcp.example.com/.well-known/oauth-protected-resource'
type Next = (err?: unknown) => void

describe('requireScopes()', () => {
  const invalid: Array<[string, unknown[], string]> = [
    ['no scope', [], 'requireScopes() scopes must name at least one scope'],
    [
      'an empty scope',
      [''],
      'requireScopes() scopes[0] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
    ],
    [
      'two scopes in one string',
      ['mcp:read mcp:write'],
      'requireScopes() scopes[0] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
    ],
    [
      'a quote',
      ['a', 'b"c'],
      'requireScopes() scopes[1] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
    ],
    [
      'a backslash',
      ['a\\b'],
      'requireScopes() scopes[0] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
    ],
    [
      'a CR/LF',
      ['a\r\nb'],
      'requireScopes() scopes[0] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
    ],
    [
      'non-ASCII',
      ['réglages'],
      'requireScopes() scopes[0] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
    ],
    [
      'a number',
      [5],
      'requireScopes() scopes[0] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
    ],
  ]
  for (const [title, args, message] of invalid) {
    it(`refuses ${title} at creation`, () => {
      expect(() => (requireScopes as (...a: unknown[]) => unknown)(...args))
        .to.throw(TypeError)
        .with.property('message', message)
    })
  }
})

describe('middleware over HTTP', () => {
  captureErrorLogs()
  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress({ scope: 'mcp:read settings:* tools:call' })
  })
  after(() => mock.close())

  const verify = async (claims: { sub: string }) => ({ id: claims.sub })

  for (const stack of STACKS) {
    describe(stack, () => {
      function scopedApp(
        scopes: [string, ...string[]],
        context = { realm: 'mcp', resourceMetadataUrl: PRM },
      ) {
        const passport = newPassport()
        passport.use(
          new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp, ...context }, verify),
        )
        return buildApp(stack, [
          {
            path: '/mcp',
            handlers: [
              passport.authenticate('agentpress-partner', { session: false }),
              requireScopes(...scopes),
              echo,
            ],
          },
        ])
      }
      const auth = () => `Bearer ${mock.signToken()}`

      it('every needed scope granted → next()', async () => {
        const token = mock.signToken()
        const res = await request(scopedApp(['mcp:read', 'tools:call']))
          .post('/mcp')
          .set('Authorization', `Bearer ${token}`)
        expect(res.status).to.equal(200)
        expect(challenges(res)).to.deep.equal([])
        expect(res.text).to.equal(successBody(token, { id: 'user-123' }))
      })

      it('one missing → 403 naming every scope the route needs, with realm and resource_metadata', async () => {
        const res = await request(scopedApp(['mcp:read', 'mcp:write', 'mcp:write']))
          .post('/mcp')
          .set('Authorization', auth())
        expect(res.status).to.equal(403)
        expect(challenges(res)).to.deep.equal([
          `Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:read mcp:write", resource_metadata="${PRM}"`,
        ])
        expect(res.text).to.equal(finalhandlerPage('AgentPressHttpError: Insufficient scope', 403))
      })

      it('is a flat set: settings:* does not grant settings:read', async () => {
        const res = await request(
          scopedApp(['settings:read'], { resourceMetadataUrl: false } as any),
        )
          .post('/mcp')
          .set('Authorization', auth())
        expect(res.status).to.equal(403)
        expect(challenges(res)).to.deep.equal([
          'Bearer error="insufficient_scope", error_description="Insufficient scope", scope="settings:read"',
        ])
        expect(res.text).to.equal(finalhandlerPage('AgentPressHttpError: Insufficient scope', 403))
        const token = mock.signToken()
        const ok = await request(scopedApp(['settings:*']))
          .post('/mcp')
          .set('Authorization', `Bearer ${token}`)
        expect(ok.status).to.equal(200)
        expect(challenges(ok)).to.deep.equal([])
        expect(ok.text).to.equal(successBody(token, { id: 'user-123' }))
      })

      it('without any authentication before it → 403 with a bare challenge', async () => {
        const app = buildApp(stack, [{ path: '/mcp', handlers: [requireScopes('mcp:read'), echo] }])
        const res = await request(app).post('/mcp')
        expect(res.status).to.equal(403)
        expect(challenges(res)).to.deep.equal([
          'Bearer error="insufficient_scope", error_description="Insufficient scope", scope="mcp:read"',
        ])
        expect(res.text).to.equal(finalhandlerPage('AgentPressHttpError: Insufficient scope', 403))
      })

      it('reads req.auth.scopes when req.authInfo carries none (e.g. MCP SDK auth)', async () => {
        const sdkAuth = (req: IncomingMessage, _res: ServerResponse, next: Next) => {
          ;(req as { auth?: unknown }).auth = { token: 't', clientId: 'c', scopes: ['mcp:read'] }
          next()
        }
        const app = buildApp(stack, [
          { path: '/mcp', handlers: [sdkAuth, requireScopes('mcp:read'), echo] },
        ])
        const res = await request(app).post('/mcp')
        expect(res.status).to.equal(200)
        expect(challenges(res)).to.deep.equal([])
        expect(res.text).to.equal('{"auth":{"token":"t","clientId":"c","scopes":["mcp:read"]}}')
      })
    })
  }
})

describe('authenticatePartner() and agentPressErrorHandler()', () => {
  const logs = captureErrorLogs()
  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(() => mock.close())

  it('validates its arguments at creation', () => {
    const passport = newPassport()
    const strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, () => {})
    const replacement =
      "in a Passport app use passport.authenticate('agentpress-partner', { session: false, failWithError: true }) and app.use(agentPressErrorHandler())"
    const cases: Array<[() => unknown, string]> = [
      [
        () => authenticatePartner(undefined as any),
        `authenticatePartner() needs an AgentPressPartnerStrategy as its first argument; ${replacement}`,
      ],
      [
        // The passport instance was accepted before 0.2: the message names the two lines instead.
        () => authenticatePartner(passport as any),
        `authenticatePartner() needs an AgentPressPartnerStrategy as its first argument; ${replacement}`,
      ],
      [
        () => authenticatePartner(strategy, { strategy: 'x' } as any),
        'Unknown authenticatePartner option: strategy',
      ],
      [
        () => authenticatePartner(strategy, { body: 'xml' as any }),
        "authenticatePartner() options.body must be 'json' or 'jsonrpc'",
      ],
      [
        () => authenticatePartner(strategy, { session: true } as any),
        'Unknown authenticatePartner option: session',
      ],
      [
        () => agentPressErrorHandler({ body: 'text' as any }),
        "agentPressErrorHandler() options.body must be 'json' or 'jsonrpc'",
      ],
      [
        () => agentPressErrorHandler({ status: 1 } as any),
        'Unknown agentPressErrorHandler option: status',
      ],
    ]
    for (const [build, message] of cases)
      expect(build).to.throw(TypeError).with.property('message', message)
  })

  it('refusalBody() writes fixed text only', () => {
    expect(refusalBody('expired', 'json')).to.equal(
      '{"error":"invalid_token","error_description":"Token expired"}',
    )
    expect(refusalBody('no_credentials', 'json')).to.equal(
      '{"error":"no_credentials","error_description":"No credentials"}',
    )
    expect(refusalBody('jwks_unavailable', 'jsonrpc')).to.equal(
      `{"jsonrpc":"2.0","id":null,"error":{"code":${JSONRPC_AUTH_ERROR_CODE},"message":"Signing keys unavailable","data":{"reason":"jwks_unavailable"}}}`,
    )
  })

  for (const stack of STACKS) {
    describe(stack, () => {
      it('failWithError + agentPressErrorHandler: errors that are not ours reach the next error handler untouched', async () => {
        const boom = new Error('database down')
        const passport = newPassport()
        passport.use(
          new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, async () => {
            throw boom
          }),
        )
        let seen: unknown
        const app = buildApp(
          stack,
          [
            {
              path: '/mcp',
              handlers: [
                passport.authenticate('agentpress-partner', {
                  session: false,
                  failWithError: true,
                }) as Route['handlers'][number],
                echo,
              ],
            },
          ],
          [
            agentPressErrorHandler(),
            (err, _req, res, _next) => {
              seen = err
              res.statusCode = 599
              res.end('mine')
            },
          ],
        )
        const res = await request(app)
          .post('/mcp')
          .set('Authorization', `Bearer ${mock.signToken()}`)
        expect([res.status, res.text]).to.deep.equal([599, 'mine'])
        expect(challenges(res)).to.deep.equal([])
        expect(seen).to.equal(boom)
      })

      it('failWithError + agentPressErrorHandler: a chain with passport-http-bearer keeps both challenges and a JSON body', async () => {
        const passport = newPassport()
        passport.use(
          new AgentPressPartnerStrategy(
            { partnerMcp: mock.partnerMcp, realm: 'mcp', resourceMetadataUrl: false },
            async () => ({}),
          ),
        )
        passport.use(new BearerStrategy((_t, done) => done(null, false)))
        const app = buildApp(
          stack,
          [
            {
              path: '/mcp',
              handlers: [
                passport.authenticate(['agentpress-partner', 'bearer'], {
                  session: false,
                  failWithError: true,
                }) as Route['handlers'][number],
                echo,
              ],
            },
          ],
          [agentPressErrorHandler({ body: 'jsonrpc' })],
        )
        const res = await request(app).post('/mcp')
        expect(res.status).to.equal(401)
        expect(challenges(res)).to.deep.equal(['Bearer realm="mcp"', 'Bearer realm="Users"'])
        expect(res.body).to.deep.equal({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32001, message: 'No credentials', data: { reason: 'no_credentials' } },
        })
        const token = mock.signToken()
        const ok = await request(app).post('/mcp').set('Authorization', `Bearer ${token}`)
        expect(ok.status).to.equal(200)
        expect(challenges(ok)).to.deep.equal([])
        expect(ok.text).to.equal(successBody(token, {}))
      })

      it('agentPressErrorHandler: renders ours, passes on everything else untouched', async () => {
        const foreign = Object.assign(new Error('teapot'), { status: 418 })
        const ours = new PartnerTokenError('expired', { realm: 'r' })
        const errors: Record<string, unknown> = {
          '/foreign': foreign,
          '/ours': ours,
          '/http': new AgentPressHttpError('user_not_provisioned'),
          '/string': 'just a string',
        }
        let seen: unknown
        const app = buildApp(
          stack,
          Object.entries(errors).map(([path, err]) => ({
            path,
            handlers: [(_req: IncomingMessage, _res: ServerResponse, next: Next) => next(err)],
          })),
          [
            agentPressErrorHandler({ body: 'json' }),
            (err, _req, res, _next) => {
              seen = err
              res.statusCode = 599
              res.end('next')
            },
          ],
        )
        const r1 = await request(app).get('/foreign')
        expect([r1.status, r1.text, seen, challenges(r1)]).to.deep.equal([599, 'next', foreign, []])
        const r2 = await request(app).get('/string')
        expect([r2.status, r2.text, seen, challenges(r2)]).to.deep.equal([
          599,
          'next',
          'just a string',
          [],
        ])
        const r3 = await request(app).get('/ours')
        expect(r3.status).to.equal(401)
        expect(challenges(r3)).to.deep.equal([
          'Bearer realm="r", error="invalid_token", error_description="Token expired"',
        ])
        expect(r3.text).to.equal('{"error":"invalid_token","error_description":"Token expired"}')
        const r4 = await request(app).get('/http')
        expect(r4.status).to.equal(403)
        expect(challenges(r4)).to.deep.equal([
          'Bearer error="user_not_provisioned", error_description="User not provisioned"',
        ])
        expect(r4.text).to.equal(
          '{"error":"user_not_provisioned","error_description":"User not provisioned"}',
        )
      })

      it("agentPressErrorHandler: another strategy's failWithError is not ours to describe", async () => {
        const passport = newPassport()
        passport.use(new BearerStrategy((_t, done) => done(null, false)))
        let seen: unknown
        const app = buildApp(
          stack,
          [
            {
              path: '/mcp',
              handlers: [
                passport.authenticate('bearer', { session: false, failWithError: true }),
                echo,
              ],
            },
          ],
          [
            agentPressErrorHandler(),
            (err, _req, res, _next) => {
              seen = err
              res.end('next')
            },
          ],
        )
        const res = await request(app).post('/mcp')
        // The last handler only ends the response: Passport's 401 status and challenge stay.
        expect([res.status, challenges(res), res.text]).to.deep.equal([
          401,
          ['Bearer realm="Users"'],
          'next',
        ])
        expect((seen as Error).name).to.equal('AuthenticationError')
      })

      it('agentPressErrorHandler: once headers are sent, the error is passed on', async () => {
        let seen: unknown
        const err = new AgentPressHttpError('invalid_request')
        const app = buildApp(
          stack,
          [
            {
              path: '/mcp',
              handlers: [
                (_req: IncomingMessage, res: ServerResponse, next: Next) => {
                  res.writeHead(200)
                  res.write('partial')
                  next(err)
                },
              ],
            },
          ],
          [
            agentPressErrorHandler(),
            (e, _req, res, _next) => {
              seen = e
              res.end()
            },
          ],
        )
        const res = await request(app).get('/mcp')
        expect([res.status, res.text, seen]).to.deep.equal([200, 'partial', err])
      })
    })
  }

  it('no errors were logged by the frameworks for rendered refusals', () => {
    expect(logs.lines.filter((l) => l.includes('AgentPress'))).to.deep.equal([])
  })
})
