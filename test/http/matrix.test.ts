// §4, every row, through a real passport.authenticate() on real Express 4, Express 5 and
// Connect apps: exact status, exact WWW-Authenticate lines, exact body — with the default handlers
// and with each body option of the package — and no leak of the token, kid, claims or jose text.
import { expect } from 'chai'
import {
  AgentPressPartnerStrategy,
  agentPressErrorHandler,
  authenticatePartner,
  requireScopes,
  type PartnerTokenClaims,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import request, { type Response } from 'supertest'
import { flipChar, parts, payloadOf } from '../support/tokens.js'
import {
  buildApp,
  captureErrorLogs,
  challenges,
  echo,
  finalhandlerPage,
  newPassport,
  STACKS,
  successBody,
  wholeResponse,
  type Route,
  type Stack,
} from '../support/stacks.js'

const REALM = 'mcp'
const PRM = 'https://mcp.example.com/.well-known/oauth-protected-resource'

type Mode = 'default' | 'json' | 'jsonrpc' | 'errorHandler' | 'direct-json' | 'direct-jsonrpc'

interface Row {
  readonly title: string
  readonly path?: string
  /** Authorization header line(s); none when undefined. */
  readonly authorization?: (mock: MockAgentPress, down: MockAgentPress) => string | string[]
  readonly status: number
  readonly reason?: string
  /** RFC 6750 error code in the challenge and JSON `error` (else the reason is used). */
  readonly code?: string
  readonly description?: string
  /** Challenge parameters between realm and resource_metadata; null: no WWW-Authenticate. */
  readonly params?: string | null
  /** Name of the error class finalhandler prints (its trimmed stack). */
  readonly errorName?: string
}

const now = (): number => Math.floor(Date.now() / 1000)
const token =
  (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
  (mock: MockAgentPress) =>
    `Bearer ${mock.signToken(claims, header)}`

const invalidToken = (
  reason: string,
  description: string,
  authorization: Row['authorization'],
  detail = '',
): Row => ({
  title: `token refused: ${reason}${detail}`,
  authorization,
  status: 401,
  reason,
  code: 'invalid_token',
  description,
  params: `error="invalid_token", error_description="${description}"`,
})

const invalidRequest = (title: string, authorization: Row['authorization']): Row => ({
  title,
  authorization,
  status: 400,
  reason: 'invalid_request',
  code: 'invalid_request',
  description: 'Malformed authorization header',
  params: 'error="invalid_request", error_description="Malformed authorization header"',
  errorName: 'AgentPressHttpError',
})

const ROWS: readonly Row[] = (
  [
    { title: 'valid token, known user → 200', authorization: token(), status: 200 },
    {
      title: 'no credentials → 401, realm only, no error',
      status: 401,
      reason: 'no_credentials',
      description: 'No credentials',
      params: '',
    },
    {
      title: 'Basic scheme → 401, realm only, no error',
      authorization: () => 'Basic dXNlcjpwYXNz',
      status: 401,
      reason: 'no_credentials',
      description: 'No credentials',
      params: '',
    },
    invalidRequest('"Bearer" with no token → 400', () => 'Bearer'),
    invalidRequest('"Bearer" with a non-b64token value → 400', () => 'Bearer abc def'),
    invalidRequest('two Authorization lines → 400', (mock) => [
      `Bearer ${mock.signToken()}`,
      `Bearer ${mock.signToken()}`,
    ]),
    invalidToken('malformed', 'Malformed token', (mock) => {
      const [h, p] = parts(mock.signToken())
      return `Bearer ${h}.${p}`
    }),
    invalidToken(
      'malformed',
      'Malformed token',
      () => 'Bearer sk_live_0123456789abcdef',
      ' (an opaque API key)',
    ),
    invalidToken('alg_not_allowed', 'Algorithm not allowed', token({}, { alg: 'HS256' })),
    invalidToken(
      'kid_missing_or_unknown',
      'Signing key not found',
      token({}, { kid: 'ap-unknown-kid' }),
    ),
    invalidToken('signature_invalid', 'Signature verification failed', (mock) => {
      const [h, p, s] = parts(mock.signToken())
      return `Bearer ${h}.${p}.${flipChar(s, 3)}`
    }),
    invalidToken(
      'issuer_mismatch',
      'Issuer does not match',
      token({ iss: 'https://api.agent.press/orgs/someone-else' }),
    ),
    invalidToken(
      'audience_mismatch',
      'Audience does not match',
      token({ aud: 'https://other.example/mcp' }),
    ),
    invalidToken('expired', 'Token expired', () => {
      throw new Error('replaced below')
    }),
    invalidToken('not_yet_valid', 'Token not yet valid', () => {
      throw new Error('replaced below')
    }),
    invalidToken('missing_claim', 'Required claim missing or invalid', token({ jti: undefined })),
    invalidToken(
      'ext_provider_mismatch',
      'ext_provider does not match',
      token({ ext_provider: 'other' }),
    ),
    {
      title: 'valid token, unknown user → 403 user_not_provisioned',
      authorization: token({ sub: 'ghost' }),
      status: 403,
      reason: 'user_not_provisioned',
      code: 'user_not_provisioned',
      description: 'User not provisioned',
      params: 'error="user_not_provisioned", error_description="User not provisioned"',
      errorName: 'AgentPressHttpError',
    },
    {
      title: 'valid token, route scope missing (requireScopes) → 403 insufficient_scope',
      path: '/admin',
      authorization: token(),
      status: 403,
      reason: 'insufficient_scope',
      code: 'insufficient_scope',
      description: 'Insufficient scope',
      params:
        'error="insufficient_scope", error_description="Insufficient scope", scope="mcp:write settings:read"',
      errorName: 'AgentPressHttpError',
    },
    {
      title: 'valid token, strategy requiredScopes missing → 403 insufficient_scope',
      path: '/strict',
      authorization: token(),
      status: 403,
      reason: 'insufficient_scope',
      code: 'insufficient_scope',
      description: 'Insufficient scope',
      params:
        'error="insufficient_scope", error_description="Insufficient scope", scope="mcp:read mcp:admin"',
      errorName: 'AgentPressHttpError',
    },
    {
      title: 'JWKS unreachable, nothing cached → 503 with Retry-After: 5',
      path: '/down',
      authorization: (_mock: MockAgentPress, down: MockAgentPress) => `Bearer ${down.signToken()}`,
      status: 503,
      reason: 'jwks_unavailable',
      description: 'Signing keys unavailable',
      params: null,
      errorName: 'JwksUnavailableError',
    },
  ] as Row[]
).map((row) => {
  // Time-relative tokens are minted at request time.
  if (row.title.endsWith('expired')) {
    return {
      ...row,
      authorization: (m: MockAgentPress) => token({ iat: now() - 600, exp: now() - 120 })(m),
    }
  }
  if (row.title.endsWith('not_yet_valid')) {
    return {
      ...row,
      authorization: (m: MockAgentPress) => token({ iat: now() + 300, exp: now() + 360 })(m),
    }
  }
  return row
})

function expectedChallenge(params: string, configured: boolean): string {
  const list = [
    configured ? `realm="${REALM}"` : '',
    params,
    configured ? `resource_metadata="${PRM}"` : '',
  ]
  const joined = list.filter((p) => p !== '').join(', ')
  return joined === '' ? 'Bearer' : `Bearer ${joined}`
}

function expectedBody(row: Row, requested: Mode): string {
  // Driving the strategy without Passport must answer exactly like Passport with failWithError and
  // agentPressErrorHandler.
  const mode =
    requested === 'direct-json' ? 'json' : requested === 'direct-jsonrpc' ? 'jsonrpc' : requested
  if (mode === 'default') {
    if (row.status === 401) return 'Unauthorized' // Passport's own res.end(STATUS_CODES[401])
    return finalhandlerPage(`${row.errorName}: ${row.description}`, row.status)
  }
  if (mode === 'jsonrpc') {
    return JSON.stringify({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32001, message: row.description, data: { reason: row.reason } },
    })
  }
  return JSON.stringify({ error: row.code ?? row.reason, error_description: row.description })
}

// Everything a refusal must never carry: the token, its kid, claim values, jose wording.
function expectNoLeak(res: Response, sent: string[]): void {
  const text = wholeResponse(res)
  const forbidden = new Set<string>()
  for (const line of sent) {
    const value = line.replace(/^\S+\s+/, '')
    if (value.length >= 8) forbidden.add(value)
    const segments = value.split('.')
    for (const segment of segments) if (segment.length >= 8) forbidden.add(segment)
    if (segments.length >= 2) {
      try {
        const header = JSON.parse(Buffer.from(segments[0]!, 'base64url').toString()) as Record<
          string,
          unknown
        >
        if (typeof header.kid === 'string') forbidden.add(header.kid)
        const claims = payloadOf(value)
        for (const key of ['sub', 'jti', 'iss', 'aud', 'ext_provider', 'scope'] as const) {
          if (typeof claims[key] === 'string' && (claims[key] as string).length >= 5) {
            forbidden.add(claims[key] as string)
          }
        }
      } catch {
        // not a JWT
      }
    }
  }
  for (const value of forbidden) expect(text, `response leaks ${value}`).to.not.include(value)
  for (const jose of [
    'JWS',
    'JWT',
    'jose',
    'claim timestamp',
    'unexpected "',
    'ERR_',
    'no applicable key',
  ]) {
    expect(text).to.not.include(jose)
  }
}

describe('§4 response matrix over HTTP', () => {
  const logs = captureErrorLogs()
  let mock: MockAgentPress
  let down: MockAgentPress

  before(async () => {
    mock = await createMockAgentPress({ orgSlug: 'acme' })
    down = await createMockAgentPress({ orgSlug: 'down' })
    down.setJwksMode('error')
  })
  after(async () => {
    await mock.close()
    await down.close()
  })

  const users = new Map([['user-123', { id: 'u-1', name: 'Alice' }]])
  const verify = async (claims: PartnerTokenClaims) => users.get(claims.sub) ?? null

  function app(stack: Stack, mode: Mode, configured: boolean) {
    const passport = newPassport()
    // Unconfigured: no realm, and the default resource_metadata opted out of (`false`).
    const context = configured
      ? { realm: REALM, resourceMetadataUrl: PRM }
      : { resourceMetadataUrl: false as const }
    const strategies = new Map(
      [
        new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp, ...context }, verify),
        new AgentPressPartnerStrategy(
          {
            partnerMcp: mock.partnerMcp,
            ...context,
            requiredScopes: ['mcp:read', 'mcp:admin'],
            name: 'strict',
          },
          verify,
        ),
        new AgentPressPartnerStrategy(
          { partnerMcp: { ...down.partnerMcp, jwksTimeoutMs: 2000 }, ...context, name: 'down' },
          verify,
        ),
      ].map((strategy) => [strategy.name, strategy]),
    )
    for (const strategy of strategies.values()) passport.use(strategy)
    const auth = (name: string) => {
      if (mode === 'direct-json' || mode === 'direct-jsonrpc') {
        return authenticatePartner(strategies.get(name)!, {
          body: mode === 'direct-json' ? 'json' : 'jsonrpc',
        })
      }
      if (mode === 'default') return passport.authenticate(name, { session: false })
      // 'json', 'jsonrpc', 'errorHandler': the documented Passport way to bodies.
      return passport.authenticate(name, { session: false, failWithError: true })
    }
    const routes: Route[] = [
      { path: '/mcp', handlers: [auth('agentpress-partner'), echo] },
      {
        path: '/admin',
        handlers: [auth('agentpress-partner'), requireScopes('mcp:write', 'settings:read'), echo],
      },
      { path: '/strict', handlers: [auth('strict'), echo] },
      { path: '/down', handlers: [auth('down'), echo] },
    ]
    return buildApp(
      stack,
      routes,
      mode === 'errorHandler' || mode === 'json'
        ? [agentPressErrorHandler({ body: 'json' })]
        : mode === 'jsonrpc'
          ? [agentPressErrorHandler({ body: 'jsonrpc' })]
          : [],
    )
  }

  const modes: Mode[] = [
    'default',
    'json',
    'jsonrpc',
    'errorHandler',
    'direct-json',
    'direct-jsonrpc',
  ]
  for (const stack of STACKS) {
    for (const mode of modes) {
      for (const configured of [true, false]) {
        // The unconfigured variant is checked with the default handlers only.
        if (!configured && mode !== 'default') continue
        describe(`${stack}, ${mode === 'default' ? 'plain passport.authenticate' : mode}${configured ? ', realm + resource_metadata' : ', no realm'}`, () => {
          let handler: ReturnType<typeof app>
          before(() => {
            handler = app(stack, mode, configured)
          })

          for (const row of ROWS) {
            it(row.title, async () => {
              const lines =
                row.authorization === undefined ? [] : [row.authorization(mock, down)].flat()
              const logged = logs.lines.length
              let req = request(handler).post(row.path ?? '/mcp')
              // An array makes Node send one header line per value (its typings only admit Cookie).
              if (lines.length > 0) req = req.set('Authorization', lines as unknown as string)
              const res = await req

              expect(res.status, res.text).to.equal(row.status)
              if (row.status === 200) {
                expect(challenges(res)).to.deep.equal([])
                const sent = lines[0]!.slice('Bearer '.length)
                expect(res.text).to.equal(successBody(sent, { id: 'u-1', name: 'Alice' }))
                return
              }
              const expectedChallenges =
                row.params === null || row.params === undefined
                  ? []
                  : [expectedChallenge(row.params, configured)]
              expect(challenges(res)).to.deep.equal(expectedChallenges)
              expect(res.headers['retry-after']).to.equal(row.status === 503 ? '5' : undefined)
              expect(res.text).to.equal(expectedBody(row, mode === 'errorHandler' ? 'json' : mode))
              if (mode !== 'default') {
                expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
              }
              if (row.status === 401) {
                // A Passport failure, never an error: nothing reached the error logger.
                expect(logs.lines.length).to.equal(logged)
              }
              expectNoLeak(res, lines)
            })
          }
        })
      }
    }
  }
})
