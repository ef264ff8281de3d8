// RFC 9864 through the test kit (§2, §3): the mock AgentPress publishes keys labelled `Ed25519`
// (or `EdDSA`, the default) and signs with either header value; our verifier accepts every
// combination over the mock's real loopback JWKS, and still refuses any other algorithm string.
import { expect } from 'chai'
import { PartnerTokenError, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { createMockAgentPress } from 'passport-agentpress-partner/testing'

const reasonOf = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: unknown) => (e instanceof PartnerTokenError ? e.reason : String(e)),
  )

describe('mock AgentPress: RFC 9864 key labels and header values', () => {
  for (const keyAlg of ['EdDSA', 'Ed25519'] as const) {
    for (const tokenAlg of ['EdDSA', 'Ed25519'] as const) {
      it(`keys labelled ${keyAlg}, tokens signed with alg ${tokenAlg} → accepted`, async () => {
        const mock = await createMockAgentPress({ keyAlg, tokenAlg })
        try {
          const jwks = (await (await fetch(mock.jwksUrl)).json()) as {
            keys: Array<{ alg: string }>
          }
          expect(jwks.keys.map((k) => k.alg)).to.deep.equal([keyAlg])
          const verifier = new PartnerTokenVerifier(mock.partnerMcp)
          const token = mock.signToken()
          const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())
          expect(header.alg).to.equal(tokenAlg)
          expect(await reasonOf(verifier.verifyToken(token))).to.equal('accepted')
          // The other header value, per token, is accepted too; any other string is not.
          const other = tokenAlg === 'EdDSA' ? 'Ed25519' : 'EdDSA'
          expect(await reasonOf(verifier.verifyToken(mock.signToken({}, { alg: other })))).to.equal(
            'accepted',
          )
          for (const alg of ['ed25519', 'EdDSA ', 'Ed448', 'ES256']) {
            expect(await reasonOf(verifier.verifyToken(mock.signToken({}, { alg }))), alg).to.equal(
              'alg_not_allowed',
            )
          }
          // A rotation keeps the label.
          mock.rotateKeys()
          const rotated = (await (await fetch(mock.jwksUrl)).json()) as {
            keys: Array<{ alg: string }>
          }
          expect(rotated.keys.map((k) => k.alg)).to.deep.equal([keyAlg, keyAlg])
        } finally {
          await mock.close()
        }
      })
    }
  }

  it('refuses another label with an exact TypeError', async () => {
    for (const [options, message] of [
      [
        { keyAlg: 'ed25519' },
        "options.keyAlg must be 'EdDSA' or 'Ed25519' (RFC 9864), got ed25519",
      ],
      [
        { tokenAlg: 'ES256' },
        "options.tokenAlg must be 'EdDSA' or 'Ed25519' (RFC 9864), got ES256",
      ],
    ] as const) {
      const err = await createMockAgentPress(options as never).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).to.be.instanceOf(TypeError).with.property('message', message)
    }
  })
})
