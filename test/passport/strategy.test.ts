// Unit tests of AgentPressPartnerStrategy through a small harness that plays Passport's part:
// it runs `authenticate` on `Object.create(strategy)` with `success`/`fail`/`error` attached,
// exactly as passport/lib/middleware/authenticate.js does, and records every action taken.
import { expect } from 'chai'
import type { IncomingMessage } from 'node:http'
import {
  AgentPressHttpError,
  AgentPressPartnerStrategy,
  JwksUnavailableError,
  PartnerTokenError,
  PartnerTokenVerifier,
  type AgentPressPartnerStrategyOptions,
  type McpAuthInfo,
  type PartnerTokenClaims,
  type TokenVerifier,
  type VerifyFunction,
} from 'passport-agentpress-partner'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { b64url } from '../support/tokens.js'
import { SPEC_DESCRIPTIONS } from '../support/spec.js'

interface Action {
  readonly name: 'success' | 'fail' | 'error' | 'pass' | 'redirect'
  readonly args: unknown[]
}

interface FakeRequest {
  headers: Record<string, string | undefined>
  rawHeaders: string[]
  [key: string | symbol]: unknown
}

function request(headers: Array<[string, string]> = []): FakeRequest {
  const req: FakeRequest = { headers: {}, rawHeaders: [] }
  for (const [name, value] of headers) {
    req.rawHeaders.push(name, value)
    // Node keeps the first Authorization line only.
    if (req.headers[name.toLowerCase()] === undefined) req.headers[name.toLowerCase()] = value
  }
  return req
}

const bearer = (token: string): FakeRequest => request([['Authorization', `Bearer ${token}`]])

/** Runs one authentication and resolves with every action the strategy took (waits for strays). */
async function run(strategy: object, req: FakeRequest = request()): Promise<Action[]> {
  const actions: Action[] = []
  return new Promise((resolve) => {
    const instance = Object.create(strategy) as Record<string, unknown> & {
      authenticate(req: unknown, options?: unknown): void
    }
    const record =
      (name: Action['name']) =>
      (...args: unknown[]): void => {
        actions.push({ name, args })
        // Leave time for a second (forbidden) action to show up.
        if (actions.length === 1) setTimeout(() => resolve(actions), 20)
      }
    for (const name of ['success', 'fail', 'error', 'pass', 'redirect'] as const)
      instance[name] = record(name)
    instance.authenticate(req, { session: false })
  })
}

async function single(strategy: object, req?: FakeRequest): Promise<Action> {
  const actions = await run(strategy, req)
  expect(actions, 'exactly one Passport action').to.have.length(1)
  return actions[0]!
}

const ISSUER = 'https://api.agent.press/orgs/acme'
const AUDIENCE = 'https://mcp.example.com/mcp'

function claimsFor(overrides: Partial<Record<string, unknown>> = {}): PartnerTokenClaims {
  return {
    iss: ISSUER,
    sub: 'user-1',
    aud: AUDIENCE,
    ext_provider: 'example',
    jti: 'jti-1',
    scope: 'mcp:read mcp:write',
    iat: 1_700_000_000,
    exp: 1_700_000_060,
    ...overrides,
  } as PartnerTokenClaims
}

/** A structurally valid compact JWS (the fake verifiers never check the signature). */
function jwt(payload: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  return `${b64url({ alg: 'EdDSA', kid: 'k1', ...header })}.${b64url({ iss: ISSUER, ...payload })}.c2ln`
}

interface FakeVerifier extends TokenVerifier {
  calls: string[]
}

function fakeVerifier(
  behaviour: (token: string) => PartnerTokenClaims | Promise<PartnerTokenClaims> = () =>
    claimsFor(),
  issuer?: string,
): FakeVerifier {
  const calls: string[] = []
  return {
    ...(issuer === undefined ? {} : { issuer }),
    calls,
    async verifyToken(token: string) {
      calls.push(token)
      return behaviour(token)
    },
  }
}

const USER = Object.freeze({ id: 42, name: 'Alice' })

function strategy(
  options: Partial<AgentPressPartnerStrategyOptions> = {},
  verify: VerifyFunction = (_claims, done) => done(null, USER),
): AgentPressPartnerStrategy {
  // The harness builds every option combination, so passReqToCallback is not a literal here.
  return new AgentPressPartnerStrategy(
    { verifier: fakeVerifier(), ...options } as AgentPressPartnerStrategyOptions & {
      passReqToCallback?: false
    },
    verify,
  )
}

