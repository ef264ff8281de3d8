// §2 only makes `exp - iat` above maxTokenLifetimeSec `missing_claim`; `exp <= now - tolerance`
// is `expired` and `iat > now + tolerance` is `not_yet_valid`. lib/core/claims.ts once also refused a
// lifetime <= 0 (exp == iat, or exp slightly before iat inside the tolerance) as `missing_claim`,
// a rule the wire contract does not contain; it is gone.
import { expect } from 'chai'
import { PartnerTokenError, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

describe('regression: claims lifetime rule vs §2', () => {
  let mock: MockAgentPress
  const now = Date.UTC(2026, 10, 21, 12, 0, 0)
  const clock = () => now
  const sec = Math.floor(now / 1000)
  before(async () => {
    mock = await createMockAgentPress({ clock })
  })
  after(() => mock.close())

  async function reason(token: string, verifier: PartnerTokenVerifier): Promise<string> {
    try {
      await verifier.verifyToken(token)
      return 'ok'
    } catch (error) {
      return error instanceof PartnerTokenError ? error.reason : String(error)
    }
  }

  it('exp == iat == now (not expired, not in the future, lifetime 0 <= 600) is accepted', async () => {
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    expect(await reason(mock.signToken({ iat: sec, exp: sec }), verifier)).to.equal('ok')
  })

  it('exp = now + 10, iat = now + 20 (both within tolerance) is accepted', async () => {
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
    expect(await reason(mock.signToken({ iat: sec + 20, exp: sec + 10 }), verifier)).to.equal('ok')
  })
})
