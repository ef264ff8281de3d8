import { expect } from 'chai'
import { createPublicKey } from 'node:crypto'
import { newEd25519KeyPair } from '../../../lib/testing/ed25519-key.js'
import {
  JwksUnavailableError,
  PartnerTokenError,
  PartnerTokenVerifier,
  type PartnerTokenErrorReason,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { b64url, flipChar, hmacToken, parts, payloadOf, signWith } from '../../support/tokens.js'
import { startCountingServer } from '../../support/servers.js'
import {
  IDENTITY_POINT,
  reportRuntimeAdmits,
  smallOrderForgery,
} from '../../support/small-order.js'

type Outcome = PartnerTokenErrorReason | 'ok' | 'jwks_unavailable' | 'other'

async function outcome(verifier: PartnerTokenVerifier, token: string): Promise<Outcome> {
  try {
    await verifier.verifyToken(token)
    return 'ok'
  } catch (error) {
    if (error instanceof PartnerTokenError) return error.reason
    if (error instanceof JwksUnavailableError) return 'jwks_unavailable'
    return 'other'
  }
}

describe('PartnerTokenVerifier', () => {
  let mock: MockAgentPress
  let verifier: PartnerTokenVerifier
  let now: number
  const clock = () => now

  beforeEach(async () => {
    now = Date.UTC(2026, 10, 21, 12, 0, 0)
    mock = await createMockAgentPress({ clock })
    verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock })
  })
  afterEach(() => mock.close())

  const header = (extra: Record<string, unknown> = {}) => ({
    alg: 'EdDSA',
    typ: 'JWT',
    kid: mock.currentKid,
    ...extra,
  })
  const claims = (extra: Record<string, unknown> = {}) => payloadOf(mock.signToken(extra))
  const privateKey = () => mock.keys.at(-1)!.privateKey

  it('accepts a valid token and returns its claims', async () => {
    const token = mock.signToken({ sub: 'alice', scope: 'mcp:read' })
    const result = await verifier.verifyToken(token)
    expect(result).to.deep.equal(payloadOf(token))
    expect(result.sub).to.equal('alice')
    expect(mock.jwksRequestCount).to.equal(1)
  })

  describe('structure → malformed', () => {
    const cases: Array<[string, () => string]> = [
      ['two segments', () => parts(mock.signToken()).slice(0, 2).join('.')],
      ['four segments', () => `${mock.signToken()}.AAAA`],
      ['five segments', () => `${mock.signToken()}.AAAA.AAAA`],
      ['an empty header segment', () => `.${parts(mock.signToken()).slice(1).join('.')}`],
      [
        'an empty payload segment',
        () => {
          const [h, , s] = parts(mock.signToken())
          return `${h}..${s}`
        },
      ],
      ['an empty signature segment', () => `${parts(mock.signToken()).slice(0, 2).join('.')}.`],
      ['a padded signature', () => `${mock.signToken()}==`],
      [
        'a padded payload',
        () => {
          const [h, p, s] = parts(mock.signToken())
          return `${h}.${p}=.${s}`
        },
      ],
      [
        'whitespace inside',
        () => {
          const t = mock.signToken()
          return `${t.slice(0, 10)} ${t.slice(10)}`
        },
      ],
      ['a trailing newline', () => `${mock.signToken()}\n`],
      [
        'standard base64 characters',
        () => {
          const [h, p, s] = parts(mock.signToken())
          return `${h}.${p}.${s.slice(0, -2)}+/`
        },
      ],
      [
        'a non-canonical last signature character',
        () => {
          const [h, p, s] = parts(mock.signToken())
          const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
          return `${h}.${p}.${s.slice(0, -1)}${alphabet[alphabet.indexOf(s.at(-1)!) | 1]}`
        },
      ],
      [
        'JSON serialisation',
        () => JSON.stringify({ protected: 'x', payload: 'y', signature: 'z' }),
      ],
      ['a header that is an array', () => signWith(privateKey(), '[1]', claims())],
      ['a header that is a string', () => signWith(privateKey(), '"EdDSA"', claims())],
      ['a payload that is a number', () => signWith(privateKey(), header(), '42')],
      ['a payload that is null', () => signWith(privateKey(), header(), 'null')],
      ['a payload that is not JSON', () => signWith(privateKey(), header(), '{sub:1}')],
      [
        'a payload of invalid UTF-8',
        () => {
          const h = b64url(header())
          return `${h}.${Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64url')}.${parts(mock.signToken())[2]}`
        },
      ],
      [
        '8 KiB + 1 characters',
        () => {
          const t = mock.signToken({ pad: 'x'.repeat(6100) })
          return t + 'A'.repeat(Math.max(0, 8193 - t.length))
        },
      ],
      [
        'crit naming an extension',
        () => signWith(privateKey(), header({ crit: ['exp'], exp: 1 }), claims()),
      ],
      ['crit as an empty array', () => signWith(privateKey(), header({ crit: [] }), claims())],
      [
        'crit that is not an array',
        () => signWith(privateKey(), header({ crit: 'b64' }), claims()),
      ],
      [
        'crit with b64:false',
        () => signWith(privateKey(), header({ crit: ['b64'], b64: false }), claims()),
      ],
    ]
    for (const [name, make] of cases) {
      it(`refuses ${name}`, async () => {
        expect(await outcome(verifier, make())).to.equal('malformed')
        expect(mock.jwksRequestCount, 'no JWKS fetch before the structure is valid').to.equal(0)
      })
    }

    it('refuses non-strings and the empty string', async () => {
      for (const value of [undefined, null, 42, {}, ''] as unknown as string[]) {
        expect(await outcome(verifier, value)).to.equal('malformed')
      }
    })

    it('accepts a token of exactly 8192 characters', async () => {
      const base = mock.signToken({ pad: '' }).length
      // Each pad character adds 4/3 of a base64url character; search the exact size.
      let pad = Math.floor(((8192 - base) * 3) / 4)
      let token = mock.signToken({ pad: 'x'.repeat(pad) })
      while (token.length < 8192) token = mock.signToken({ pad: 'x'.repeat(++pad) })
      while (token.length > 8192) token = mock.signToken({ pad: 'x'.repeat(--pad) })
      if (token.length === 8192) expect(await outcome(verifier, token)).to.equal('ok')
      expect(await outcome(verifier, mock.signToken({ pad: 'x'.repeat(pad + 3) }))).to.equal(
        'malformed',
      )
    })
  })

  describe('alg → alg_not_allowed, before any key lookup', () => {
    const rawX = () => Buffer.from(mock.keys.at(-1)!.publicJwk.x, 'base64url')
    const spki = () =>
      createPublicKey({ key: mock.keys.at(-1)!.publicJwk, format: 'jwk' }).export({
        type: 'spki',
        format: 'pem',
      })
    const cases: Array<[string, () => string]> = [
      ['none with a signature', () => signWith(privateKey(), header({ alg: 'none' }), claims())],
      ['None', () => signWith(privateKey(), header({ alg: 'None' }), claims())],
      [
        'HS256 keyed with the raw public key',
        () => hmacToken(header({ alg: 'HS256' }), claims(), rawX()),
      ],
      [
        'HS256 keyed with the SPKI PEM',
        () => hmacToken(header({ alg: 'HS256' }), claims(), spki()),
      ],
      [
        'HS256 keyed with the JWK JSON',
        () =>
          hmacToken(
            header({ alg: 'HS256' }),
            claims(),
            JSON.stringify(mock.keys.at(-1)!.publicJwk),
          ),
      ],
      ['HS384', () => signWith(privateKey(), header({ alg: 'HS384' }), claims())],
      ['HS512', () => signWith(privateKey(), header({ alg: 'HS512' }), claims())],
      ['RS256', () => signWith(privateKey(), header({ alg: 'RS256' }), claims())],
      ['ES256', () => signWith(privateKey(), header({ alg: 'ES256' }), claims())],
      ['PS256', () => signWith(privateKey(), header({ alg: 'PS256' }), claims())],
      [
        'ed25519 (RFC 9864’s name in the wrong case)',
        () => signWith(privateKey(), header({ alg: 'ed25519' }), claims()),
      ],
      [
        '"EdDSA " (a trailing space)',
        () => signWith(privateKey(), header({ alg: 'EdDSA ' }), claims()),
      ],
      ['eddsa (wrong case)', () => signWith(privateKey(), header({ alg: 'eddsa' }), claims())],
      ['a missing alg', () => signWith(privateKey(), header({ alg: undefined }), claims())],
      ['an empty alg', () => signWith(privateKey(), header({ alg: '' }), claims())],
      ['a numeric alg', () => signWith(privateKey(), header({ alg: 1 }), claims())],
      ['an array alg', () => signWith(privateKey(), header({ alg: ['EdDSA'] }), claims())],
      [
        'duplicate members, last one none',
        () =>
          signWith(
            privateKey(),
            `{"alg":"EdDSA","kid":"${mock.currentKid}","alg":"none"}`,
            claims(),
          ),
      ],
    ]
    for (const [name, make] of cases) {
      it(`refuses ${name}`, async () => {
        expect(await outcome(verifier, make())).to.equal('alg_not_allowed')
        expect(mock.jwksRequestCount).to.equal(0)
      })
    }

    it('refuses alg none with an empty signature as malformed (structure is checked first)', async () => {
      const token = `${b64url(header({ alg: 'none' }))}.${b64url(claims())}.`
      expect(await outcome(verifier, token)).to.equal('malformed')
      expect(mock.jwksRequestCount).to.equal(0)
    })

    it('resolves duplicate members as JSON.parse does: the last one wins (pinned)', async () => {
      const token = signWith(
        privateKey(),
        `{"alg":"none","kid":"${mock.currentKid}","alg":"EdDSA"}`,
        claims(),
      )
      expect(await outcome(verifier, token)).to.equal('ok')
    })
  })

  describe('kid → kid_missing_or_unknown', () => {
    for (const [name, kid] of [
      ['missing', undefined],
      ['empty', ''],
      ['a number', 7],
      ['an object', { id: 'x' }],
      ['null', null],
    ] as Array<[string, unknown]>) {
      it(`refuses a kid that is ${name}, without fetching`, async () => {
        const token = signWith(privateKey(), header({ kid }), claims())
        expect(await outcome(verifier, token)).to.equal('kid_missing_or_unknown')
        expect(mock.jwksRequestCount).to.equal(0)
      })
    }

    for (const kid of [
      'unknown-kid',
      '../../etc/passwd',
      '__proto__',
      'constructor',
      'toString',
      'a\r\nb',
    ]) {
      it(`refuses the unknown kid ${JSON.stringify(kid)}`, async () => {
        await verifier.verifyToken(mock.signToken())
        expect(await outcome(verifier, signWith(privateKey(), header({ kid }), claims()))).to.equal(
          'kid_missing_or_unknown',
        )
      })
    }

    it('refuses a kid that two published keys share (ambiguous)', async () => {
      const other = newEd25519KeyPair()
      const x = (other.publicKey.export({ format: 'jwk' }) as { x: string }).x
      mock.setJwksDocument({
        keys: [mock.keys[0]!.publicJwk, { kty: 'OKP', crv: 'Ed25519', x, kid: mock.currentKid }],
      })
      expect(await outcome(verifier, mock.signToken())).to.equal('kid_missing_or_unknown')
    })
  })

  describe('issuer pre-filter → issuer_mismatch without any fetch', () => {
    for (const [name, iss] of [
      ['a trailing slash', () => `${mock.issuer}/`],
      ['a different case', () => mock.issuer.toUpperCase()],
      ['another org', () => mock.issuer.replace('mock-org', 'other-org')],
      ['the staging host', () => 'https://stg-api.agent.press/orgs/mock-org'],
    ] as Array<[string, () => string]>) {
      it(`refuses iss with ${name}`, async () => {
        expect(await outcome(verifier, mock.signToken({ iss: iss() }))).to.equal('issuer_mismatch')
        expect(mock.jwksRequestCount).to.equal(0)
      })
    }

    for (const [name, iss] of [
      ['missing', undefined],
      ['empty', ''],
      ['a number', 1],
      ['an array', ['x']],
    ] as Array<[string, unknown]>) {
      it(`refuses an iss that is ${name} as missing_claim, without fetching`, async () => {
        expect(await outcome(verifier, mock.signToken({ iss }))).to.equal('missing_claim')
        expect(mock.jwksRequestCount).to.equal(0)
      })
    }
  })

  describe('signature → signature_invalid (checked before the claims)', () => {
    it('refuses a token signed by another key under the right kid', async () => {
      const other = newEd25519KeyPair().privateKey
      expect(await outcome(verifier, signWith(other, header(), claims()))).to.equal(
        'signature_invalid',
      )
    })

    for (const segment of [0, 1, 2] as const) {
      it(`refuses a one-bit flip in segment ${segment}`, async () => {
        const p = parts(mock.signToken())
        // Flip inside the segment, away from the JSON's structural characters of the header.
        p[segment] = flipChar(p[segment], segment === 2 ? 5 : p[segment].length - 6)
        const result = await outcome(verifier, p.join('.'))
        // A flip in the header or payload may also break the JSON or change the kid; never 'ok'.
        if (segment === 2) expect(result).to.equal('signature_invalid')
        else
          expect([
            'signature_invalid',
            'malformed',
            'kid_missing_or_unknown',
            'missing_claim',
          ]).to.include(result)
      })
    }

    it('refuses truncated, extended and all-zero signatures', async () => {
      const [h, p, s] = parts(mock.signToken())
      for (const sig of [s.slice(0, 84), `${s}AA`, 'A'.repeat(86)]) {
        expect(await outcome(verifier, `${h}.${p}.${sig}`)).to.equal('signature_invalid')
      }
    })

    it('refuses S + L (signature malleability)', async () => {
      const [h, p, s] = parts(mock.signToken())
      const sig = Buffer.from(s, 'base64url')
      const L = (1n << 252n) + 27742317777372353535851937790883648493n
      let S = 0n
      for (let i = 63; i >= 32; i--) S = (S << 8n) | BigInt(sig[i]!)
      let big = S + L
      for (let i = 32; i < 64; i++) {
        sig[i] = Number(big & 0xffn)
        big >>= 8n
      }
      expect(await outcome(verifier, `${h}.${p}.${sig.toString('base64url')}`)).to.equal(
        'signature_invalid',
      )
    })

    it('reports the signature, not the expiry, for a forged expired token', async () => {
      const other = newEd25519KeyPair().privateKey
      const forged = signWith(
        other,
        header(),
        claims({ iat: now / 1000 - 3600, exp: now / 1000 - 3000 }),
      )
      expect(await outcome(verifier, forged)).to.equal('signature_invalid')
    })
  })

  describe('claims', () => {
    const required = ['aud', 'ext_provider', 'sub', 'jti', 'scope', 'iat', 'exp']
    for (const claim of required) {
      for (const [label, value] of [
        ['missing', undefined],
        ['empty', ''],
        ['null', null],
        ['a boolean', true],
        ['an object', {}],
        ['a number', 5],
      ] as Array<[string, unknown]>) {
        const numeric = claim === 'iat' || claim === 'exp'
        if (numeric && label === 'a number') continue
        if (!numeric && label === 'a number' && claim === 'aud') continue
        it(`refuses ${claim} ${label} as missing_claim`, async () => {
          expect(await outcome(verifier, mock.signToken({ [claim]: value }))).to.equal(
            'missing_claim',
          )
        })
      }
    }

    for (const [label, raw] of [
      ['exp 1e400 (Infinity)', '"exp":1e400'],
      ['exp -1e400', '"exp":-1e400'],
      ['iat 1e400', '"iat":1e400'],
      ['nbf 1e400', '"nbf":1e400'],
      ['exp as a numeric string', '"exp":"9999999999"'],
      ['nbf null', '"nbf":null'],
      ['nbf as a string', '"nbf":"0"'],
    ] as Array<[string, string]>) {
      it(`refuses ${label} as missing_claim`, async () => {
        const name = raw.slice(1, raw.indexOf('"', 1))
        const base = claims({ [name]: undefined })
        const json = `${JSON.stringify(base).slice(0, -1)},${raw}}`
        expect(await outcome(verifier, signWith(privateKey(), header(), json))).to.equal(
          'missing_claim',
        )
      })
    }

    it('refuses aud arrays that are empty or have non-string members as missing_claim', async () => {
      expect(await outcome(verifier, mock.signToken({ aud: [] }))).to.equal('missing_claim')
      expect(await outcome(verifier, mock.signToken({ aud: [mock.audience, 1] }))).to.equal(
        'missing_claim',
      )
    })

    it('accepts aud as an array containing ours, refuses one without it', async () => {
      expect(
        await outcome(verifier, mock.signToken({ aud: ['https://other.example', mock.audience] })),
      ).to.equal('ok')
      expect(await outcome(verifier, mock.signToken({ aud: ['https://other.example'] }))).to.equal(
        'audience_mismatch',
      )
      expect(await outcome(verifier, mock.signToken({ aud: `${mock.audience}/` }))).to.equal(
        'audience_mismatch',
      )
    })

    it('refuses another ext_provider', async () => {
      expect(await outcome(verifier, mock.signToken({ ext_provider: 'someone-else' }))).to.equal(
        'ext_provider_mismatch',
      )
    })

    it('refuses scopes that are not space-separated scope tokens', async () => {
      for (const scope of [' mcp:read', 'mcp:read ', 'a  b', 'a\tb', 'a"b', 'a\\b', 'é']) {
        expect(await outcome(verifier, mock.signToken({ scope })), scope).to.equal('missing_claim')
      }
    })

    it('applies the clock tolerance on both sides (default 30 s)', async () => {
      const t = now / 1000
      // exp: refused when exp <= now - tolerance (§2)
      expect(await outcome(verifier, mock.signToken({ iat: t - 100, exp: t - 29 }))).to.equal('ok')
      expect(await outcome(verifier, mock.signToken({ iat: t - 100, exp: t - 30 }))).to.equal(
        'expired',
      )
      expect(await outcome(verifier, mock.signToken({ iat: t - 100, exp: t - 31 }))).to.equal(
        'expired',
      )
      // iat: refused when iat > now + tolerance: exactly 30 s ahead is in, 31 s is out
      expect(await outcome(verifier, mock.signToken({ iat: t + 30, exp: t + 90 }))).to.equal('ok')
      expect(await outcome(verifier, mock.signToken({ iat: t + 31, exp: t + 91 }))).to.equal(
        'not_yet_valid',
      )
      // nbf, when present, like iat
      expect(await outcome(verifier, mock.signToken({ nbf: t + 30 }))).to.equal('ok')
      expect(await outcome(verifier, mock.signToken({ nbf: t + 31 }))).to.equal('not_yet_valid')
    })

    it('accepts duration strings for clockTolerance', async () => {
      const t = now / 1000
      const strict = new PartnerTokenVerifier({ ...mock.partnerMcp, clock, clockTolerance: '1m' })
      expect(await outcome(strict, mock.signToken({ iat: t + 60, exp: t + 120 }))).to.equal('ok')
      expect(await outcome(strict, mock.signToken({ iat: t + 61, exp: t + 121 }))).to.equal(
        'not_yet_valid',
      )
      const none = new PartnerTokenVerifier({ ...mock.partnerMcp, clock, clockTolerance: 0 })
      expect(await outcome(none, mock.signToken({ iat: t - 60, exp: t }))).to.equal('expired')
      expect(await outcome(none, mock.signToken({ iat: t + 1, exp: t + 60 }))).to.equal(
        'not_yet_valid',
      )
    })

    it('refuses a lifetime above maxTokenLifetimeSec as missing_claim, and only that', async () => {
      const t = now / 1000
      expect(await outcome(verifier, mock.signToken({ iat: t, exp: t + 600 }))).to.equal('ok')
      expect(await outcome(verifier, mock.signToken({ iat: t, exp: t + 601 }))).to.equal(
        'missing_claim',
      )
      expect(await outcome(verifier, mock.signToken({ iat: t, exp: t + 1e9 }))).to.equal(
        'missing_claim',
      )
      // §2 sets no lower bound: exp == iat, or exp a little before iat, inside the tolerance.
      expect(await outcome(verifier, mock.signToken({ iat: t, exp: t }))).to.equal('ok')
      expect(await outcome(verifier, mock.signToken({ iat: t + 10, exp: t + 5 }))).to.equal('ok')
    })

    it('keeps extra claims and accepts float NumericDates', async () => {
      const t = now / 1000
      const result = await verifier.verifyToken(
        mock.signToken({ iat: t + 0.5, exp: t + 60.25, org: 'acme' }),
      )
      expect(result.org).to.equal('acme')
      expect(result.exp).to.equal(t + 60.25)
    })
  })

  describe('URL-bearing headers are ignored', () => {
    it('never fetches jku, x5u, jwk or x5c', async () => {
      const trap = await startCountingServer()
      try {
        const evil = newEd25519KeyPair()
        const evilJwk = { ...(evil.publicKey.export({ format: 'jwk' }) as object), kid: 'evil' }
        const good = mock.signToken(
          {},
          {
            jku: `${trap.url}/jwks.json`,
            x5u: `${trap.url}/cert.pem`,
            jwk: evilJwk,
            x5c: ['MIIB'],
          },
        )
        expect(await outcome(verifier, good)).to.equal('ok')
        // A token signed by the attacker's embedded key, under a kid only its jku would know.
        const forged = signWith(
          evil.privateKey,
          { alg: 'EdDSA', kid: 'evil', jku: `${trap.url}/jwks.json`, jwk: evilJwk },
          claims(),
        )
        expect(await outcome(verifier, forged)).to.equal('kid_missing_or_unknown')
        expect(trap.count).to.equal(0)
        expect(mock.jwksRequestCount).to.equal(2) // first fetch + one unknown-kid refetch, both to the configured URL
      } finally {
        await trap.close()
      }
    })
  })

  describe('small-order keys', () => {
    const x = IDENTITY_POINT.toString('base64url')
    const forgery = () =>
      smallOrderForgery(
        IDENTITY_POINT,
        () => `${b64url({ alg: 'EdDSA', kid: 'small' })}.${b64url(claims())}`,
        1,
      )

    it('refuses the identity-point forgery (R = identity, S = 0) on every runtime', async () => {
      mock.setJwksDocument({ keys: [{ kty: 'OKP', crv: 'Ed25519', x, kid: 'small' }] })
      expect(await outcome(verifier, forgery().token)).to.equal('kid_missing_or_unknown')
    })

    it('informational: the runtime’s crypto.verify alone accepts that forgery', function () {
      reportRuntimeAdmits(this, forgery().runtimeAdmits, 'the identity-point forgery')
      expect(forgery().runtimeAdmits).to.equal(true)
    })
  })

  it('stops accepting a revoked kid at once, whatever the JWKS says', async () => {
    const token = mock.signToken()
    expect(await outcome(verifier, token)).to.equal('ok')
    verifier.revokeKid(mock.currentKid)
    expect(await outcome(verifier, token)).to.equal('kid_missing_or_unknown')
    await verifier.refreshJwks()
    expect(await outcome(verifier, mock.signToken())).to.equal('kid_missing_or_unknown')
    expect(() => verifier.revokeKid('')).to.throw(
      TypeError,
      'revokeKid(kid): kid must be a non-empty string',
    )
  })
})
