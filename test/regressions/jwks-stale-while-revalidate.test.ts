// §3: "A cache past its max age whose refresh fails keeps serving its keys for a bounded stale
// window". A cache past its max age whose refresh *succeeds* must not keep accepting a key the
// issuer has withdrawn. An earlier lib/core/jwks.ts returned the stale key *before* the refresh had
// even run (stale-while-revalidate), so a withdrawn (e.g. emergency-rotated) key is still accepted
// while the JWKS endpoint is up and no longer lists it.
import { expect } from 'chai'
import { PartnerTokenError, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

describe('regression: JWKS past max age with a reachable issuer', () => {
  let mock: MockAgentPress
  let now: number
  const clock = () => now

  beforeEach(async () => {
    now = Date.UTC(2026, 10, 21, 12, 0, 0)
    mock = await createMockAgentPress({ clock })
  })
  afterEach(() => mock.close())

  it('does not accept a key withdrawn from the JWKS once the cache is past its max age', async () => {
    const verifier = new PartnerTokenVerifier({
      ...mock.partnerMcp,
      clock,
      jwksCacheMaxAgeMs: 60_000,
    })
    const oldKid = mock.currentKid
    await verifier.verifyToken(mock.signToken())

    // Emergency rotation at the issuer: the old key is no longer published (no webhook reached us).
    const oldToken = mock.signToken({}, { kid: oldKid })
    mock.rotateKeys({ emergency: true })
    expect(mock.keys.map((k) => k.kid)).not.to.include(oldKid)

    now += 61_000 // past max age; the JWKS endpoint is up and answers correctly
    let outcome: string
    try {
      await verifier.verifyToken(oldToken)
      outcome = 'accepted'
    } catch (error) {
      outcome = error instanceof PartnerTokenError ? error.reason : String(error)
    }
    // A refetch is due and succeeds: the withdrawn key must be refused.
    expect(outcome).to.equal('kid_missing_or_unknown')
  })
})
