// The reason table (core/reasons.ts) and the error classes built from it (core/errors.ts).
import { expect } from 'chai'
import {
  AUTH_ERRORS,
  AgentPressHttpError,
  JwksUnavailableError,
  PartnerTokenError,
} from 'passport-agentpress-partner'
// Internals, from the built package (the same module instances as the package name).
import { challengeFor } from '../../../dist/core/refusals/challenge.js'
import { PARTNER_TOKEN_ERROR_REASONS } from '../../../dist/core/refusals/reasons.js'
import { SPEC_DESCRIPTIONS } from '../../support/spec.js'

describe('error model', () => {
  it('has exactly the eleven token reasons of §4 with their fixed descriptions', () => {
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
