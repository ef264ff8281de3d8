// What the router hands a fleet (`RotationFleet.join`): a member whose `apply` processes a relayed
// event locally. It never rejects — a fleet of your own that calls it without a catch cannot take
// the process down — and says whether the event was applied in full.
import { expect } from 'chai'
import {
  AgentPressPartnerStrategy,
  createKeyRotationRouter,
  PartnerTokenError,
  type RotationFleet,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

type Member = Parameters<RotationFleet['join']>[0]

describe('the fleet member the key-rotation router hands a fleet', () => {
  let mock: MockAgentPress
  let strategy: AgentPressPartnerStrategy
  let member: Member

  beforeEach(async () => {
    mock = await createMockAgentPress()
    strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, (claims, done) =>
      done(null, { id: claims.sub }),
    )
    const fleet: RotationFleet = {
      join(joined) {
        member = joined
      },
      wasProcessed: async () => false,
      publish: async () => {},
    }
    createKeyRotationRouter({ webhookSecret: mock.webhookSecret, strategy, fleet })
    await strategy.verifiers[0]!.verifyToken(mock.signToken())
  })
  afterEach(() => mock.close())

  it('a relayed rotation refreshed here: { applied: true }, the new key is accepted', async () => {
    const event = mock.rotateKeys()
    const before = mock.jwksRequestCount
    expect(await member.apply(event)).to.deep.equal({ applied: true })
    expect(mock.jwksRequestCount).to.equal(before + 1)
    const claims = await strategy.verifiers[0]!.verifyToken(mock.signToken({ sub: 'user-9' }))
    expect(claims).to.include({ sub: 'user-9', iss: mock.partnerMcp.issuer })
  })

  it('JWKS down: resolves { applied: false, reason: "jwks_unavailable" }, never rejects; the emergency revocation holds', async () => {
    const retired = mock.signToken()
    const event = mock.rotateKeys({ emergency: true })
    mock.setJwksMode('error')
    expect(await member.apply(event)).to.deep.equal({
      applied: false,
      reason: 'jwks_unavailable',
    })
    const refused = await strategy.verifiers[0]!.verifyToken(retired).catch((error) => error)
    expect(refused).to.be.instanceOf(PartnerTokenError)
    expect(refused.reason).to.equal('kid_missing_or_unknown')
  })
})
