import { expect } from 'chai'
import { buildChallenge } from '../../../dist/core/refusals/challenge.js'

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
