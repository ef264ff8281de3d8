import { expect } from 'chai'
import { agentPressIssuer } from 'passport-agentpress-partner'

describe('agentPressIssuer', () => {
  it('builds production (default) and staging issuers', () => {
    expect(agentPressIssuer({ orgSlug: 'acme-org' })).to.deep.equal({
      issuer: 'https://api.agent.press/orgs/acme-org',
      jwksUrl: 'https://api.agent.press/orgs/acme-org/.well-known/jwks.json',
    })
    expect(agentPressIssuer({ orgSlug: 'acme-org', environment: 'staging' })).to.deep.equal({
      issuer: 'https://stg-api.agent.press/orgs/acme-org',
      jwksUrl: 'https://stg-api.agent.press/orgs/acme-org/.well-known/jwks.json',
    })
  })

  it('refuses slugs that are not a path segment and unknown environments', () => {
    for (const orgSlug of ['', 'Acme', '../x', 'a/b', 'a b', '-a', 'a?x']) {
      expect(() => agentPressIssuer({ orgSlug }), orgSlug).to.throw(
        TypeError,
        'agentPressIssuer: orgSlug must be lower-case letters, digits and hyphens',
      )
    }
    for (const environment of ['prod', 'constructor', '__proto__']) {
      expect(() => agentPressIssuer({ orgSlug: 'a', environment: environment as never })).to.throw(
        TypeError,
        'agentPressIssuer: environment must be "production" or "staging"',
      )
    }
  })
})
