import { expect } from 'chai'
import { PartnerTokenVerifier } from 'passport-agentpress-partner'

const base = {
  issuer: 'https://api.agent.press/orgs/acme-org',
  audience: 'https://mcp.example.com/mcp',
  expectedExtProvider: 'example',
}

describe('PartnerTokenVerifier options', () => {
  it('applies the documented defaults and freezes the result', () => {
    const verifier = new PartnerTokenVerifier(base)
    expect(verifier.options).to.include({
      issuer: base.issuer,
      audience: base.audience,
      expectedExtProvider: 'example',
      jwksUrl: 'https://api.agent.press/orgs/acme-org/.well-known/jwks.json',
      clockToleranceSec: 30,
      jwksCacheMaxAgeMs: 3_600_000,
      jwksCooldownMs: 5_000,
      jwksTimeoutMs: 5_000,
      jwksStaleMaxMs: 86_400_000,
      maxTokenLifetimeSec: 600,
    })
    expect(Object.isFrozen(verifier.options)).to.equal(true)
    expect(verifier.issuer).to.equal(base.issuer)
  })

  it('ed25519: node:crypto by default, libsodium when asked (sodium-native is a devDependency here)', () => {
    expect(new PartnerTokenVerifier(base).options.ed25519).to.equal('node:crypto')
    expect(new PartnerTokenVerifier({ ...base, ed25519: 'node:crypto' }).options.ed25519).to.equal(
      'node:crypto',
    )
    expect(new PartnerTokenVerifier({ ...base, ed25519: 'libsodium' }).options.ed25519).to.equal(
      'libsodium',
    )
    // The option is checked after every other: a bad issuer is reported first.
    expect(
      () => new PartnerTokenVerifier({ ...base, issuer: '', ed25519: 'nope' } as never),
    ).to.throw(TypeError, 'options.issuer must be a non-empty string')
  })

  it('is not affected by later mutation of the caller object', () => {
    const options = { ...base }
    const verifier = new PartnerTokenVerifier(options)
    options.issuer = 'https://evil.example'
    expect(verifier.issuer).to.equal(base.issuer)
  })

  it('parses clockTolerance numbers and duration strings', () => {
    const tol = (clockTolerance: number | string) =>
      new PartnerTokenVerifier({ ...base, clockTolerance }).options.clockToleranceSec
    expect(tol(0)).to.equal(0)
    expect(tol(45)).to.equal(45)
    expect(tol('30s')).to.equal(30)
    expect(tol('1m')).to.equal(60)
    expect(tol('2 minutes')).to.equal(120)
    expect(tol('5m')).to.equal(300)
    expect(tol('1.5s')).to.equal(1.5)
  })

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['a missing issuer', { issuer: undefined }, 'options.issuer must be a non-empty string'],
    ['an empty audience', { audience: '' }, 'options.audience must be a non-empty string'],
    [
      'a numeric ext provider',
      { expectedExtProvider: 1 },
      'options.expectedExtProvider must be a non-empty string',
    ],
    [
      'an issuer with spaces',
      { issuer: ' https://x.example' },
      'options.issuer must not have leading or trailing whitespace',
    ],
    [
      'an http jwksUrl',
      { jwksUrl: 'http://keys.example/jwks.json' },
      'options.jwksUrl must use https: (http: is allowed only for loopback hosts), got http:',
    ],
    [
      'a file jwksUrl',
      { jwksUrl: 'file:///etc/passwd' },
      'options.jwksUrl must use https: (http: is allowed only for loopback hosts), got file:',
    ],
    [
      'a relative jwksUrl',
      { jwksUrl: '/jwks.json' },
      'options.jwksUrl must be an absolute URL, got "/jwks.json"',
    ],
    [
      'a jwksUrl with credentials',
      { jwksUrl: 'https://u:p@keys.example/jwks.json' },
      'options.jwksUrl must not contain credentials',
    ],
    [
      // One URL policy (`secureUrl`): an empty fragment is refused too, as for the PRM URLs.
      'a jwksUrl with an empty fragment',
      { jwksUrl: 'https://keys.example/jwks.json#' },
      'options.jwksUrl must not contain a fragment',
    ],
    [
      'a non-URL issuer without jwksUrl',
      { issuer: 'acme' },
      'options.issuer must be an absolute URL, got "acme"',
    ],
    [
      'NaN tolerance',
      { clockTolerance: NaN },
      'options.clockTolerance must be a finite number of seconds >= 0, got NaN',
    ],
    [
      'negative tolerance',
      { clockTolerance: -1 },
      'options.clockTolerance must be a finite number of seconds >= 0, got -1',
    ],
    [
      'Infinity tolerance',
      { clockTolerance: Infinity },
      'options.clockTolerance must be a finite number of seconds >= 0, got Infinity',
    ],
    [
      'a bad duration',
      { clockTolerance: '30 parsecs' },
      'options.clockTolerance must be a number of seconds or a duration such as "30s" or "1m", got "30 parsecs"',
    ],
    [
      'a boolean tolerance',
      { clockTolerance: true },
      'options.clockTolerance must be a number of seconds or a duration string, got boolean',
    ],
    [
      'a cooldown below 1 s',
      { jwksCooldownMs: 999 },
      'options.jwksCooldownMs must be >= 1000, got 999',
    ],
    [
      'a NaN max age',
      { jwksCacheMaxAgeMs: NaN },
      'options.jwksCacheMaxAgeMs must be a finite integer, got NaN',
    ],
    [
      'an Infinity timeout',
      { jwksTimeoutMs: Infinity },
      'options.jwksTimeoutMs must be a finite integer, got Infinity',
    ],
    ['a zero timeout', { jwksTimeoutMs: 0 }, 'options.jwksTimeoutMs must be >= 1, got 0'],
    [
      'a negative stale window',
      { jwksStaleMaxMs: -1 },
      'options.jwksStaleMaxMs must be >= 0, got -1',
    ],
    [
      'a string max lifetime',
      { maxTokenLifetimeSec: '600' },
      'options.maxTokenLifetimeSec must be a finite number > 0, got 600',
    ],
    [
      'a zero max lifetime',
      { maxTokenLifetimeSec: 0 },
      'options.maxTokenLifetimeSec must be a finite number > 0, got 0',
    ],
    ['a non-function hook', { onJwksError: 'log' }, 'options.onJwksError must be a function'],
    ['an unknown option', { audiences: ['x'] }, 'Unknown PartnerTokenVerifier option: audiences'],
    [
      'an unknown Ed25519 backend',
      { ed25519: 'sodium' },
      'options.ed25519 must be "node:crypto" or "libsodium", got "sodium"',
    ],
    [
      'a backend named in the wrong case',
      { ed25519: 'LibSodium' },
      'options.ed25519 must be "node:crypto" or "libsodium", got "LibSodium"',
    ],
    [
      'a non-string backend',
      { ed25519: true },
      'options.ed25519 must be "node:crypto" or "libsodium", got true',
    ],
  ]
  for (const [label, override, message] of bad) {
    it(`throws a precise TypeError for ${label}`, () => {
      expect(() => new PartnerTokenVerifier({ ...base, ...override } as never)).to.throw(
        TypeError,
        message,
      )
    })
  }

  it('throws for a missing options object', () => {
    expect(() => new PartnerTokenVerifier(undefined as never)).to.throw(
      TypeError,
      'PartnerTokenVerifier options must be an object',
    )
  })

  it('allows http only for loopback JWKS hosts', () => {
    for (const host of ['127.0.0.1:8080', 'localhost', '[::1]:9000', '127.1.2.3']) {
      expect(
        new PartnerTokenVerifier({ ...base, jwksUrl: `http://${host}/jwks.json` }).jwksUrl,
      ).to.match(/^http:/)
    }
  })
})
