// Regression: configuration mistakes that stayed invisible until AgentPress had retried for a day
// (or every token failed issuer_mismatch) were accepted silently. Each is now an exact TypeError at
// construction naming the option and the fix — or, where it can only show on the first delivery
// (a body parser before the router), one loud process warning. docs/configuration-errors.md
// lists them all.
import { expect } from 'chai'
import express from 'express'
import { Passport } from 'passport'
import {
  AgentPressPartnerStrategy,
  authenticatePartner,
  createKeyRotationRouter,
  PartnerTokenVerifier,
  verifyKeyRotation,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { recordChannels } from '../support/channels.js'
import { listen, send } from '../support/wire.js'

const ISSUER = 'https://api.agent.press/orgs/acme-org'
const BASE = { issuer: ISSUER, audience: 'https://mcp.example.com/mcp', expectedExtProvider: 'x' }
const verifier = new PartnerTokenVerifier(BASE)

describe('regression: configuration mistakes are named at construction', () => {
  const secretCases: Array<[string, string, string]> = [
    [
      'a secret pasted with its quotes',
      '"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"',
      'webhookSecret is wrapped in quotes: remove them (a .env file or a YAML/JSON value kept the quotes as part of the secret)',
    ],
    [
      'a whsec_ secret whose rest is not base64',
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS',
      'webhookSecret starts with whsec_ but the rest is not base64: copy the whole secret again from AgentPress (it was cut or altered)',
    ],
    [
      'the base64 rest of a whsec_ secret without its prefix',
      'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'webhookSecret looks like the base64 part of a whsec_ secret without its prefix: configure the whole secret, whsec_ included',
    ],
  ]
  for (const [title, secret, message] of secretCases) {
    it(`createKeyRotationRouter: ${title} → TypeError`, () => {
      expect(() => createKeyRotationRouter({ webhookSecret: secret, verifiers: [verifier] }))
        .to.throw(TypeError)
        .with.property('message', message)
    })
    it(`verifyKeyRotation: ${title} → TypeError`, () => {
      expect(() => verifyKeyRotation({ payload: '{}', headers: {}, secret: secret as string }))
        .to.throw(TypeError)
        .with.property('message', message.replace(/^webhookSecret/, 'secret'))
    })
  }

  it('a hex secret and a whsec_<base64> secret stay valid', () => {
    for (const webhookSecret of [
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    ]) {
      expect(() => createKeyRotationRouter({ webhookSecret, verifiers: [verifier] })).not.to.throw()
    }
  })

  const verifierCases: Array<[string, Record<string, unknown>, string]> = [
    [
      'the JWKS URL pasted as the issuer',
      { issuer: `${ISSUER}/.well-known/jwks.json` },
      `options.issuer "${ISSUER}/.well-known/jwks.json" is a JWKS URL, not an issuer: use the issuer "${ISSUER}" (the JWKS URL is derived from it)`,
    ],
    [
      'the issuer pasted as the JWKS URL',
      { jwksUrl: ISSUER },
      `options.jwksUrl is the issuer URL, not a JWKS URL: omit jwksUrl (the JWKS is at "${ISSUER}/.well-known/jwks.json")`,
    ],
    [
      'clockTolerance: 3600',
      { clockTolerance: 3600 },
      'options.clockTolerance must be at most 300 seconds, got 3600: tokens live 60 s, so a larger tolerance keeps expired tokens valid for many times their lifetime (fix the server clock with NTP instead)',
    ],
    [
      'an http issuer off loopback (named as the issuer, not the derived jwksUrl)',
      { issuer: 'http://api.agent.press/orgs/acme-org' },
      'options.issuer must use https: (http: is allowed only for loopback hosts), got http:',
    ],
  ]
  for (const [title, options, message] of verifierCases) {
    it(`PartnerTokenVerifier: ${title} → TypeError`, () => {
      expect(() => new PartnerTokenVerifier({ ...BASE, ...options }))
        .to.throw(TypeError)
        .with.property('message', message)
    })
  }

  it('clockTolerance: 300 (the bound) is accepted', () => {
    expect(
      new PartnerTokenVerifier({ ...BASE, clockTolerance: 300 }).options.clockToleranceSec,
    ).to.equal(300)
  })

  it('a string route scope is refused when authenticatePartner is mounted', () => {
    const strategy = new AgentPressPartnerStrategy({ partnerMcp: BASE }, async () => ({}))
    expect(() => authenticatePartner(strategy, { scope: 'mcp:write' as never }))
      .to.throw(TypeError)
      .with.property(
        'message',
        'authenticatePartner() options.scope must be an array of scope strings, not a string: use ["mcp:write"]',
      )
  })

  it('createMockAgentPress: an unknown option → TypeError', async () => {
    let error: unknown
    await createMockAgentPress({ orgslug: 'acme' } as never).then(
      (mock) => mock.close(),
      (e: unknown) => (error = e),
    )
    expect(error).to.be.instanceOf(TypeError)
    expect((error as Error).message).to.equal('Unknown createMockAgentPress option: orgslug')
  })
})

describe('regression: mistakes that show only on a request are said once, loudly', () => {
  let mock: MockAgentPress
  beforeEach(async () => {
    mock = await createMockAgentPress({ webhookSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
  })
  afterEach(() => mock.close())

  it('express.json() before the router: 500 body_already_parsed, one process warning naming the fix', async () => {
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    const channels = recordChannels()
    const app = express()
    app.use(express.json())
    app.use(
      '/hook',
      createKeyRotationRouter({
        webhookSecret: mock.webhookSecret,
        verifiers: [new PartnerTokenVerifier(mock.partnerMcp)],
      }),
    )
    const server = await listen(app)
    const description =
      'A body parser consumed the raw request body before the key-rotation router. Mount the router before express.json(), or keep the raw bytes with express.json({ verify: (req, res, buf) => { req.rawBody = buf } })'
    try {
      for (let i = 0; i < 2; i++) {
        const { body, headers } = mock.signWebhook(mock.rotateKeys())
        const res = await send(server.port, {
          method: 'POST',
          path: '/hook',
          headers: Object.entries(headers),
          body,
        })
        expect(res.status).to.equal(500)
        expect(JSON.parse(res.text)).to.deep.equal({
          error: 'body_already_parsed',
          error_description: description,
        })
      }
      // 'warning' is emitted on the next tick: wait for it, bounded.
      for (let i = 0; i < 100 && warnings.length === 0; i++)
        await new Promise((r) => setTimeout(r, 10))
      expect(warnings.map((w) => [w.name, (w as { code?: string }).code, w.message])).to.deep.equal(
        [
          [
            'Warning',
            'AGENTPRESS_WEBHOOK_BODY_ALREADY_PARSED',
            `createKeyRotationRouter: every delivery will fail with 500 body_already_parsed. ${description}`,
          ],
        ],
      )
      expect(
        channels.of('webhookDelivery').map((m) => [m.outcome, m.reason, m.status]),
      ).to.deep.equal([
        ['refused', 'body_already_parsed', 500],
        ['refused', 'body_already_parsed', 500],
      ])
    } finally {
      channels.stop()
      process.off('warning', onWarning)
      await server.close()
    }
  })

  it('passport.authenticate() with a string scope: the first request says Passport gives no mount hook', async () => {
    const passport = new Passport()
    passport.use(new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, async () => ({})))
    const app = express()
    app.get(
      '/mcp',
      passport.authenticate('agentpress-partner', { session: false, scope: 'mcp:write' } as never),
      (_req, res) => {
        res.end('ok')
      },
    )
    app.use(
      (err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        res.status(500).json({ message: err.message })
      },
    )
    const server = await listen(app)
    try {
      const res = await send(server.port, {
        method: 'GET',
        path: '/mcp',
        headers: [['Authorization', `Bearer ${mock.signToken()}`]],
      })
      expect(res.status).to.equal(500)
      expect(res.get('www-authenticate')).to.equal(undefined)
      expect(JSON.parse(res.text)).to.deep.equal({
        message:
          'passport.authenticate() options.scope must be an array of scope strings, not a string: use ["mcp:write"] (Passport gives a strategy no hook when a route is mounted, so this shows on the first request; authenticatePartner(strategy, { scope }) checks it at mount time)',
      })
    } finally {
      await server.close()
    }
  })
})
