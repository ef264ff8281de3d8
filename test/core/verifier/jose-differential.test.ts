// jose as an oracle: whatever this package accepts, jose 6's jwtVerify (configured with the same
// issuer, audience, algorithm and required claims) accepts too — our rules only ever add refusals.
import { expect } from 'chai'
import fc from 'fast-check'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { PartnerTokenVerifier } from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

describe('differential against jose', () => {
  let mock: MockAgentPress
  let verifier: PartnerTokenVerifier

  before(async () => {
    mock = await createMockAgentPress()
    verifier = new PartnerTokenVerifier(mock.partnerMcp)
  })
  after(() => mock.close())

  async function joseAccepts(token: string): Promise<boolean> {
    const jwks = createLocalJWKSet({ keys: mock.keys.map((k) => ({ ...k.publicJwk })) })
    try {
      await jwtVerify(token, jwks, {
        algorithms: ['EdDSA'],
        issuer: mock.issuer,
        audience: mock.audience,
        requiredClaims: ['iss', 'aud', 'sub', 'jti', 'iat', 'exp'],
        clockTolerance: 30,
      })
      return true
    } catch {
      return false
    }
  }

  async function oursAccepts(token: string): Promise<boolean> {
    return verifier.verifyToken(token).then(
      () => true,
      () => false,
    )
  }

  it('never accepts a token jose refuses (claims and headers drawn at random)', async () => {
    const now = Math.floor(Date.now() / 1000)
    const value = fc.oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 8 }),
      fc.integer({ min: now - 1000, max: now + 1000 }),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
    )
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            iss: fc.oneof(fc.constant(mock.issuer), value),
            aud: fc.oneof(fc.constant(mock.audience), fc.constant([mock.audience, 'x']), value),
            sub: value,
            jti: value,
            scope: fc.oneof(fc.constant('mcp:read'), value),
            iat: fc.oneof(fc.constant(now), value),
            exp: fc.oneof(fc.constant(now + 60), value),
            nbf: value,
          },
          { requiredKeys: [] },
        ),
        fc.record({ typ: fc.oneof(fc.constant('JWT'), value), cty: value }, { requiredKeys: [] }),
        async (claims, header) => {
          const token = mock.signToken(claims, header)
          const ours = await oursAccepts(token)
          if (ours) {
            accepted++
            expect(await joseAccepts(token), token).to.equal(true)
          }
        },
      ),
      { seed: 20261121, numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    )
    // The property must have exercised acceptance, or it proves nothing.
    expect(await oursAccepts(mock.signToken())).to.equal(true)
    expect(await joseAccepts(mock.signToken())).to.equal(true)
    expect(accepted).to.be.greaterThan(0)
  })
})
