import { expect } from 'chai'
import {
  MultiIssuerVerifier,
  PartnerTokenError,
  PartnerTokenVerifier,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

describe('MultiIssuerVerifier', () => {
  let acme: MockAgentPress
  let globex: MockAgentPress
  let other: MockAgentPress

  before(async () => {
    acme = await createMockAgentPress({ orgSlug: 'acme' })
    globex = await createMockAgentPress({ orgSlug: 'globex' })
    other = await createMockAgentPress({ orgSlug: 'other' })
  })
  after(() => Promise.all([acme.close(), globex.close(), other.close()]))

  const reasonOf = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (e instanceof PartnerTokenError ? e.reason : 'other'),
    )

  it('routes each token to its issuer; an unlisted issuer costs no fetch anywhere', async () => {
    const verifier = new MultiIssuerVerifier([
      new PartnerTokenVerifier(acme.partnerMcp),
      new PartnerTokenVerifier(globex.partnerMcp),
    ])
    expect((await verifier.verifyToken(acme.signToken({ sub: 'a' }))).sub).to.equal('a')
    expect((await verifier.verifyToken(globex.signToken({ sub: 'g' }))).sub).to.equal('g')
    expect(await reasonOf(verifier.verifyToken(other.signToken()))).to.equal('issuer_mismatch')
    expect(await reasonOf(verifier.verifyToken(acme.signToken({ iss: undefined })))).to.equal(
      'missing_claim',
    )
    expect(await reasonOf(verifier.verifyToken('nope'))).to.equal('malformed')
    // A globex token claiming to be from acme is checked against acme's keys only.
    expect(await reasonOf(verifier.verifyToken(globex.signToken({ iss: acme.issuer })))).to.equal(
      'kid_missing_or_unknown',
    )
    expect([acme.jwksRequestCount, globex.jwksRequestCount, other.jwksRequestCount]).to.deep.equal([
      2, 1, 0,
    ])
  })

  it('refuses verifiers without an issuer, or two with the same one', () => {
    expect(() => new MultiIssuerVerifier([{ verifyToken: async () => ({}) as never }])).to.throw(
      TypeError,
      'verifier 0 has no issuer: each of several verifiers needs a distinct issuer',
    )
    const v = new PartnerTokenVerifier(acme.partnerMcp)
    expect(() => new MultiIssuerVerifier([v, new PartnerTokenVerifier(acme.partnerMcp)])).to.throw(
      TypeError,
      `two verifiers trust the same issuer ${JSON.stringify(acme.issuer)}`,
    )
  })
})
