// Living with other strategies and other orgs, on real Express 4, Express 5 and Connect apps:
// a passport-http-bearer API key behind us, combined challenges, several AgentPress orgs in one
// strategy (and a foreign org refused without a single JWKS request), and every callback style.
import { expect } from 'chai'
import {
  AgentPressPartnerStrategy,
  type PartnerTokenClaims,
  type VerifyFunction,
} from 'passport-agentpress-partner'
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
  successBody,
} from '../support/stacks.js'

const REALM = 'mcp'
const API_KEY = 'sk_live_0123456789abcdef'

describe('with other strategies and several orgs', () => {
  const logs = captureErrorLogs()
  let acme: MockAgentPress
  let globex: MockAgentPress
  let initech: MockAgentPress
  const audience = 'http://127.0.0.1:3000/mcp'

  before(async () => {
    acme = await createMockAgentPress({ orgSlug: 'acme', audience })
    globex = await createMockAgentPress({ orgSlug: 'globex', audience })
    initech = await createMockAgentPress({ orgSlug: 'initech', audience })
  })
  after(async () => {
    await Promise.all([acme.close(), globex.close(), initech.close()])
  })

  const partnerVerify: VerifyFunction = async (claims: PartnerTokenClaims) =>
    claims.sub === 'ghost' ? false : { kind: 'partner', org: claims.iss, sub: claims.sub }

  for (const stack of STACKS) {
    describe(stack, () => {
      function chainApp(order: string[] = ['agentpress-partner', 'bearer']) {
        const passport = newPassport()
        passport.use(
          new AgentPressPartnerStrategy(
            { partnerMcp: [acme.partnerMcp, globex.partnerMcp], realm: REALM },
            partnerVerify,
          ),
        )
        passport.use(
          new BearerStrategy((token, done) =>
            done(null, token === API_KEY ? { kind: 'api-key' } : false),
          ),
        )
        return buildApp(stack, [
          { path: '/mcp', handlers: [passport.authenticate(order, { session: false }), echo] },
        ])
      }

      it('no token: both strategies fail; 401 with both challenges, ours first', async () => {
        const logged = logs.lines.length
        const res = await request(chainApp()).post('/mcp')
        expect(res.status).to.equal(401)
        expect(challenges(res)).to.deep.equal(['Bearer realm="mcp"', 'Bearer realm="Users"'])
        expect(res.text).to.equal('Unauthorized')
        expect(logs.lines.length, 'no error was raised').to.equal(logged)
      })

      it('a static API key (a b64token but not a JWT) reaches passport-http-bearer', async () => {
        const res = await request(chainApp()).post('/mcp').set('Authorization', `Bearer ${API_KEY}`)
        expect(res.status).to.equal(200)
        expect(challenges(res)).to.deep.equal([])
        // passport-http-bearer passes no info: Passport defaults req.authInfo to {}; no req.auth.
        expect(res.text).to.equal('{"user":{"kind":"api-key"},"authInfo":{}}')
      })

      it('a partner token is accepted by us first', async () => {
        const token = acme.signToken({ sub: 'alice' })
        const res = await request(chainApp()).post('/mcp').set('Authorization', `Bearer ${token}`)
        expect(res.status).to.equal(200)
        expect(challenges(res)).to.deep.equal([])
        expect(res.text).to.equal(
          successBody(token, { kind: 'partner', org: acme.issuer, sub: 'alice' }),
        )
      })

      it('the other order works too: bearer refuses the JWT, we accept it', async () => {
        const token = globex.signToken({ sub: 'bob' })
        const res = await request(chainApp(['bearer', 'agentpress-partner']))
          .post('/mcp')
          .set('Authorization', `Bearer ${token}`)
        expect(res.status).to.equal(200)
        expect(challenges(res)).to.deep.equal([])
        expect(res.text).to.equal(
          successBody(token, { kind: 'partner', org: globex.issuer, sub: 'bob' }),
        )
      })

      it('an expired partner token and a wrong API key: both challenges, each with its error', async () => {
        const now = Math.floor(Date.now() / 1000)
        const expired = acme.signToken({ iat: now - 600, exp: now - 120 })
        const res = await request(chainApp()).post('/mcp').set('Authorization', `Bearer ${expired}`)
        expect(res.status).to.equal(401)
        expect(challenges(res)).to.deep.equal([
          'Bearer realm="mcp", error="invalid_token", error_description="Token expired"',
          'Bearer realm="Users", error="invalid_token"',
        ])
        expect(res.text).to.equal('Unauthorized')
        const wrong = await request(chainApp())
          .post('/mcp')
          .set('Authorization', 'Bearer sk_live_wrong')
        expect(wrong.status).to.equal(401)
        expect(challenges(wrong)).to.deep.equal([
          'Bearer realm="mcp", error="invalid_token", error_description="Malformed token"',
          'Bearer realm="Users", error="invalid_token"',
        ])
        expect(wrong.text).to.equal('Unauthorized')
      })

      it('a valid token of an unknown user is a 403 decision: the chain stops there', async () => {
        const res = await request(chainApp())
          .post('/mcp')
          .set('Authorization', `Bearer ${acme.signToken({ sub: 'ghost' })}`)
        expect(res.status).to.equal(403)
        expect(challenges(res)).to.deep.equal([
          'Bearer realm="mcp", error="user_not_provisioned", error_description="User not provisioned"',
        ])
        expect(res.text).to.equal(
          finalhandlerPage('AgentPressHttpError: User not provisioned', 403),
        )
      })

      it('multi-org: two orgs accepted; a third org refused with no JWKS request anywhere', async () => {
        const passport = newPassport()
        passport.use(
          new AgentPressPartnerStrategy(
            { partnerMcp: [acme.partnerMcp, globex.partnerMcp], realm: REALM },
            partnerVerify,
          ),
        )
        const app = buildApp(stack, [
          {
            path: '/mcp',
            handlers: [passport.authenticate('agentpress-partner', { session: false }), echo],
          },
        ])
        for (const mock of [acme, globex, initech]) mock.resetJwksRequestCount()

        const foreign = await request(app)
          .post('/mcp')
          .set('Authorization', `Bearer ${initech.signToken()}`)
        expect(foreign.status).to.equal(401)
        expect(challenges(foreign)).to.deep.equal([
          'Bearer realm="mcp", error="invalid_token", error_description="Issuer does not match"',
        ])
        expect(foreign.text).to.equal('Unauthorized')
        expect([acme, globex, initech].map((m) => m.jwksRequestCount)).to.deep.equal([0, 0, 0])

        for (const mock of [acme, globex]) {
          const token = mock.signToken({ sub: 'carol' })
          const res = await request(app).post('/mcp').set('Authorization', `Bearer ${token}`)
          expect(res.status).to.equal(200)
          expect(challenges(res)).to.deep.equal([])
          expect(res.body.authInfo.issuer).to.equal(mock.issuer)
          expect(res.text).to.equal(
            successBody(token, { kind: 'partner', org: mock.issuer, sub: 'carol' }),
          )
        }
        expect([acme, globex, initech].map((m) => m.jwksRequestCount)).to.deep.equal([1, 1, 0])

        // Still none for the foreign org once the others are warm.
        const again = await request(app)
          .post('/mcp')
          .set('Authorization', `Bearer ${initech.signToken()}`)
        expect([again.status, challenges(again), again.text]).to.deep.equal([
          401,
          ['Bearer realm="mcp", error="invalid_token", error_description="Issuer does not match"'],
          'Unauthorized',
        ])
        expect(initech.jwksRequestCount).to.equal(0)
      })

      describe('callback styles', () => {
        const styles: Array<[string, boolean, (...args: any[]) => unknown]> = [
          [
            'done-style',
            false,
            (claims: PartnerTokenClaims, done: any) => done(null, { sub: claims.sub }),
          ],
          ['promise-returning', false, async (claims: PartnerTokenClaims) => ({ sub: claims.sub })],
          [
            'passReqToCallback, done-style',
            true,
            (req: any, claims: PartnerTokenClaims, done: any) =>
              done(null, { sub: claims.sub, method: req.method }),
          ],
          [
            'passReqToCallback, promise-returning',
            true,
            async (req: any, claims: PartnerTokenClaims) => ({
              sub: claims.sub,
              method: req.method,
            }),
          ],
        ]

        function styleApp(verify: (...args: any[]) => unknown, passReqToCallback: boolean) {
          const passport = newPassport()
          passport.use(
            new AgentPressPartnerStrategy(
              { partnerMcp: acme.partnerMcp, realm: REALM, passReqToCallback } as any,
              verify as any,
            ),
          )
          return buildApp(stack, [
            {
              path: '/mcp',
              handlers: [passport.authenticate('agentpress-partner', { session: false }), echo],
            },
          ])
        }

        for (const [title, passReq, verify] of styles) {
          it(`${title}: req.user, req.authInfo and req.auth are set`, async () => {
            const token = acme.signToken({ sub: 'dana' })
            const res = await request(styleApp(verify, passReq))
              .post('/mcp')
              .set('Authorization', `Bearer ${token}`)
            expect(res.status).to.equal(200)
            expect(res.body.user).to.deep.equal(
              passReq ? { sub: 'dana', method: 'POST' } : { sub: 'dana' },
            )
            expect(res.body.authInfo.scopes).to.deep.equal(['mcp:read', 'mcp:write'])
            expect(res.body.authInfo.issuer).to.equal(acme.issuer)
            expect(res.body.authInfo.claims.sub).to.equal('dana')
            expect(res.body.auth).to.include({
              token,
              clientId: 'example-partner',
              resource: audience,
            })
            expect(res.body.auth.scopes).to.deep.equal(['mcp:read', 'mcp:write'])
            expect(challenges(res)).to.deep.equal([])
            expect(res.text).to.equal(
              successBody(token, passReq ? { sub: 'dana', method: 'POST' } : { sub: 'dana' }, {
                resource: audience,
              }),
            )
          })
        }

        const broken: Array<[string, (...args: any[]) => unknown]> = [
          [
            'throwing',
            () => {
              throw new Error('verify threw')
            },
          ],
          [
            'rejecting',
            async () => {
              throw new Error('verify threw')
            },
          ],
          [
            'done(err)',
            (_c: unknown, done: any) => setTimeout(() => done(new Error('verify threw')), 1),
          ],
        ]
        for (const [title, verify] of broken) {
          it(`${title} → 500 from the default handler, no challenge, no hang`, async () => {
            const logged = logs.lines.length
            const res = await request(styleApp(verify, false))
              .post('/mcp')
              .set('Authorization', `Bearer ${acme.signToken()}`)
              .timeout(5000)
            expect(res.status).to.equal(500)
            expect(challenges(res)).to.deep.equal([])
            // The framework logged the stack it rendered: the page is exactly that stack.
            // finalhandler logs on a later tick than it answers.
            await new Promise((resolve) => setImmediate(resolve))
            expect(logs.lines.length - logged).to.equal(1)
            const stack = logs.lines.at(-1)!
            expect(stack.startsWith('Error: verify threw\n'), stack).to.equal(true)
            expect(res.text).to.equal(finalhandlerPage(stack, 500))
          })
        }

        it('a rejection without a reason → 500, never a pass-through to the route', async () => {
          const logged = logs.lines.length
          const res = await request(styleApp(() => Promise.reject(), false))
            .post('/mcp')
            .set('Authorization', `Bearer ${acme.signToken()}`)
          expect(res.status).to.equal(500)
          expect(challenges(res)).to.deep.equal([])
          await new Promise((resolve) => setImmediate(resolve))
          expect(logs.lines.length - logged).to.equal(1)
          const stack = logs.lines.at(-1)!
          expect(
            stack.startsWith(
              'Error: AgentPressPartnerStrategy: verify callback failed without an error value\n',
            ),
            stack,
          ).to.equal(true)
          expect(res.text).to.equal(finalhandlerPage(stack, 500))
        })
      })
    })
  }
})
