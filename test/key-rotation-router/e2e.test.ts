// Key rotation end to end: the mock AgentPress rotates its keys and delivers the webhook to a real
// router and strategy on each framework; old tokens are refused, new ones accepted.
import type { RequestListener } from 'node:http'
import connect from 'connect'
import { expect } from 'chai'
import express from 'express'
import passport from 'passport'
import request from 'supertest'
import {
  AgentPressPartnerStrategy,
  PartnerTokenVerifier,
  createKeyRotationRouter,
} from 'passport-agentpress-partner'
import {
  createMockAgentPress,
  deliverWebhook,
  type MockAgentPress,
} from 'passport-agentpress-partner/testing'
import { startCountingServer } from '../support/servers.js'
import { FRAMEWORKS, PATH, express4, listen, routerHooks } from './support.js'

describe('key rotation end to end with the mock AgentPress', () => {
  let mock: MockAgentPress

  beforeEach(async () => {
    mock = await createMockAgentPress()
  })
  afterEach(async () => {
    await mock.close()
  })
  routerHooks()

  for (const framework of FRAMEWORKS) {
    describe(framework.name, () => {
      /** An app with a Passport-protected /mcp and the rotation router sharing one strategy. */
      async function partnerApp(): Promise<{ url: string; strategy: AgentPressPartnerStrategy }> {
        const strategy = new AgentPressPartnerStrategy(
          { partnerMcp: mock.partnerMcp, resourceMetadataUrl: false },
          async (claims) => ({ id: claims.sub }),
        )
        const instance = new passport.Passport()
        instance.use(strategy)
        const router = createKeyRotationRouter({ webhookSecret: mock.webhookSecret, strategy })
        const auth = instance.authenticate(strategy.name, {
          session: false,
        }) as connect.NextHandleFunction
        const ok = (_req: unknown, res: import('node:http').ServerResponse) => {
          res.end('ok')
        }
        let listener: RequestListener
        if (framework.name === 'Connect') {
          const app = connect()
          app.use('/mcp', auth)
          app.use('/mcp', ok)
          app.use(PATH, router)
          listener = app as unknown as RequestListener
        } else {
          const lib = framework.name === 'Express 4' ? express4 : express
          const app = lib()
          app.use(PATH, router as express.RequestHandler)
          app.use(lib.json())
          app.post('/mcp', auth as express.RequestHandler, ok as express.RequestHandler)
          listener = app as unknown as RequestListener
        }
        const { url } = await listen(listener)
        return { url, strategy }
      }

      const callMcp = (url: string, token: string) =>
        request(url).post('/mcp').set('Authorization', `Bearer ${token}`).send({})

      // What the MCP route answered: exact status, exact WWW-Authenticate (or none) and body.
      const wire = (res: { status: number; headers: Record<string, unknown>; text: string }) => [
        res.status,
        res.headers['www-authenticate'],
        res.text,
      ]
      const OK = [200, undefined, 'ok']
      // Plain passport.authenticate() without a realm: Passport's own 401 body.
      const REFUSED_UNKNOWN_KID = [
        401,
        'Bearer error="invalid_token", error_description="Signing key not found"',
        'Unauthorized',
      ]

      it('rotation announced → one JWKS fetch → new-key tokens verify, none fail', async () => {
        const { url } = await partnerApp()
        expect(wire(await callMcp(url, mock.signToken()))).to.deep.equal(OK)
        mock.resetJwksRequestCount()
        const event = mock.rotateKeys()
        const delivery = await deliverWebhook(`${url}${PATH}`, event, {
          secret: mock.webhookSecret,
        })
        expect([delivery.status, delivery.body]).to.deep.equal([200, { received: true }])
        expect(mock.jwksRequestCount).to.equal(1)
        const calls = Array.from({ length: 20 }, () => callMcp(url, mock.signToken()))
        const answers = await Promise.all(calls)
        expect(answers.map(wire)).to.deep.equal(Array(20).fill(OK))
        expect(mock.jwksRequestCount).to.equal(1)
      })

      it('50 concurrent deliveries → one fetch; a replay → no fetch', async () => {
        const { url } = await partnerApp()
        expect(wire(await callMcp(url, mock.signToken()))).to.deep.equal(OK)
        mock.resetJwksRequestCount()
        const event = mock.rotateKeys()
        const answers = await Promise.all(
          Array.from({ length: 50 }, () =>
            deliverWebhook(`${url}${PATH}`, event, { secret: mock.webhookSecret }),
          ),
        )
        // Joining the processing in flight answers {"received":true}; arriving after it completed
        // is a replay: which one each delivery gets is timing, but each is one of the two exactly.
        const bodies = [{ received: true }, { received: true, duplicate: true }]
        for (const answer of answers) {
          expect(answer.status).to.equal(200)
          expect(bodies).to.deep.include(answer.body)
        }
        expect(answers.map((answer) => answer.body)).to.deep.include({ received: true })
        expect(mock.jwksRequestCount).to.equal(1)
        const replay = await deliverWebhook(`${url}${PATH}`, event, { secret: mock.webhookSecret })
        const duplicate = { received: true, duplicate: true }
        expect([replay.status, replay.body]).to.deep.equal([200, duplicate])
        expect(mock.jwksRequestCount).to.equal(1)
      })

      it('emergency rotation → retired kid refused at once, even with JWKS down', async () => {
        const { url } = await partnerApp()
        const oldToken = mock.signToken()
        expect(wire(await callMcp(url, oldToken))).to.deep.equal(OK)
        const event = mock.rotateKeys({ emergency: true })
        mock.setJwksMode('error')
        const delivery = await deliverWebhook(`${url}${PATH}`, event, {
          secret: mock.webhookSecret,
        })
        expect([delivery.status, delivery.body]).to.deep.equal([
          503,
          { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
        ])
        expect(delivery.headers['retry-after']).to.equal('5')
        const refused = await callMcp(url, oldToken)
        expect(wire(refused)).to.deep.equal(REFUSED_UNKNOWN_KID)
        // AgentPress retries once the JWKS is back: processed in full.
        mock.setJwksMode('ok')
        const retry = await deliverWebhook(`${url}${PATH}`, event, { secret: mock.webhookSecret })
        expect([retry.status, retry.body]).to.deep.equal([200, { received: true }])
        expect(wire(await callMcp(url, mock.signToken()))).to.deep.equal(OK)
        expect(wire(await callMcp(url, oldToken))).to.deep.equal(REFUSED_UNKNOWN_KID)
      })

      it('JWKS down during a normal rotation → 503, then the retry succeeds', async () => {
        const { url } = await partnerApp()
        expect(wire(await callMcp(url, mock.signToken()))).to.deep.equal(OK)
        const event = mock.rotateKeys()
        mock.setJwksMode('error')
        const delivery = await deliverWebhook(`${url}${PATH}`, event, {
          secret: mock.webhookSecret,
        })
        expect([delivery.status, delivery.body]).to.deep.equal([
          503,
          { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
        ])
        expect(delivery.headers['retry-after']).to.equal('5')
        mock.setJwksMode('ok')
        mock.resetJwksRequestCount()
        const retry = await deliverWebhook(`${url}${PATH}`, event, { secret: mock.webhookSecret })
        expect([retry.status, retry.body]).to.deep.equal([200, { received: true }])
        expect(mock.jwksRequestCount).to.equal(1)
      })
    })
  }

  it('URLs and keys in the body are ignored: only the configured JWKS URL is fetched', async () => {
    const decoy = await startCountingServer()
    try {
      const verifier = new PartnerTokenVerifier(mock.partnerMcp)
      const router = createKeyRotationRouter({
        webhookSecret: mock.webhookSecret,
        verifiers: [verifier],
      })
      const { url } = await listen(express().use(PATH, router) as unknown as RequestListener)
      const event = mock.rotateKeys()
      const delivery = await deliverWebhook(
        `${url}${PATH}`,
        {
          ...event,
          jwksUrl: `${decoy.url}/.well-known/jwks.json`,
          jku: `${decoy.url}/jku`,
          issuerUrl: decoy.url,
          keys: [
            {
              kty: 'OKP',
              crv: 'Ed25519',
              x: 'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
              kid: event.newCurrentKid,
            },
          ],
        },
        { secret: mock.webhookSecret },
      )
      expect([delivery.status, delivery.body]).to.deep.equal([200, { received: true }])
      expect(decoy.count).to.equal(0)
      expect(mock.jwksRequestCount).to.equal(1)
      expect((await verifier.verifyToken(mock.signToken())).iss).to.equal(mock.issuer)
    } finally {
      await decoy.close()
    }
  })
})
