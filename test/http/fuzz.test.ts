// Property tests (fast-check, seeded and bounded): hostile values in the verify callback's `info`,
// the realm, requireScopes() arguments and the Authorization header never produce an invalid
// header, never reflect anything, and never take the process down.
import { expect } from 'chai'
import fc from 'fast-check'
import { AgentPressPartnerStrategy, requireScopes } from 'passport-agentpress-partner'
import { type VerifyDone } from '../../dist/http/verify-callback.js'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import request from 'supertest'
import {
  buildApp,
  captureErrorLogs,
  challenges,
  echo,
  finalhandlerPage,
  newPassport,
  STACKS,
  successBody,
} from '../support/stacks.js'

const SEED = 0x5eed
const RUNS = 25

// Characters that break naive header building, plus ordinary ones.
const NASTY = [
  '"',
  '\\',
  '\r',
  '\n',
  '\r\n',
  '\0',
  '\t',
  'é',
  '漢',
  '😀',
  '\u2028',
  ' ',
  ',',
  '=',
  'a',
  'Z',
  '9',
  ':',
]
const nastyString = fc.oneof(
  fc.string({ unit: fc.constantFrom(...NASTY), maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ maxLength: 24 }),
)
const RFC6750 = /^[\x20\x21\x23-\x5B\x5D-\x7E]+$/
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/
// A valid header value, as Node's own check defines it (no CR, LF, NUL, nothing above 0xFF).
const VALID_HEADER = /^[\t\x20-\x7E\x80-\xFF]*$/

