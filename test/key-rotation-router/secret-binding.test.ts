// §5: each webhook secret acts on its own org only. Two orgs (two mock AgentPress instances, two
// real verifiers) behind one router on Express 5, each secret bound to its issuer: org A's secret
// naming B is refused exactly as a forgery and leaves B's keys alone; A's delivery naming no issuer
// refreshes A only; each org's own deliveries work; the delivery channel names the secret that
// matched. Before the binding existed, A's secret revoked B's key (both answered 200).
import { expect } from 'chai'
import express from 'express'
import {
  createKeyRotationRouter,
  PartnerTokenVerifier,
  type KeyRotationRouterOptions,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { recordChannels, type Recorder } from '../support/channels.js'
import { listen, PATH, routerHooks } from './support.js'

const SECRET_A = 'whsec_orgAsecret0123456789abcdef00'
const SECRET_B = 'whsec_orgBsecret0123456789abcdef00'

describe('createKeyRotationRouter: each secret bound to its org (§5)', () => {
  let orgA: MockAgentPress
  let orgB: MockAgentPress
  let verifierA: PartnerTokenVerifier
  let verifierB: PartnerTokenVerifier
  let url: string
  let channels: Recorder
  routerHooks()

  beforeEach(async () => {
    orgA = await createMockAgentPress({ orgSlug: 'org-a', webhookSecret: SECRET_A })
    orgB = await createMockAgentPress({ orgSlug: 'org-b', webhookSecret: SECRET_B })
    verifierA = new PartnerTokenVerifier(orgA.partnerMcp)
    verifierB = new PartnerTokenVerifier(orgB.partnerMcp)
    await verifierA.verifyToken(orgA.signToken())
    await verifierB.verifyToken(orgB.signToken())
    const app = express()
    app.use(
      PATH,
      createKeyRotationRouter({
        webhookSecret: [
          { secret: SECRET_A, issuer: orgA.issuer, label: 'org-a' },
          { secret: SECRET_B, issuer: orgB.issuer },
        ],
        verifiers: [verifierA, verifierB],
      }),
    )
    url = `${(await listen(app)).url}${PATH}`
    channels = recordChannels()
  })

  afterEach(async () => {
    channels.stop()
    await orgA.close()
    await orgB.close()
  })

  const post = async (delivery: { body: string; headers: Record<string, string> }) => {
    const res = await fetch(url, { method: 'POST', body: delivery.body, headers: delivery.headers })
    return { status: res.status, body: (await res.json()) as unknown }
  }

  it("org A's secret naming org B's issuer → 401 signature_mismatch; B's key is not revoked", async () => {
    const countB = orgB.jwksRequestCount
    const event = { ...orgB.rotateKeys({ emergency: true }), retiredKid: orgB.keys[0]!.kid }
    const res = await post(orgA.signWebhook(event))
    expect(res).to.deep.equal({
      status: 401,
      body: { error: 'signature_mismatch', error_description: 'Signature does not match' },
    })
    expect(orgB.jwksRequestCount).to.equal(countB)
    // B's tokens signed with the key A's secret tried to revoke still verify.
    const claims = await verifierB.verifyToken(orgB.signToken({}, { kid: orgB.keys[0]!.kid }))
    expect(claims.iss).to.equal(orgB.issuer)
    expect(channels.of('webhookDelivery')).to.deep.equal([
      {
        outcome: 'refused',
        reason: 'signature_mismatch',
        status: 401,
        issuer: null,
        emergency: null,
        eventId: null,
        secretIndex: null,
        secretLabel: null,
      },
    ])
  })

  it("org A's secret naming no issuer refreshes (and revokes on) org A's verifier only", async () => {
    const [countA, countB] = [orgA.jwksRequestCount, orgB.jwksRequestCount]
    const { issuer: _issuer, ...event } = {
      ...orgA.rotateKeys({ emergency: true }),
      retiredKid: orgB.keys[0]!.kid, // B's kid: must not be revoked on B
    }
    const res = await post(orgA.signWebhook(event))
    expect(res).to.deep.equal({ status: 200, body: { received: true } })
    expect(orgA.jwksRequestCount).to.equal(countA + 1)
    expect(orgB.jwksRequestCount).to.equal(countB)
    const claims = await verifierB.verifyToken(orgB.signToken({}, { kid: orgB.keys[0]!.kid }))
    expect(claims.iss).to.equal(orgB.issuer)
    expect(channels.of('webhookDelivery')).to.deep.equal([
      {
        outcome: 'accepted',
        reason: null,
        status: 200,
        issuer: null,
        emergency: true,
        eventId: event.id,
        secretIndex: 0,
        secretLabel: 'org-a',
      },
    ])
  })

  it("each org's own deliveries work; the channel says which secret matched", async () => {
    const [countA, countB] = [orgA.jwksRequestCount, orgB.jwksRequestCount]
    const eventA = orgA.rotateKeys()
    const eventB = orgB.rotateKeys({ emergency: true })
    expect(await post(orgA.signWebhook(eventA))).to.deep.equal({
      status: 200,
      body: { received: true },
    })
    expect(await post(orgB.signWebhook(eventB))).to.deep.equal({
      status: 200,
      body: { received: true },
    })
    expect([orgA.jwksRequestCount, orgB.jwksRequestCount]).to.deep.equal([countA + 1, countB + 1])
    // B's emergency revoked B's retired key on B's verifier; A's tokens are untouched.
    const error = await verifierB.verifyToken(orgB.signToken({}, { kid: eventB.retiredKid })).then(
      () => undefined,
      (e: unknown) => e as { reason?: string },
    )
    expect(error?.reason).to.equal('kid_missing_or_unknown')
    expect((await verifierA.verifyToken(orgA.signToken())).iss).to.equal(orgA.issuer)
    const seen = channels
      .of('webhookDelivery')
      .map((m) => [m.outcome, m.issuer, m.secretIndex, m.secretLabel])
    expect(seen).to.deep.equal([
      ['accepted', orgA.issuer, 0, 'org-a'],
      ['accepted', orgB.issuer, 1, null],
    ])
  })
})

describe('createKeyRotationRouter: secret binding mistakes are TypeErrors', () => {
  const A = 'https://api.agent.press/orgs/org-a'
  const B = 'https://api.agent.press/orgs/org-b'
  const verifiers = [
    new PartnerTokenVerifier({
      issuer: A,
      audience: 'https://mcp.example.com/mcp',
      expectedExtProvider: 'x',
    }),
    new PartnerTokenVerifier({
      issuer: B,
      audience: 'https://mcp.example.com/mcp',
      expectedExtProvider: 'x',
    }),
  ]
  const cases: Array<[string, Partial<KeyRotationRouterOptions>, string]> = [
    [
      'two unbound secrets in front of two issuers',
      { webhookSecret: [SECRET_A, SECRET_B] },
      "webhookSecret: 2 secrets in front of 2 issuers would let each org's secret act on every org; bind each secret to its issuer: webhookSecret: [{ secret, issuer }, …]",
    ],
    [
      'one bound, one unbound',
      { webhookSecret: [{ secret: SECRET_A, issuer: A }, SECRET_B] },
      'webhookSecret[1] has no issuer while other secrets are bound to theirs: give every secret its issuer, { secret, issuer }',
    ],
    [
      'an issuer no verifier trusts',
      { webhookSecret: [{ secret: SECRET_A, issuer: `${A}/` }] },
      `webhookSecret[0].issuer "${A}/" is not the issuer of any verifier behind this router: use the exact issuer URL of its strategy or verifier`,
    ],
    [
      'an empty issuer list',
      { webhookSecret: { secret: SECRET_A, issuer: [] } },
      'webhookSecret.issuer must not be an empty array',
    ],
    [
      'an unknown member',
      { webhookSecret: [{ secret: SECRET_A, issuers: A } as never] },
      'webhookSecret[0]: unknown option issuers (expected secret, issuer, label)',
    ],
    [
      'an empty label',
      { webhookSecret: [{ secret: SECRET_A, issuer: A, label: '' }] },
      'webhookSecret[0].label must be a non-empty string of at most 64 characters',
    ],
  ]
  for (const [title, options, message] of cases) {
    it(`${title} → TypeError`, () => {
      expect(() =>
        createKeyRotationRouter({ verifiers, ...options } as KeyRotationRouterOptions),
      ).to.throw(TypeError, message)
    })
  }

  it('one secret without a binding keeps its meaning (every verifier behind the router)', () => {
    expect(() => createKeyRotationRouter({ verifiers, webhookSecret: SECRET_A })).not.to.throw()
  })
})
