import { expect } from 'chai'
import {
  AUTH_ERRORS,
  AgentPressHttpError,
  JwksUnavailableError,
  PartnerTokenError,
  agentPressIssuer,
  buildChallenge,
} from 'passport-agentpress-partner'
// Internals, from the built package (the same module instances as the package name).
import { challengeFor } from '../../dist/core/challenge.js'
import { PARTNER_TOKEN_ERROR_REASONS } from '../../dist/core/reasons.js'
import { SPEC_DESCRIPTIONS } from '../support/spec.js'

describe('buildChallenge', () => {
  it('emits the parameters in order', () => {
    expect(buildChallenge()).to.equal('Bearer')
    expect(
      buildChallenge({
        realm: 'mcp',
        error: 'insufficient_scope',
        errorDescription: 'Insufficient scope',
        scope: ['mcp:read', 'mcp:write'],
        resourceMetadata: 'https://mcp.example.com/.well-known/oauth-protected-resource',
      }),
    ).to.equal(
      'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:read mcp:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"',
    )
  })

  it('drops every character RFC 6750 does not allow in a quoted value', () => {
    const nasty = 'a"b\\c\r\nd\u0000e\u00e9f\u2028g\th'
    const header = buildChallenge({
      realm: nasty,
      error: nasty,
      errorDescription: nasty,
      scope: nasty,
    })
    expect(header).to.equal(
      'Bearer realm="abcdefgh", error="abcdefgh", error_description="abcdefgh", scope="abcdefgh"',
    )
    expect(header).to.match(/^[\x20-\x7e]+$/)
  })
})

describe('error model', () => {
  it('has exactly the eleven token reasons of SPEC §4 with their fixed descriptions', () => {
    expect(PARTNER_TOKEN_ERROR_REASONS).to.deep.equal([
      'malformed',
      'alg_not_allowed',
      'kid_missing_or_unknown',
      'signature_invalid',
      'issuer_mismatch',
      'audience_mismatch',
      'expired',
      'not_yet_valid',
      'missing_claim',
      'ext_provider_mismatch',
      'token_replayed',
    ])
    const descriptions = Object.fromEntries(
      PARTNER_TOKEN_ERROR_REASONS.map((r) => [r, AUTH_ERRORS[r].description]),
    )
    expect(descriptions).to.deep.equal(SPEC_DESCRIPTIONS)
    for (const reason of PARTNER_TOKEN_ERROR_REASONS) {
      expect(AUTH_ERRORS[reason]).to.include({ status: 401, error: 'invalid_token' })
    }
  })

  it('PartnerTokenError carries status, headers, a fixed message, a one-line stack and the cause', () => {
    const cause = new Error('internal detail kid=abc')
    const error = new PartnerTokenError('expired', { cause })
    expect(error).to.be.instanceOf(Error)
    expect(error).to.include({
      name: 'PartnerTokenError',
      reason: 'expired',
      status: 401,
      statusCode: 401,
      expose: true,
    })
    expect(error.message).to.equal('Token expired')
    expect(error.stack).to.equal('PartnerTokenError: Token expired')
    expect(error.cause).to.equal(cause)
    expect(error.headers).to.deep.equal({
      'WWW-Authenticate': 'Bearer error="invalid_token", error_description="Token expired"',
    })
  })

  it('renders the HTTP rows with realm and resource_metadata', () => {
    const context = {
      realm: 'mcp',
      resourceMetadataUrl: 'https://m.example/.well-known/oauth-protected-resource',
    }
    expect(challengeFor('no_credentials', context)).to.equal(
      'Bearer realm="mcp", resource_metadata="https://m.example/.well-known/oauth-protected-resource"',
    )
    expect(
      new AgentPressHttpError('invalid_request', context).headers['WWW-Authenticate'],
    ).to.equal(
      'Bearer realm="mcp", error="invalid_request", error_description="Malformed authorization header", resource_metadata="https://m.example/.well-known/oauth-protected-resource"',
    )
    expect(new AgentPressHttpError('user_not_provisioned').headers).to.deep.equal({
      'WWW-Authenticate':
        'Bearer error="user_not_provisioned", error_description="User not provisioned"',
    })
    expect(
      new AgentPressHttpError('insufficient_scope', { scope: ['a', 'b'] }).headers,
    ).to.deep.equal({
      'WWW-Authenticate':
        'Bearer error="insufficient_scope", error_description="Insufficient scope", scope="a b"',
    })
    const outage = new JwksUnavailableError()
    expect(outage).to.include({ status: 503, reason: 'jwks_unavailable' })
    expect(outage.headers).to.deep.equal({ 'Retry-After': '5' })
  })
})

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