describe('fuzzing the HTTP layer', function () {
  this.timeout(120_000)
  captureErrorLogs()
  const crashes: unknown[] = []
  const onCrash = (err: unknown) => crashes.push(err)
  let mock: MockAgentPress

  before(async () => {
    process.on('unhandledRejection', onCrash)
    process.on('uncaughtException', onCrash)
    mock = await createMockAgentPress()
  })
  after(async () => {
    process.off('unhandledRejection', onCrash)
    process.off('uncaughtException', onCrash)
    await mock.close()
  })
  afterEach(() => {
    expect(crashes, 'no unhandled rejection or uncaught exception').to.deep.equal([])
  })

  for (const stack of STACKS) {
    describe(stack, () => {
      it("the verify callback's info never reaches a header (refusal and success)", async () => {
        let info: unknown
        let accept = false
        const passport = newPassport()
        passport.use(
          new AgentPressPartnerStrategy(
            { partnerMcp: mock.partnerMcp, realm: 'mcp', resourceMetadataUrl: false },
            (_claims, done: VerifyDone) =>
              setImmediate(() => done(null, accept ? { id: 1 } : false, info)),
          ),
        )
        const app = buildApp(stack, [
          {
            path: '/mcp',
            handlers: [passport.authenticate('agentpress-partner', { session: false }), echo],
          },
        ])
        const token = mock.signToken()
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              nastyString,
              fc.record({ message: nastyString }),
              fc.dictionary(nastyString, nastyString),
            ),
            fc.boolean(),
            async (value, ok) => {
              info = value
              accept = ok
              const res = await request(app).post('/mcp').set('Authorization', `Bearer ${token}`)
              if (ok) {
                expect(res.status).to.equal(200)
                expect(challenges(res)).to.deep.equal([])
                // An object info is kept in req.authInfo (our fields win); anything else is dropped.
                const kept =
                  value !== null && typeof value === 'object' && !Array.isArray(value)
                    ? (value as Record<string, unknown>)
                    : undefined
                expect(res.text).to.equal(successBody(token, { id: 1 }, { info: kept }))
              } else {
                expect(res.status).to.equal(403)
                expect(challenges(res)).to.deep.equal([
                  'Bearer realm="mcp", error="user_not_provisioned", error_description="User not provisioned"',
                ])
                expect(res.text).to.equal(
                  finalhandlerPage('AgentPressHttpError: User not provisioned', 403),
                )
              }
            },
          ),
          { seed: SEED, numRuns: RUNS },
        )
      })

      it('a realm is either refused at construction or echoed exactly in a valid challenge', async () => {
        await fc.assert(
          fc.asyncProperty(nastyString, async (realm) => {
            const build = () =>
              new AgentPressPartnerStrategy(
                { partnerMcp: mock.partnerMcp, realm, resourceMetadataUrl: false },
                async () => ({}),
              )
            if (!RFC6750.test(realm)) {
              expect(build).to.throw(TypeError)
              return
            }
            const passport = newPassport()
            passport.use(build())
            const app = buildApp(stack, [
              {
                path: '/mcp',
                handlers: [passport.authenticate('agentpress-partner', { session: false }), echo],
              },
            ])
            const res = await request(app).post('/mcp')
            expect(res.status).to.equal(401)
            expect(challenges(res)).to.deep.equal([`Bearer realm="${realm}"`])
            expect(res.text).to.equal('Unauthorized')
          }),
          {
            seed: SEED,
            numRuns: RUNS,
            examples: [['a"b'], ['a\r\nSet-Cookie: x=1'], ['\0'], ['réalm'], ['ok realm']],
          },
        )
      })

      it('requireScopes() arguments are refused at creation or named exactly in scope=', async () => {
        const token = mock.signToken({ scope: 'mcp:read' })
        const scopeLike = fc.oneof(nastyString, fc.stringMatching(/^[a-z:*]{1,10}$/))
        await fc.assert(
          fc.asyncProperty(fc.array(scopeLike, { minLength: 0, maxLength: 4 }), async (scopes) => {
            // As a JavaScript caller could: none at all is a compile error in TypeScript only.
            const create = () => requireScopes(...(scopes as [string, ...string[]]))
            if (scopes.length === 0 || !scopes.every((s) => SCOPE_TOKEN.test(s))) {
              expect(create).to.throw(TypeError)
              return
            }
            const passport = newPassport()
            passport.use(
              new AgentPressPartnerStrategy(
                { partnerMcp: mock.partnerMcp, resourceMetadataUrl: false },
                async () => ({}),
              ),
            )
            const app = buildApp(stack, [
              {
                path: '/mcp',
                handlers: [
                  passport.authenticate('agentpress-partner', { session: false }),
                  create(),
                  echo,
                ],
              },
            ])
            const res = await request(app).post('/mcp').set('Authorization', `Bearer ${token}`)
            if (scopes.every((s) => s === 'mcp:read')) {
              expect(res.status).to.equal(200)
              expect(challenges(res)).to.deep.equal([])
              expect(res.text).to.equal(successBody(token, {}))
              return
            }
            expect(res.status).to.equal(403)
            expect(challenges(res)).to.deep.equal([
              `Bearer error="insufficient_scope", error_description="Insufficient scope", scope="${[...new Set(scopes)].join(' ')}"`,
            ])
            expect(res.text).to.equal(
              finalhandlerPage('AgentPressHttpError: Insufficient scope', 403),
            )
          }),
          {
            seed: SEED,
            numRuns: RUNS,
            examples: [[['a"b']], [['mcp:read', 'x\r\ny']], [['settings:*']]],
          },
        )
      })

      it('any Authorization value a client can send → 400 or 401 with a fixed challenge', async () => {
        const passport = newPassport()
        passport.use(
          new AgentPressPartnerStrategy(
            { partnerMcp: mock.partnerMcp, realm: 'mcp', resourceMetadataUrl: false },
            async () => ({}),
          ),
        )
        const app = buildApp(stack, [
          {
            path: '/mcp',
            handlers: [passport.authenticate('agentpress-partner', { session: false }), echo],
          },
        ])
        const fixed = new Set([
          'Bearer realm="mcp"',
          'Bearer realm="mcp", error="invalid_request", error_description="Malformed authorization header"',
          'Bearer realm="mcp", error="invalid_token", error_description="Malformed token"',
          'Bearer realm="mcp", error="invalid_token", error_description="Algorithm not allowed"',
          'Bearer realm="mcp", error="invalid_token", error_description="Signing key not found"',
        ])
        const printable = fc.string({
          unit: fc.constantFrom(...'aZ9-._~+/= "\\,:é\t'.split('')),
          maxLength: 40,
        })
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom('Bearer ', 'bearer ', 'Basic ', '', 'Bearer'),
            printable,
            async (prefix, rest) => {
              const value = `${prefix}${rest}`
              const res = await request(app).post('/mcp').set('Authorization', value)
              expect([400, 401]).to.include(res.status)
              const lines = challenges(res)
              expect(lines).to.have.length(1)
              expect(fixed.has(lines[0]!), lines[0]).to.equal(true)
              expect(VALID_HEADER.test(lines[0]!)).to.equal(true)
              // The status, the challenge and the body agree: 400 is exactly invalid_request.
              const invalidRequest = lines[0]!.includes('error="invalid_request"')
              expect(res.status).to.equal(invalidRequest ? 400 : 401)
              expect(res.text).to.equal(
                invalidRequest
                  ? finalhandlerPage('AgentPressHttpError: Malformed authorization header', 400)
                  : 'Unauthorized',
              )
            },
          ),
          { seed: SEED, numRuns: RUNS * 2 },
        )
      })
    })
  }
})