function expectHttpError(action: Action, status: number, reason: string, header: string): void {
  expect(action.name).to.equal('error')
  const err = action.args[0] as AgentPressHttpError
  expect(err).to.be.instanceOf(AgentPressHttpError)
  expect({ status: err.status, reason: err.reason, headers: { ...err.headers } }).to.deep.equal({
    status,
    reason,
    headers: { 'WWW-Authenticate': header },
  })
}

const PARTNER_MCP = { issuer: ISSUER, audience: AUDIENCE, expectedExtProvider: 'example' }

describe('AgentPressPartnerStrategy', () => {
  describe('construction', () => {
    it('is named agentpress-partner unless told otherwise', () => {
      expect(strategy().name).to.equal('agentpress-partner')
      expect(strategy({ name: 'partner-staging' }).name).to.equal('partner-staging')
    })

    it('builds one PartnerTokenVerifier per partnerMcp entry and exposes them frozen', () => {
      const one = new AgentPressPartnerStrategy({ partnerMcp: PARTNER_MCP }, () => {})
      expect(one.verifiers).to.have.length(1)
      expect(one.verifiers[0]).to.be.instanceOf(PartnerTokenVerifier)
      expect(one.verifiers[0]!.issuer).to.equal(ISSUER)
      const two = new AgentPressPartnerStrategy(
        {
          partnerMcp: [
            PARTNER_MCP,
            { ...PARTNER_MCP, issuer: 'https://stg-api.agent.press/orgs/acme' },
          ],
        },
        () => {},
      )
      expect(two.verifiers.map((v) => v.issuer)).to.deep.equal([
        ISSUER,
        'https://stg-api.agent.press/orgs/acme',
      ])
      expect(Object.isFrozen(two.verifiers)).to.equal(true)
    })

    it('keeps given verifiers as they are', () => {
      const a = fakeVerifier(undefined, 'https://a.example/orgs/a')
      const b = fakeVerifier(undefined, 'https://a.example/orgs/b')
      expect(strategy({ verifier: [a, b] }).verifiers).to.deep.equal([a, b])
      expect(strategy({ verifier: a }).verifiers[0]).to.equal(a)
    })

    const invalid: Array<[string, () => unknown, string]> = [
      [
        'no options',
        () => new (AgentPressPartnerStrategy as any)(undefined, () => {}),
        'AgentPressPartnerStrategy options must be an object',
      ],
      [
        'no verify',
        () => new (AgentPressPartnerStrategy as any)({ verifier: fakeVerifier() }),
        'AgentPressPartnerStrategy requires a verify callback',
      ],
      [
        'neither verifier nor partnerMcp',
        () => strategy({ verifier: undefined }),
        'AgentPressPartnerStrategy needs exactly one of options.partnerMcp or options.verifier',
      ],
      [
        'both verifier and partnerMcp',
        () => strategy({ partnerMcp: PARTNER_MCP } as any),
        'AgentPressPartnerStrategy needs exactly one of options.partnerMcp or options.verifier',
      ],
      [
        'unknown option',
        () => strategy({ scopes: ['a'] } as any),
        'Unknown AgentPressPartnerStrategy option: scopes',
      ],
      [
        'empty verifier array',
        () => strategy({ verifier: [] }),
        'options.verifier must not be an empty array',
      ],
      [
        'empty partnerMcp array',
        () => new AgentPressPartnerStrategy({ partnerMcp: [] }, () => {}),
        'options.partnerMcp must not be an empty array',
      ],
      [
        'verifier without verifyToken',
        () => strategy({ verifier: {} as any }),
        'options.verifier must have a verifyToken(token) method',
      ],
      [
        'second verifier without verifyToken',
        () => strategy({ verifier: [fakeVerifier(), 1] as any }),
        'options.verifier[1] must have a verifyToken(token) method',
      ],
      [
        'several verifiers, one without issuer',
        () => strategy({ verifier: [fakeVerifier(undefined, 'https://a'), fakeVerifier()] }),
        'verifier 1 has no issuer: each of several verifiers needs a distinct issuer',
      ],
      [
        'two verifiers of one issuer',
        () =>
          strategy({
            verifier: [fakeVerifier(undefined, 'https://a'), fakeVerifier(undefined, 'https://a')],
          }),
        'two verifiers trust the same issuer "https://a"',
      ],
      [
        'two partnerMcp of one issuer',
        () => new AgentPressPartnerStrategy({ partnerMcp: [PARTNER_MCP, PARTNER_MCP] }, () => {}),
        `two verifiers trust the same issuer "${ISSUER}"`,
      ],
      [
        'invalid partnerMcp',
        () =>
          new AgentPressPartnerStrategy(
            { partnerMcp: { ...PARTNER_MCP, jwksUrl: 'http://evil.example/jwks' } },
            () => {},
          ),
        'options.jwksUrl must use https: (http: is allowed only for loopback hosts), got http:',
      ],
      [
        'realm with a quote',
        () => strategy({ realm: 'a"b' }),
        'options.realm must be a non-empty string of RFC 6750 characters (%x20-21 / %x23-5B / %x5D-7E)',
      ],
      [
        'realm with a CR/LF',
        () => strategy({ realm: 'a\r\nSet-Cookie: x' }),
        'options.realm must be a non-empty string of RFC 6750 characters (%x20-21 / %x23-5B / %x5D-7E)',
      ],
      [
        'realm non-ASCII',
        () => strategy({ realm: 'réalm' }),
        'options.realm must be a non-empty string of RFC 6750 characters (%x20-21 / %x23-5B / %x5D-7E)',
      ],
      [
        'empty realm',
        () => strategy({ realm: '' }),
        'options.realm must be a non-empty string of RFC 6750 characters (%x20-21 / %x23-5B / %x5D-7E)',
      ],
      [
        'relative resourceMetadataUrl',
        () => strategy({ resourceMetadataUrl: '/.well-known/oauth-protected-resource' }),
        'options.resourceMetadataUrl must be an absolute URL, got "/.well-known/oauth-protected-resource"',
      ],
      [
        'ftp resourceMetadataUrl',
        () => strategy({ resourceMetadataUrl: 'ftp://x.example/prm' }),
        'options.resourceMetadataUrl must use https: (http: is allowed only for loopback hosts), got ftp:',
      ],
      [
        // One URL policy for jwksUrl, the PRM URLs and resourceMetadataUrl (was: any http: host).
        'http resourceMetadataUrl on a non-loopback host',
        () => strategy({ resourceMetadataUrl: 'http://x.example/prm' }),
        'options.resourceMetadataUrl must use https: (http: is allowed only for loopback hosts), got http:',
      ],
      [
        'resourceMetadataUrl with a fragment',
        () => strategy({ resourceMetadataUrl: 'https://x.example/prm#top' }),
        'options.resourceMetadataUrl must not contain a fragment',
      ],
      [
        'resourceMetadataUrl with credentials',
        () => strategy({ resourceMetadataUrl: 'https://u:p@x.example/prm' }),
        'options.resourceMetadataUrl must not contain credentials',
      ],
      [
        'resourceMetadataUrl with a quote',
        () => strategy({ resourceMetadataUrl: 'https://x.example/"prm' }),
        'options.resourceMetadataUrl must contain only RFC 6750 characters (no quote, backslash, control or non-ASCII)',
      ],
      [
        'requiredScopes not an array',
        () => strategy({ requiredScopes: 'mcp:read' as any }),
        'options.requiredScopes must be an array of scope strings, not a string: use ["mcp:read"]',
      ],
      [
        'requiredScopes with a space',
        () => strategy({ requiredScopes: ['mcp:read mcp:write'] }),
        'options.requiredScopes[0] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
      ],
      [
        'requiredScopes with an empty one',
        () => strategy({ requiredScopes: ['a', ''] }),
        'options.requiredScopes[1] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
      ],
      [
        'passReqToCallback not boolean',
        () => strategy({ passReqToCallback: 'yes' as any }),
        'options.passReqToCallback must be a boolean',
      ],
      [
        'tokenFromRequest not a function',
        () => strategy({ tokenFromRequest: 'agent-session' as any }),
        'options.tokenFromRequest must be a function',
      ],
      ['empty name', () => strategy({ name: '' }), 'options.name must be a non-empty string'],
    ]
    for (const [title, build, message] of invalid) {
      it(`refuses ${title} with a TypeError`, () => {
        expect(build).to.throw(TypeError).with.property('message', message)
      })
    }

    it('accepts a resourceMetadataUrl on https:, or on http: to a loopback host', async () => {
      for (const url of [
        'https://x.example/prm',
        'http://127.0.0.1:3000/prm',
        'http://[::1]/prm',
      ]) {
        const action = await single(strategy({ resourceMetadataUrl: url }), request())
        expect(action).to.deep.equal({ name: 'fail', args: [`Bearer resource_metadata="${url}"`] })
      }
    })

    it('keeps its own copy of the options: later mutation changes nothing', async () => {
      const options = { verifier: fakeVerifier(), realm: 'mcp', requiredScopes: ['mcp:read'] }
      const s = strategy(options)
      options.realm = 'changed'
      options.requiredScopes.push('admin')
      const action = await single(s, request())
      // The 401 names the required scopes (MCP 2025-11-25), as they were at construction.
      expect(action).to.deep.equal({ name: 'fail', args: ['Bearer realm="mcp", scope="mcp:read"'] })
      expect((await single(s, bearer(jwt()))).name).to.equal('success')
    })
  })

  describe('reading the credentials', () => {
    const s = strategy({ realm: 'mcp' })

    it('no Authorization header → fail with a realm-only challenge (no error code)', async () => {
      expect(await single(s, request())).to.deep.equal({
        name: 'fail',
        args: ['Bearer realm="mcp"'],
      })
    })

    it('another scheme → the same plain failure, so a next strategy may take it', async () => {
      for (const value of ['Basic dXNlcjpwYXNz', 'DPoP abc', 'Bearerx abc', '   ']) {
        expect(await single(s, request([['Authorization', value]]))).to.deep.equal({
          name: 'fail',
          args: ['Bearer realm="mcp"'],
        })
      }
    })

    it('ignores tokens in the query string and the body (RFC 6750 §2.3 / MCP)', async () => {
      const req = request()
      req.query = { access_token: jwt() }
      req.body = { access_token: jwt() }
      expect(await single(s, req)).to.deep.equal({ name: 'fail', args: ['Bearer realm="mcp"'] })
    })

    for (const value of [
      'Bearer',
      'bearer ',
      'Bearer a b',
      'Bearer\tabc',
      'Bearer "abc"',
      'Bearer abc=def',
      'Bearer é',
    ]) {
      it(`${JSON.stringify(value)} → 400 invalid_request`, async () => {
        expectHttpError(
          await single(s, request([['Authorization', value]])),
          400,
          'invalid_request',
          'Bearer realm="mcp", error="invalid_request", error_description="Malformed authorization header"',
        )
      })
    }

    it('two Authorization lines → 400 invalid_request, whatever their content', async () => {
      const req = request([
        ['Authorization', `Bearer ${jwt()}`],
        ['authorization', `Bearer ${jwt()}`],
      ])
      expectHttpError(
        await single(s, req),
        400,
        'invalid_request',
        'Bearer realm="mcp", error="invalid_request", error_description="Malformed authorization header"',
      )
    })

    it('accepts any case of the scheme and several spaces before the token', async () => {
      for (const value of [`bearer ${jwt()}`, `BEARER ${jwt()}`, `Bearer   ${jwt()}`]) {
        expect((await single(s, request([['Authorization', value]]))).name).to.equal('success')
      }
    })

    it('a b64token that is not a JWT → fail(malformed) so a chain can still try it', async () => {
      const s2 = new AgentPressPartnerStrategy(
        { partnerMcp: PARTNER_MCP, realm: 'mcp', resourceMetadataUrl: false },
        () => {},
      )
      expect(await single(s2, bearer('sk_live_abcdef0123456789'))).to.deep.equal({
        name: 'fail',
        args: ['Bearer realm="mcp", error="invalid_token", error_description="Malformed token"'],
      })
    })

    it('tokenFromRequest reads another header; nothing there → no-credentials failure', async () => {
      const verifier = fakeVerifier()
      const custom = strategy({
        verifier,
        tokenFromRequest: (req: IncomingMessage) =>
          req.headers['agent-session'] as string | undefined,
      })
      const token = jwt()
      expect((await single(custom, request([['agent-session', token]]))).name).to.equal('success')
      expect(verifier.calls).to.deep.equal([token])
      expect(await single(custom, bearer(token))).to.deep.equal({ name: 'fail', args: ['Bearer'] })
    })

    it('tokenFromRequest throwing or returning a non-string → error, not a crash', async () => {
      const boom = new Error('boom')
      const throwing = strategy({
        tokenFromRequest: () => {
          throw boom
        },
      })
      expect(await single(throwing)).to.deep.equal({ name: 'error', args: [boom] })
      const action = await single(strategy({ tokenFromRequest: () => 42 as any }))
      expect(action.name).to.equal('error')
      expect(action.args[0]).to.be.instanceOf(TypeError)
    })
  })

  describe('token failures', () => {
    it('each PartnerTokenError reason → fail(challenge) with the fixed description only', async () => {
      const reasons = SPEC_DESCRIPTIONS
      for (const [reason, description] of Object.entries(reasons)) {
        const s = strategy({
          realm: 'mcp',
          resourceMetadataUrl: 'https://mcp.example.com/.well-known/oauth-protected-resource',
          verifier: fakeVerifier(() => {
            throw new PartnerTokenError(reason as keyof typeof reasons, {
              cause: new Error('jose: "kid" k1'),
            })
          }),
        })
        expect(await single(s, bearer(jwt()))).to.deep.equal({
          name: 'fail',
          args: [
            `Bearer realm="mcp", error="invalid_token", error_description="${description}", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`,
          ],
        })
      }
    })

    it('a JWKS outage → error 503 with Retry-After and no challenge', async () => {
      const s = strategy({
        verifier: fakeVerifier(() => Promise.reject(new JwksUnavailableError())),
      })
      const action = await single(s, bearer(jwt()))
      expect(action.name).to.equal('error')
      const err = action.args[0] as JwksUnavailableError
      expect(err).to.be.instanceOf(JwksUnavailableError)
      expect({ status: err.status, headers: { ...err.headers } }).to.deep.equal({
        status: 503,
        headers: { 'Retry-After': '5' },
      })
    })

    it('an unexpected verifier error (sync or async) → error with that error', async () => {
      const bug = new TypeError('verifier bug')
      const syncThrow: TokenVerifier = {
        verifyToken() {
          throw bug
        },
      }
      expect(await single(strategy({ verifier: syncThrow }), bearer(jwt()))).to.deep.equal({
        name: 'error',
        args: [bug],
      })
      const rejecting = fakeVerifier(() => Promise.reject(bug))
      expect(await single(strategy({ verifier: rejecting }), bearer(jwt()))).to.deep.equal({
        name: 'error',
        args: [bug],
      })
    })

    it('recognises a PartnerTokenError look-alike from another copy of the package', async () => {
      const foreign = Object.assign(new Error('x'), {
        name: 'PartnerTokenError',
        reason: 'expired',
      })
      const s = strategy({ verifier: fakeVerifier(() => Promise.reject(foreign)) })
      expect(await single(s, bearer(jwt()))).to.deep.equal({
        name: 'fail',
        args: ['Bearer error="invalid_token", error_description="Token expired"'],
      })
    })
  })

  describe('several issuers', () => {
    const A = 'https://api.agent.press/orgs/a'
    const B = 'https://api.agent.press/orgs/b'

    function pair() {
      const a = fakeVerifier(() => claimsFor({ iss: A }), A)
      const b = fakeVerifier(() => claimsFor({ iss: B }), B)
      return { a, b, s: strategy({ verifier: [a, b] }) }
    }

    it('the unverified iss picks the verifier by exact match', async () => {
      const { a, b, s } = pair()
      const ta = jwt({ iss: A })
      const tb = jwt({ iss: B })
      expect((await single(s, bearer(tb))).name).to.equal('success')
      expect((await single(s, bearer(ta))).name).to.equal('success')
      expect(a.calls).to.deep.equal([ta])
      expect(b.calls).to.deep.equal([tb])
    })

    it('an unlisted, differently cased or slash-suffixed iss → issuer_mismatch, no verifier asked', async () => {
      const { a, b, s } = pair()
      for (const iss of [
        'https://api.agent.press/orgs/c',
        `${A}/`,
        A.toUpperCase(),
        'https://stg-api.agent.press/orgs/a',
      ]) {
        expect(await single(s, bearer(jwt({ iss })))).to.deep.equal({
          name: 'fail',
          args: ['Bearer error="invalid_token", error_description="Issuer does not match"'],
        })
      }
      expect(a.calls.length + b.calls.length).to.equal(0)
    })

    it('structure, alg and kid are judged before the issuer, as by a single verifier', async () => {
      const { a, b, s } = pair()
      const cases: Array<[string, string]> = [
        ['not-a-jwt', 'Malformed token'],
        [jwt({ iss: 'https://x' }, { alg: 'HS256' }), 'Algorithm not allowed'],
        [jwt({ iss: 'https://x' }, { kid: undefined }), 'Signing key not found'],
        [jwt({ iss: undefined }), 'Required claim missing or invalid'],
        [jwt({ iss: 7 }), 'Required claim missing or invalid'],
      ]
      for (const [token, description] of cases) {
        expect(await single(s, bearer(token))).to.deep.equal({
          name: 'fail',
          args: [`Bearer error="invalid_token", error_description="${description}"`],
        })
      }
      expect(a.calls.length + b.calls.length).to.equal(0)
    })
  })

  describe('the verify callback', () => {
    const token = jwt()

    const styles: Array<[string, VerifyFunction]> = [
      ['done(null, user)', (_c, done) => done(null, USER)],
      ['done(null, user) later', (_c, done) => void setTimeout(() => done(null, USER), 5)],
      ['async function returning the user', async () => USER],
      ['async function calling done', async (_c, done) => done(null, USER)],
      ['a plain thenable', () => ({ then: (resolve: (u: unknown) => void) => resolve(USER) })],
    ]
    for (const [title, verify] of styles) {
      it(`accepts ${title}`, async () => {
        const action = await single(strategy({}, verify), bearer(token))
        expect(action.name).to.equal('success')
        expect(action.args[0]).to.equal(USER)
      })
    }

    it('passReqToCallback passes the request first', async () => {
      const req = bearer(token)
      let seen: unknown[] = []
      const s = new AgentPressPartnerStrategy(
        { verifier: fakeVerifier(), passReqToCallback: true },
        (r, claims, done) => {
          seen = [r, claims.sub]
          done(null, USER)
        },
      )
      expect((await single(s, req)).name).to.equal('success')
      expect(seen).to.deep.equal([req, 'user-1'])
    })

    const refusals: Array<[string, VerifyFunction]> = [
      ['done(null, false)', (_c, done) => done(null, false)],
      ['done(null, null, info)', (_c, done) => done(null, null, { message: 'no "such"\r\nuser' })],
      ['done()', (_c, done) => done()],
      ['resolving null', async () => null],
      ['resolving false', async () => false],
      ['resolving undefined', async () => undefined],
    ]
    for (const [title, verify] of refusals) {
      it(`${title} → 403 user_not_provisioned (error, never a fail)`, async () => {
        expectHttpError(
          await single(strategy({ realm: 'mcp' }, verify), bearer(token)),
          403,
          'user_not_provisioned',
          'Bearer realm="mcp", error="user_not_provisioned", error_description="User not provisioned"',
        )
      })
    }

    const failures: Array<[string, VerifyFunction, unknown]> = [
      ['done(err)', (_c, done) => done(new Error('db down')), new Error('db down')],
      [
        'a synchronous throw',
        () => {
          throw new Error('bug')
        },
        new Error('bug'),
      ],
      [
        'a rejection',
        async () => {
          throw new Error('async bug')
        },
        new Error('async bug'),
      ],
      ['done("string error")', (_c, done) => done('db down'), 'db down'],
    ]
    for (const [title, verify, expected] of failures) {
      it(`${title} → error with that error`, async () => {
        const action = await single(strategy({}, verify), bearer(token))
        expect(action.name).to.equal('error')
        expect(action.args[0]).to.deep.equal(expected)
      })
    }

    it('a rejection or throw without a value still errors (never next(undefined))', async () => {
      for (const verify of [
        () => Promise.reject(),
        () => {
          throw undefined
        },
        () => Promise.reject(null),
      ] as VerifyFunction[]) {
        const action = await single(strategy({}, verify), bearer(token))
        expect(action.name).to.equal('error')
        expect(action.args[0]).to.be.instanceOf(Error)
      }
    })

    it('only the first decision counts: double done, done then throw, done then reject', async () => {
      const verifies: VerifyFunction[] = [
        (_c, done) => {
          done(null, USER)
          done(null, false)
          done(new Error('late'))
        },
        (_c, done) => {
          done(null, USER)
          throw new Error('after done')
        },
        async (_c, done) => {
          done(null, USER)
          throw new Error('after done')
        },
        async (_c, done) => {
          setTimeout(() => done(null, false), 1)
          return USER
        },
      ]
      for (const verify of verifies) {
        const actions = await run(strategy({}, verify), bearer(token))
        expect(actions.map((a) => a.name)).to.deep.equal(['success'])
        await new Promise((resolve) => setTimeout(resolve, 5))
        expect(actions).to.have.length(1)
      }
    })

    it('is not called when the token is refused', async () => {
      let called = false
      const s = strategy(
        { verifier: fakeVerifier(() => Promise.reject(new PartnerTokenError('expired'))) },
        () => {
          called = true
        },
      )
      expect((await single(s, bearer(token))).name).to.equal('fail')
      expect(called).to.equal(false)
    })
  })

  describe('required scopes', () => {
    it('all present → success; one missing → 403 insufficient_scope naming every required scope', async () => {
      const ok = strategy({ requiredScopes: ['mcp:read'] })
      expect((await single(ok, bearer(jwt()))).name).to.equal('success')
      let called = false
      const s = strategy(
        {
          realm: 'mcp',
          requiredScopes: ['mcp:read', 'settings:read'],
          verifier: fakeVerifier(() => claimsFor({ scope: 'mcp:read settings:*' })),
        },
        (_c, done) => {
          called = true
          done(null, USER)
        },
      )
      expectHttpError(
        await single(s, bearer(jwt())),
        403,
        'insufficient_scope',
        'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:read settings:read"',
      )
      expect(called, 'no user lookup for an unusable token').to.equal(false)
    })
  })

  describe('on success', () => {
    it('passes the user and authInfo { claims, scopes, issuer } merged over the verify info', async () => {
      const claims = claimsFor({ aud: [AUDIENCE, 'https://other.example'] })
      const s = strategy({ verifier: fakeVerifier(() => claims) }, (_c, done) =>
        done(null, USER, { tenant: 't1', claims: 'spoofed', scopes: ['admin'] }),
      )
      const action = await single(s, bearer(jwt()))
      expect(action).to.deep.equal({
        name: 'success',
        args: [USER, { tenant: 't1', claims, scopes: ['mcp:read', 'mcp:write'], issuer: ISSUER }],
      })
    })

    it('sets req.auth in the MCP SDK AuthInfo shape', async () => {
      const token = jwt()
      const req = bearer(token)
      const s = new AgentPressPartnerStrategy({ partnerMcp: PARTNER_MCP }, (_c, done) =>
        done(null, USER),
      )
      // Replace the network-bound verifier with a canned answer (same audience configuration).
      const claims = claimsFor({ aud: ['https://other.example', AUDIENCE] })
      ;(s.verifiers[0] as { verifyToken: unknown }).verifyToken = async () => claims
      expect((await single(s, req)).name).to.equal('success')
      const auth = req.auth as McpAuthInfo
      const sdk: AuthInfo = auth // compile-time: assignable to the SDK's type
      expect(sdk).to.deep.equal({
        token,
        clientId: 'example',
        scopes: ['mcp:read', 'mcp:write'],
        expiresAt: 1_700_000_060,
        resource: new URL(AUDIENCE),
        extra: { claims, user: USER },
      })
    })

    it('req.auth.resource: the aud when it is a single URL, absent when not a URL', async () => {
      const req = bearer(jwt())
      await single(
        strategy({ verifier: fakeVerifier(() => claimsFor({ aud: 'urn:not-a-url' })) }),
        req,
      )
      expect((req.auth as McpAuthInfo).resource?.href).to.equal('urn:not-a-url')
      const req2 = bearer(jwt())
      await single(
        strategy({ verifier: fakeVerifier(() => claimsFor({ aud: 'not a url' })) }),
        req2,
      )
      expect(req2.auth).to.not.have.property('resource')
    })
  })
})
