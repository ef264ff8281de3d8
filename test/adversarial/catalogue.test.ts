// The adversarial catalogue (ATTACKS.md, RFC 8725, SPEC §2–§5) as tables, each row sent over a real
// socket to a real app: token attacks through plain passport.authenticate() on Express 5, Express 4
// and Connect; JWKS attacks through a loopback JWKS the test controls; webhook attacks through the
// key-rotation router. Every row asserts the exact status, the exact WWW-Authenticate line(s) and
// the exact body, and that nothing sent (token, segment, kid) comes back.
import { expect } from 'chai'
import express5 from 'express'
import { createPublicKey, generateKeyPairSync, sign as edSign, type KeyObject } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gzipSync, deflateSync, brotliCompressSync } from 'node:zlib'
import {
  AgentPressPartnerStrategy,
  createKeyRotationRouter,
  KEY_ROTATION_ERRORS,
  type PartnerTokenClaims,
} from 'passport-agentpress-partner'
import {
  computeWebhookSignature,
  createMockAgentPress,
  signWebhook,
  type MockAgentPress,
} from 'passport-agentpress-partner/testing'
import { createRequire } from 'node:module'
import { buildApp, finalhandlerPage, newPassport, STACKS, type Stack } from '../support/stacks.js'
import { startCountingServer, type CountingServer } from '../support/servers.js'
import { reportRuntimeAdmits, smallOrderForgery } from '../support/small-order.js'
import {
  enc,
  flipBit,
  flipInSegment,
  hmacRaw,
  sPlusL,
  signRaw,
  signatureBytes,
  split,
  tokenOfLength,
  withSignature,
} from '../support/tokens.js'
import {
  crashWatch,
  listen,
  rawRequest,
  send,
  sleep,
  type Listening,
  type WireResponse,
} from '../support/wire.js'
import { SPEC_DESCRIPTIONS } from '../support/spec.js'

const express4 = createRequire(import.meta.url)('express4') as typeof express5

const REALM = 'mcp'
const PRM = 'https://mcp.example.com/.well-known/oauth-protected-resource'
const NOW_MS = Date.UTC(2026, 10, 21, 12, 0, 0)
const NOW = NOW_MS / 1000
const clock = () => NOW_MS

const DESCRIPTION = SPEC_DESCRIPTIONS
type TokenReason = keyof typeof DESCRIPTION
type Expected =
  TokenReason | 'no_credentials' | 'invalid_request' | 'jwks_unavailable' | { user: string }

const challengeOf = (params: string) =>
  `Bearer realm="${REALM}"${params ? `, ${params}` : ''}, resource_metadata="${PRM}"`

/** Status, WWW-Authenticate lines, Retry-After and body that `expected` must produce. */
function wireOf(expected: Expected): {
  status: number
  challenges: string[]
  retryAfter?: string
  body: string
} {
  if (typeof expected === 'object') {
    return { status: 200, challenges: [], body: JSON.stringify({ user: { sub: expected.user } }) }
  }
  switch (expected) {
    case 'no_credentials':
      return { status: 401, challenges: [challengeOf('')], body: 'Unauthorized' }
    case 'invalid_request':
      return {
        status: 400,
        challenges: [
          challengeOf(
            'error="invalid_request", error_description="Malformed authorization header"',
          ),
        ],
        body: finalhandlerPage('AgentPressHttpError: Malformed authorization header', 400),
      }
    case 'jwks_unavailable':
      return {
        status: 503,
        challenges: [],
        retryAfter: '5',
        body: finalhandlerPage('JwksUnavailableError: Signing keys unavailable', 503),
      }
    default:
      return {
        status: 401,
        challenges: [
          challengeOf(`error="invalid_token", error_description="${DESCRIPTION[expected]}"`),
        ],
        // Passport's own answer to a failure: res.end(STATUS_CODES[401]).
        body: 'Unauthorized',
      }
  }
}

/** Asserts the exact answer, and that nothing the client sent is reflected. */
function expectAnswer(
  res: WireResponse,
  expected: Expected,
  sent: readonly string[],
  kid?: unknown,
): void {
  const want = wireOf(expected)
  expect(res.status, res.text).to.equal(want.status)
  expect(res.all('www-authenticate')).to.deep.equal(want.challenges)
  expect(res.get('retry-after')).to.equal(want.retryAfter)
  expect(res.text).to.equal(want.body)
  if (want.status === 200) return
  const whole = `${res.lines.map(([n, v]) => `${n}: ${v}`).join('\n')}\n\n${res.text}`
  for (const line of sent) {
    const value = line.replace(/^\S+\s+/, '')
    if (value.length >= 8) expect(whole).to.not.include(value)
    for (const segment of value.split('.'))
      if (segment.length >= 8) expect(whole).to.not.include(segment)
  }
  if (typeof kid === 'string' && kid.length >= 4) expect(whole, 'kid reflected').to.not.include(kid)
}

interface Ctx {
  mock: MockAgentPress
  /** Private key of the mock's current kid. */
  key: KeyObject
  kid: string
  /** An attacker's own Ed25519 key pair, published nowhere. */
  attacker: { privateKey: KeyObject; publicKey: KeyObject; jwk: Record<string, string> }
  trapUrl: string
  header(extra?: Record<string, unknown>): Record<string, unknown>
  claims(extra?: Record<string, unknown>): Record<string, unknown>
  /** A token signed with the current key; members given as undefined are removed. */
  tok(claims?: Record<string, unknown>, header?: Record<string, unknown>): string
}

interface TokenRow {
  readonly title: string
  /** Authorization header line(s) to send; none when it returns undefined. */
  readonly auth: (c: Ctx) => string | string[] | undefined
  readonly expected: Expected
  /** The kid the token carries (checked for reflection). */
  readonly kid?: (c: Ctx) => unknown
  /** Extra request path (query string attacks). */
  readonly path?: string
}

const bearer = (build: (c: Ctx) => string) => (c: Ctx) => `Bearer ${build(c)}`
const row = (
  title: string,
  expected: Expected,
  build: (c: Ctx) => string,
  kid?: (c: Ctx) => unknown,
): TokenRow => ({
  title,
  expected,
  auth: bearer(build),
  ...(kid ? { kid } : {}),
})

const drop = (obj: Record<string, unknown>, ...names: string[]) => {
  const out = { ...obj }
  for (const n of names) delete out[n]
  return out
}

// ── Token attacks ────────────────────────────────────────────────────────────────────────────
const TOKEN_ROWS: TokenRow[] = [
  // Controls.
  row('control: a valid token → 200', { user: 'user-123' }, (c) => c.tok()),
  {
    title: 'control: no Authorization → 401, no error',
    expected: 'no_credentials',
    auth: () => undefined,
  },

  // alg: algorithm confusion (RFC 8725 §2.1, §3.1).
  row(
    'alg "none" with an empty signature → malformed (structure first)',
    'malformed',
    (c) => `${enc(c.header({ alg: 'none' }))}.${enc(c.claims())}.`,
  ),
  ...['none', 'None', 'NONE', 'nOnE'].map((alg) =>
    row(
      `alg ${JSON.stringify(alg)} with a real Ed25519 signature → alg_not_allowed`,
      'alg_not_allowed',
      (c) => signRaw(c.key, c.header({ alg }), c.claims()),
    ),
  ),
  ...([256, 384, 512] as const).flatMap((bits) => [
    row(`HS${bits} keyed with the raw public key x → alg_not_allowed`, 'alg_not_allowed', (c) =>
      hmacRaw(
        bits,
        c.header({ alg: `HS${bits}` }),
        c.claims(),
        Buffer.from(c.mock.keys.at(-1)!.publicJwk.x, 'base64url'),
      ),
    ),
    row(`HS${bits} keyed with the SPKI PEM → alg_not_allowed`, 'alg_not_allowed', (c) =>
      hmacRaw(
        bits,
        c.header({ alg: `HS${bits}` }),
        c.claims(),
        createPublicKey(c.key).export({ type: 'spki', format: 'pem' }) as string,
      ),
    ),
    row(`HS${bits} keyed with the JWK JSON → alg_not_allowed`, 'alg_not_allowed', (c) =>
      hmacRaw(
        bits,
        c.header({ alg: `HS${bits}` }),
        c.claims(),
        JSON.stringify(c.mock.keys.at(-1)!.publicJwk),
      ),
    ),
  ]),
  ...[
    'RS256',
    'ES256',
    'PS256',
    'ES256K',
    'Ed25519',
    'Ed448',
    'eddsa',
    'EDDSA',
    'EdDSA ',
    ' EdDSA',
    'EdDSA\u0000',
  ].map((alg) =>
    row(`alg ${JSON.stringify(alg)} → alg_not_allowed`, 'alg_not_allowed', (c) =>
      signRaw(c.key, c.header({ alg }), c.claims()),
    ),
  ),
  ...(
    [
      ['missing', undefined],
      ['empty', ''],
      ['a number', 1],
      ['null', null],
      ['true', true],
      ['an array', ['EdDSA']],
      ['an object', { EdDSA: true }],
    ] as Array<[string, unknown]>
  ).map(([label, alg]) =>
    row(`alg ${label} → alg_not_allowed`, 'alg_not_allowed', (c) =>
      signRaw(c.key, alg === undefined ? drop(c.header(), 'alg') : c.header({ alg }), c.claims()),
    ),
  ),

  // JOSE header injection: crit, b64, URL-bearing and key-bearing members (RFC 8725 §3.10).
  ...(
    [
      ['unknown', ['exp']],
      ['empty array', []],
      ['non-array', 'b64'],
      ['null', null],
    ] as Array<[string, unknown]>
  ).map(([label, crit]) =>
    row(`crit ${label} → malformed`, 'malformed', (c) =>
      signRaw(c.key, c.header({ crit }), c.claims()),
    ),
  ),
  row('crit ["b64"] with b64:false (RFC 7797 unencoded payload) → malformed', 'malformed', (c) =>
    signRaw(c.key, c.header({ crit: ['b64'], b64: false }), c.claims()),
  ),
  row(
    'b64:false without crit, signed over the raw payload → signature_invalid (never honoured)',
    'signature_invalid',
    (c) => {
      const header = enc(c.header({ b64: false }))
      const payload = JSON.stringify(c.claims())
      const sig = cryptoSign(c.key, `${header}.${payload}`)
      return `${header}.${enc(payload)}.${sig}`
    },
  ),
  row(
    'b64:false without crit, signed normally → 200 (member ignored, pinned)',
    { user: 'user-123' },
    (c) => signRaw(c.key, c.header({ b64: false }), c.claims()),
  ),
  ...['jku', 'x5u'].flatMap((member) => [
    row(
      `${member} → trap server, attacker key and kid → kid_missing_or_unknown, trap sees 0`,
      'kid_missing_or_unknown',
      (c) =>
        signRaw(
          c.attacker.privateKey,
          c.header({ [member]: `${c.trapUrl}/jwks.json`, kid: 'attacker-kid' }),
          c.claims(),
        ),
    ),
    row(
      `${member} → trap server, attacker key under our kid → signature_invalid, trap sees 0`,
      'signature_invalid',
      (c) =>
        signRaw(
          c.attacker.privateKey,
          c.header({ [member]: `${c.trapUrl}/jwks.json` }),
          c.claims(),
        ),
    ),
    row(
      `${member} → trap server on a genuine token → 200 (ignored), trap sees 0`,
      { user: 'user-123' },
      (c) => c.tok({}, { [member]: `${c.trapUrl}/jwks.json` }),
    ),
  ]),
  row(
    'jwk: the attacker’s embedded key with its own kid → kid_missing_or_unknown',
    'kid_missing_or_unknown',
    (c) =>
      signRaw(
        c.attacker.privateKey,
        c.header({ jwk: c.attacker.jwk, kid: 'attacker-kid' }),
        c.claims(),
      ),
  ),
  row(
    'jwk: the attacker’s embedded key under our kid → signature_invalid',
    'signature_invalid',
    (c) =>
      signRaw(
        c.attacker.privateKey,
        c.header({ jwk: { ...c.attacker.jwk, kid: c.kid } }),
        c.claims(),
      ),
  ),
  row(
    'x5c: an attacker certificate chain under our kid → signature_invalid',
    'signature_invalid',
    (c) =>
      signRaw(
        c.attacker.privateKey,
        c.header({ x5c: [Buffer.from('attacker certificate').toString('base64')] }),
        c.claims(),
      ),
  ),
  row(
    'header "__proto__" member carrying alg and kid → alg_not_allowed (no prototype lookup)',
    'alg_not_allowed',
    (c) => signRaw(c.key, `{"__proto__":{"alg":"EdDSA","kid":"${c.kid}"},"typ":"JWT"}`, c.claims()),
  ),
  row('payload "__proto__" member carrying every claim → missing_claim', 'missing_claim', (c) =>
    signRaw(c.key, c.header(), `{"__proto__":${JSON.stringify(c.claims())}}`),
  ),
  row('cty "JWT": payload is a nested JWT string → malformed (never unwrapped)', 'malformed', (c) =>
    signRaw(c.key, c.header({ cty: 'JWT' }), c.tok()),
  ),
  row(
    'cty "JWT": nested alg-none token inside a genuine outer signature → malformed',
    'malformed',
    (c) =>
      signRaw(
        c.key,
        c.header({ cty: 'JWT' }),
        `${enc({ alg: 'none' })}.${enc(c.claims({ sub: 'admin' }))}.`,
      ),
  ),
  row(
    'cty "JWT" over plain JSON claims → 200 (cty not acted upon, pinned)',
    { user: 'user-123' },
    (c) => c.tok({}, { cty: 'JWT' }),
  ),

  // kid injection.
  ...(
    [
      ['missing', undefined],
      ['empty', ''],
      ['a number', 7],
      ['an object', { $ne: null }],
      ['null', null],
      ['an array', ['k']],
      ['true', true],
    ] as Array<[string, unknown]>
  ).map(([label, kid]) =>
    row(`kid ${label} → kid_missing_or_unknown`, 'kid_missing_or_unknown', (c) =>
      signRaw(c.key, kid === undefined ? drop(c.header(), 'kid') : c.header({ kid }), c.claims()),
    ),
  ),
  ...[
    '../../etc/passwd',
    '..%2F..%2Fetc%2Fpasswd',
    '/etc/passwd\u0000',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    "' OR '1'='1' --",
    'k\r\nSet-Cookie: owned=1',
    'k\nX-Injected: 1',
    '", error="injected", x="',
    'ключ-🔑',
    'k'.repeat(4096),
  ].map((kid) =>
    row(
      `kid ${JSON.stringify(kid.length > 40 ? `${kid.slice(0, 12)}… (${kid.length} chars)` : kid)} → kid_missing_or_unknown, not reflected`,
      'kid_missing_or_unknown',
      (c) => signRaw(c.key, c.header({ kid }), c.claims()),
      () => kid,
    ),
  ),
  row(
    'kid of 10 KB → malformed (token over 8 KiB)',
    'malformed',
    (c) => signRaw(c.key, c.header({ kid: 'k'.repeat(10_240) }), c.claims()),
    () => 'k'.repeat(10_240),
  ),
  row('our kid in another case → kid_missing_or_unknown', 'kid_missing_or_unknown', (c) =>
    signRaw(c.key, c.header({ kid: c.kid.toUpperCase() }), c.claims()),
  ),

  // Structure (SPEC §2) as the HTTP layer sees it: non-b64token values stop at 400 first.
  row('two segments → malformed', 'malformed', (c) => split(c.tok()).slice(0, 2).join('.')),
  row('four segments → malformed', 'malformed', (c) => `${c.tok()}.AAAA`),
  row('five segments → malformed', 'malformed', (c) => `${c.tok()}.AAAA.AAAA`),
  row(
    'empty header segment → malformed',
    'malformed',
    (c) => `.${split(c.tok()).slice(1).join('.')}`,
  ),
  row('empty payload segment → malformed', 'malformed', (c) => {
    const [h, , s] = split(c.tok())
    return `${h}..${s}`
  }),
  row('only dots → malformed', 'malformed', () => '..'),
  row(
    'padding "=" on the signature → malformed (not canonical)',
    'malformed',
    (c) => `${c.tok()}=`,
  ),
  row('padding "==" on the signature → malformed', 'malformed', (c) => `${c.tok()}==`),
  {
    title: 'padding inside the header segment → 400 (not a b64token)',
    expected: 'invalid_request',
    auth: (c) => {
      const [h, p, s] = split(c.tok())
      return `Bearer ${h}=.${p}.${s}`
    },
  },
  {
    title: 'whitespace inside the token → 400',
    expected: 'invalid_request',
    auth: (c) => {
      const [h, p, s] = split(c.tok())
      return `Bearer ${h}. ${p}.${s}`
    },
  },
  {
    title: 'JWS JSON serialisation → 400',
    expected: 'invalid_request',
    auth: (c) => {
      const [h, p, s] = split(c.tok())
      return `Bearer {"protected":"${h}","payload":"${p}","signature":"${s}"}`
    },
  },
  row('standard base64 alphabet (+ and /) → malformed', 'malformed', (c) => {
    const [h, p, s] = split(c.tok())
    return `${h}.${p}.${Buffer.from(s, 'base64url').toString('base64').replace(/=+$/, '')}+/`
  }),
  row('a "~" inside a segment → malformed', 'malformed', (c) => {
    const [h, p, s] = split(c.tok())
    return `${h}~.${p}.${s}`
  }),
  row('a segment of impossible length (4n+1) → malformed', 'malformed', (c) => {
    const [h, p, s] = split(c.tok())
    return `${h}.${p}.${s}AAA`
  }),
  row(
    'non-canonical last character of the signature → malformed (malleable string refused)',
    'malformed',
    (c) => {
      const [h, p, s] = split(c.tok())
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      return `${h}.${p}.${s.slice(0, -1)}${alphabet[alphabet.indexOf(s.at(-1)!) | 1]}`
    },
  ),
  ...(
    [
      ['an array', []],
      ['a string', 'header'],
      ['a number', 1],
      ['null', null],
      ['true', true],
    ] as Array<[string, unknown]>
  ).flatMap(([label, value]) => [
    row(`header is ${label} → malformed`, 'malformed', (c) =>
      signRaw(c.key, JSON.stringify(value), c.claims()),
    ),
    row(`payload is ${label} → malformed`, 'malformed', (c) =>
      signRaw(c.key, c.header(), JSON.stringify(value)),
    ),
  ]),
  row('header not JSON → malformed', 'malformed', (c) =>
    signRaw(c.key, '{"alg":"EdDSA",', c.claims()),
  ),
  row('invalid UTF-8 in the header (0xFF) → malformed', 'malformed', (c) =>
    signRaw(
      c.key,
      Buffer.concat([
        Buffer.from(`{"alg":"EdDSA","kid":"${c.kid}","x":"`),
        Buffer.from([0xff]),
        Buffer.from('"}'),
      ]),
      c.claims(),
    ),
  ),
  row('invalid UTF-8 in the payload (overlong 0xC0 0xAF) → malformed', 'malformed', (c) => {
    const json = JSON.stringify(c.claims({ note: 'NOTE' }))
    const [a, b] = json.split('NOTE') as [string, string]
    return signRaw(
      c.key,
      c.header(),
      Buffer.concat([Buffer.from(a), Buffer.from([0xc0, 0xaf]), Buffer.from(b)]),
    )
  }),
  row(
    'invalid UTF-8 in the payload (CESU lone surrogate 0xED 0xA0 0x80) → malformed',
    'malformed',
    (c) => {
      const json = JSON.stringify(c.claims({ sub: 'SUB' }))
      const [a, b] = json.split('SUB') as [string, string]
      return signRaw(
        c.key,
        c.header(),
        Buffer.concat([Buffer.from(a), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(b)]),
      )
    },
  ),
  row('a UTF-8 BOM before the header JSON → malformed', 'malformed', (c) =>
    signRaw(
      c.key,
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(c.header()))]),
      c.claims(),
    ),
  ),
  row('control: valid non-ASCII UTF-8 in sub → 200', { user: 'ünï-çødé-漢' }, (c) =>
    c.tok({ sub: 'ünï-çødé-漢' }),
  ),
  row('token of exactly 8192 characters → 200', { user: 'user-123' }, (c) =>
    tokenOfLength(8192, (pad, filler) => c.tok({ pad }, { fill: filler })),
  ),
  row('token of 8193 characters → malformed', 'malformed', (c) =>
    tokenOfLength(8193, (pad, filler) => c.tok({ pad }, { fill: filler })),
  ),

  // Duplicate JSON members: the last one wins, as the signature covers it (pinned).
  row(
    'header "alg":"none","alg":"EdDSA" (signed) → 200: last wins (pinned)',
    { user: 'user-123' },
    (c) => signRaw(c.key, `{"alg":"none","alg":"EdDSA","kid":"${c.kid}"}`, c.claims()),
  ),
  row('header "alg":"EdDSA","alg":"none" (signed) → alg_not_allowed', 'alg_not_allowed', (c) =>
    signRaw(c.key, `{"alg":"EdDSA","alg":"none","kid":"${c.kid}"}`, c.claims()),
  ),
  row('header "kid":"unknown","kid":<ours> → 200', { user: 'user-123' }, (c) =>
    signRaw(c.key, `{"alg":"EdDSA","kid":"unknown","kid":"${c.kid}"}`, c.claims()),
  ),
  row(
    'payload "sub" twice → the last one is the user (what was signed)',
    { user: 'mallory' },
    (c) =>
      signRaw(
        c.key,
        c.header(),
        `${JSON.stringify(c.claims({ sub: 'alice' })).slice(0, -1)},"sub":"mallory"}`,
      ),
  ),
  row('payload "exp" twice, the last one past → expired', 'expired', (c) =>
    signRaw(c.key, c.header(), `${JSON.stringify(c.claims()).slice(0, -1)},"exp":${NOW - 3600}}`),
  ),
  row('payload "iss" twice, the last one foreign → issuer_mismatch', 'issuer_mismatch', (c) =>
    signRaw(
      c.key,
      c.header(),
      `${JSON.stringify(c.claims()).slice(0, -1)},"iss":"https://evil.example"}`,
    ),
  ),

  // Signature: bit flips, malleability, truncation, splicing.
  row('one bit flipped in the decoded header → signature_invalid', 'signature_invalid', (c) => {
    const [h, p, s] = split(c.tok())
    return `${flipInSegment(h, '"JWT"', '"JVT"')}.${p}.${s}`
  }),
  row('one bit flipped in the decoded payload → signature_invalid', 'signature_invalid', (c) => {
    const [h, p, s] = split(c.tok())
    return `${h}.${flipInSegment(p, 'user-123', 'user-122')}.${s}`
  }),
  ...[0, 31, 32, 63].map((byte) =>
    row(
      `one bit flipped in signature byte ${byte} (${byte < 32 ? 'R' : 'S'}) → signature_invalid`,
      'signature_invalid',
      (c) => {
        const t = c.tok()
        return withSignature(t, flipBit(signatureBytes(t), byte, 3))
      },
    ),
  ),
  row(
    'S + L (malleability: same R, S not reduced) → signature_invalid',
    'signature_invalid',
    (c) => {
      const t = c.tok()
      return withSignature(t, sPlusL(signatureBytes(t)))
    },
  ),
  row(
    'signature truncated by one byte (63 bytes) → signature_invalid',
    'signature_invalid',
    (c) => {
      const t = c.tok()
      return withSignature(t, signatureBytes(t).subarray(0, 63))
    },
  ),
  row('signature truncated by one character → malformed', 'malformed', (c) => c.tok().slice(0, -1)),
  row('signature extended by one byte (65 bytes) → signature_invalid', 'signature_invalid', (c) => {
    const t = c.tok()
    return withSignature(t, Buffer.concat([signatureBytes(t), Buffer.from([0])]))
  }),
  row('signature of 128 bytes (doubled) → signature_invalid', 'signature_invalid', (c) => {
    const t = c.tok()
    return withSignature(t, Buffer.concat([signatureBytes(t), signatureBytes(t)]))
  }),
  row('all-zero signature → signature_invalid', 'signature_invalid', (c) =>
    withSignature(c.tok(), Buffer.alloc(64)),
  ),
  row('all-0xFF signature → signature_invalid', 'signature_invalid', (c) =>
    withSignature(c.tok(), Buffer.alloc(64, 0xff)),
  ),
  row('another token’s valid signature spliced in → signature_invalid', 'signature_invalid', (c) =>
    withSignature(c.tok({ sub: 'alice' }), signatureBytes(c.tok({ sub: 'bob' }))),
  ),
  row('signed by another key under our kid → signature_invalid', 'signature_invalid', (c) =>
    signRaw(c.attacker.privateKey, c.header(), c.claims()),
  ),

  // Claims: each one missing, empty, of the wrong type; numeric-claim type confusion.
  ...['iss', 'aud', 'ext_provider', 'sub', 'jti', 'scope', 'iat', 'exp'].flatMap((claim) => [
    row(`${claim} missing → missing_claim`, 'missing_claim', (c) => c.tok({ [claim]: undefined })),
    row(`${claim} empty string → missing_claim`, 'missing_claim', (c) => c.tok({ [claim]: '' })),
    row(`${claim} an object → missing_claim`, 'missing_claim', (c) =>
      c.tok({ [claim]: { toString: 'x' } }),
    ),
  ]),
  ...['sub', 'jti', 'ext_provider', 'scope'].map((claim) =>
    row(`${claim} a number → missing_claim`, 'missing_claim', (c) => c.tok({ [claim]: 12345 })),
  ),
  ...['exp', 'iat', 'nbf'].flatMap((claim) => {
    const good = claim === 'exp' ? NOW + 60 : NOW
    return (
      [
        ['a numeric string', String(good)],
        ['true', true],
        ['false', false],
        ['null', null],
        ['an array', [good]],
        ['an object', { $gt: 0 }],
      ] as Array<[string, unknown]>
    ).map(([label, value]) =>
      row(`${claim} ${label} → missing_claim`, 'missing_claim', (c) => c.tok({ [claim]: value })),
    )
  }),
  ...['exp', 'iat', 'nbf'].flatMap((claim) =>
    ['1e400', '-1e400'].map((literal) =>
      row(`${claim} ${literal} (parses to ±Infinity) → missing_claim`, 'missing_claim', (c) =>
        signRaw(
          c.key,
          c.header(),
          `${JSON.stringify(drop(c.claims(), claim)).slice(0, -1)},"${claim}":${literal}}`,
        ),
      ),
    ),
  ),
  row('exp 2^53 + 1 with a real iat → missing_claim (lifetime above 600 s)', 'missing_claim', (c) =>
    c.tok({ exp: 9007199254740993 }),
  ),
  row('float exp and iat → 200', { user: 'user-123' }, (c) =>
    c.tok({ iat: NOW - 0.5, exp: NOW + 59.5 }),
  ),
  row('exp = now − 30 (tolerance edge) → expired', 'expired', (c) =>
    c.tok({ iat: NOW - 90, exp: NOW - 30 }),
  ),
  row('exp = now − 29 → 200', { user: 'user-123' }, (c) => c.tok({ iat: NOW - 89, exp: NOW - 29 })),
  row('iat = now + 31 → not_yet_valid', 'not_yet_valid', (c) =>
    c.tok({ iat: NOW + 31, exp: NOW + 91 }),
  ),
  row('iat = now + 30 → 200', { user: 'user-123' }, (c) => c.tok({ iat: NOW + 30, exp: NOW + 90 })),
  row('nbf = now + 31 → not_yet_valid', 'not_yet_valid', (c) => c.tok({ nbf: NOW + 31 })),
  row('nbf = now + 30 → 200', { user: 'user-123' }, (c) => c.tok({ nbf: NOW + 30 })),
  row('lifetime 601 s → missing_claim', 'missing_claim', (c) =>
    c.tok({ iat: NOW - 1, exp: NOW + 600 }),
  ),
  row('lifetime 600 s → 200', { user: 'user-123' }, (c) => c.tok({ iat: NOW, exp: NOW + 600 })),
  // SPEC §2 bounds the lifetime from above only; exp and iat are each held to the clock tolerance.
  row('exp before iat, both inside the tolerance → 200', { user: 'user-123' }, (c) =>
    c.tok({ iat: NOW + 20, exp: NOW + 10 }),
  ),
  row('aud an array containing ours → 200', { user: 'user-123' }, (c) =>
    c.tok({ aud: ['https://other.example', c.mock.audience] }),
  ),
  row('aud an array without ours → audience_mismatch', 'audience_mismatch', (c) =>
    c.tok({ aud: ['https://other.example'] }),
  ),
  row('aud an empty array → missing_claim', 'missing_claim', (c) => c.tok({ aud: [] })),
  row('aud an array with a non-string member → missing_claim', 'missing_claim', (c) =>
    c.tok({ aud: [c.mock.audience, 1] }),
  ),
  row('aud with a trailing slash → audience_mismatch', 'audience_mismatch', (c) =>
    c.tok({ aud: `${c.mock.audience}/` }),
  ),
  row('iss with a trailing slash → issuer_mismatch', 'issuer_mismatch', (c) =>
    c.tok({ iss: `${c.mock.issuer}/` }),
  ),
  row('iss in upper case → issuer_mismatch', 'issuer_mismatch', (c) =>
    c.tok({ iss: c.mock.issuer.toUpperCase() }),
  ),
  row('iss a number → missing_claim', 'missing_claim', (c) => c.tok({ iss: 42 })),
  row('ext_provider in another case → ext_provider_mismatch', 'ext_provider_mismatch', (c) =>
    c.tok({ ext_provider: 'Example-Partner' }),
  ),
  row('scope with a double space → missing_claim', 'missing_claim', (c) =>
    c.tok({ scope: 'mcp:read  mcp:write' }),
  ),
  row('scope with a quote → missing_claim', 'missing_claim', (c) => c.tok({ scope: 'mcp:"read' })),

  // Signature before claims.
  row('forged and expired → signature_invalid (signature first)', 'signature_invalid', (c) =>
    signRaw(c.attacker.privateKey, c.header(), c.claims({ iat: NOW - 700, exp: NOW - 600 })),
  ),
  row('forged with a foreign audience → signature_invalid', 'signature_invalid', (c) =>
    signRaw(c.attacker.privateKey, c.header(), c.claims({ aud: 'https://other.example' })),
  ),
  row(
    'forged with a foreign issuer → issuer_mismatch (the issuer pre-filter, SPEC §2)',
    'issuer_mismatch',
    (c) =>
      signRaw(
        c.attacker.privateKey,
        c.header({ kid: 'any' }),
        c.claims({ iss: 'https://evil.example/orgs/x' }),
      ),
  ),

  // The Authorization header itself (RFC 6750 §2.1).
  {
    title: 'scheme "bearer" (lower case) → 200',
    expected: { user: 'user-123' },
    auth: (c) => `bearer ${c.tok()}`,
  },
  {
    title: 'scheme "BEARER" → 200',
    expected: { user: 'user-123' },
    auth: (c) => `BEARER ${c.tok()}`,
  },
  {
    title: 'Basic credentials → 401, no error',
    expected: 'no_credentials',
    auth: () => 'Basic dXNlcjpwYXNz',
  },
  {
    title: 'DPoP scheme with a genuine token → 401, no error',
    expected: 'no_credentials',
    auth: (c) => `DPoP ${c.tok()}`,
  },
  { title: '"Bearer" alone → 400', expected: 'invalid_request', auth: () => 'Bearer' },
  {
    title: 'token followed by another word → 400',
    expected: 'invalid_request',
    auth: (c) => `Bearer ${c.tok()} extra`,
  },
  {
    title: 'tab between scheme and token → 400',
    expected: 'invalid_request',
    auth: (c) => `Bearer\t${c.tok()}`,
  },
  {
    title: 'a quote in the value (challenge injection attempt) → 400',
    expected: 'invalid_request',
    auth: () => 'Bearer a"b, error="x',
  },
  {
    title: 'two Authorization lines → 400',
    expected: 'invalid_request',
    auth: (c) => [`Bearer ${c.tok()}`, `Bearer ${c.tok()}`],
  },
  {
    title: 'a Basic line and a Bearer line → 400',
    expected: 'invalid_request',
    auth: (c) => ['Basic dXNlcjpwYXNz', `Bearer ${c.tok()}`],
  },
  {
    title: 'token in the query string only → 401, no error (not accepted)',
    expected: 'no_credentials',
    auth: () => undefined,
    path: '/mcp?access_token=TOKEN',
  },
]

// An Ed25519 signature over an arbitrary string (RFC 7797 experiments).
function cryptoSign(key: KeyObject, input: string): string {
  return edSign(null, Buffer.from(input), key).toString('base64url')
}

// ── Shared fixtures ──────────────────────────────────────────────────────────────────────────
function contextFor(mock: MockAgentPress, trap: CountingServer): Ctx {
  const attackerPair = generateKeyPairSync('ed25519')
  const attackerJwk = attackerPair.publicKey.export({ format: 'jwk' }) as Record<string, string>
  const current = () => mock.keys.at(-1)!
  const ctx: Ctx = {
    mock,
    get key() {
      return current().privateKey
    },
    get kid() {
      return current().kid
    },
    attacker: {
      ...attackerPair,
      jwk: { ...attackerJwk, kid: 'attacker-kid', use: 'sig', alg: 'EdDSA' },
    },
    trapUrl: trap.url,
    header: (extra = {}) => ({ alg: 'EdDSA', typ: 'JWT', kid: current().kid, ...extra }),
    claims: (extra = {}) => {
      const base: Record<string, unknown> = {
        iss: mock.issuer,
        aud: mock.audience,
        ext_provider: mock.extProvider,
        sub: 'user-123',
        jti: 'jti-0001',
        scope: 'mcp:read mcp:write',
        iat: NOW,
        exp: NOW + 60,
      }
      for (const [k, v] of Object.entries(extra)) {
        if (v === undefined) delete base[k]
        else base[k] = v
      }
      return base
    },
    tok: (claims = {}, header = {}) => mock.signToken(claims, header),
  }
  return ctx
}

const echoUser = (req: IncomingMessage, res: ServerResponse) => {
  res.statusCode = 200
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify({ user: (req as IncomingMessage & { user?: unknown }).user }))
}

describe('adversarial catalogue over HTTP', function () {
  this.timeout(60_000)
  const watch = crashWatch()
  const quiet = silenceErrorLogs()
  let mock: MockAgentPress
  let trap: CountingServer

  before(async () => {
    mock = await createMockAgentPress({ orgSlug: 'acme', clock })
    trap = await startCountingServer()
  })
  after(async () => {
    await mock.close()
    await trap.close()
  })
  afterEach(() => {
    expect(watch.crashes, 'no unhandled rejection or uncaught exception').to.deep.equal([])
  })

  describe('token attacks through plain passport.authenticate()', () => {
    for (const stack of STACKS) {
      describe(stack, () => {
        let server: Listening
        let ctx: Ctx
        before(async () => {
          ctx = contextFor(mock, trap)
          server = await listen(tokenApp(stack, mock))
        })
        after(async () => {
          await server.close()
          // Not one row made anything fetch a URL a token named.
          expect(trap.count, 'requests the trap server received').to.equal(0)
        })

        for (const r of TOKEN_ROWS) {
          it(r.title, async () => {
            const auth = r.auth(ctx)
            const lines = auth === undefined ? [] : [auth].flat()
            const path = (r.path ?? '/mcp').replace('TOKEN', ctx.tok())
            const res = await send(server.port, {
              path,
              headers: lines.map((l) => ['Authorization', l] as const),
              body: '',
            })
            expectAnswer(res, r.expected, lines, r.kid?.(ctx))
          })
        }
      })
    }

    describe('ordering: refusals decided before any key lookup cost no JWKS fetch', () => {
      let server: Listening
      let ctx: Ctx
      before(async () => {
        ctx = contextFor(mock, trap)
        server = await listen(tokenApp('express5', mock))
      })
      after(() => server.close())

      const cases: Array<[string, Expected, (c: Ctx) => string]> = [
        [
          'alg HS256 with an unknown kid',
          'alg_not_allowed',
          (c) => hmacRaw(256, c.header({ alg: 'HS256', kid: 'fresh-1' }), c.claims(), 'k'),
        ],
        [
          'alg none with an unknown kid',
          'alg_not_allowed',
          (c) => signRaw(c.key, c.header({ alg: 'none', kid: 'fresh-2' }), c.claims()),
        ],
        [
          'crit with an unknown kid',
          'malformed',
          (c) => signRaw(c.key, c.header({ crit: ['x'], kid: 'fresh-3' }), c.claims()),
        ],
        [
          'a foreign iss with an unknown kid',
          'issuer_mismatch',
          (c) => c.tok({ iss: 'https://evil.example' }, { kid: 'fresh-4' }),
        ],
        [
          'no kid at all',
          'kid_missing_or_unknown',
          (c) => signRaw(c.key, drop(c.header(), 'kid'), c.claims()),
        ],
      ]
      for (const [title, expected, build] of cases) {
        it(`${title} → ${expected as string}, 0 fetches`, async () => {
          const before = mock.jwksRequestCount
          const token = build(ctx)
          const res = await send(server.port, {
            path: '/mcp',
            headers: [['Authorization', `Bearer ${token}`]],
            body: '',
          })
          expectAnswer(res, expected, [token])
          expect(mock.jwksRequestCount - before).to.equal(0)
        })
      }
    })

    describe('what Node refuses before the app (the server survives each)', () => {
      let server: Listening
      let ctx: Ctx
      before(async () => {
        ctx = contextFor(mock, trap)
        server = await listen(tokenApp('express5', mock))
      })
      after(() => server.close())

      const head = (auth: string) =>
        Buffer.from(
          `POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
          'latin1',
        )
      const cases: Array<[string, (c: Ctx) => Buffer, number, string | undefined]> = [
        [
          'a CR inside the Authorization value → 400 from Node',
          () => head('Bearer a\rb'),
          400,
          undefined,
        ],
        [
          'a NUL inside the Authorization value → 400 from Node',
          () => head('Bearer a\u0000b'),
          400,
          undefined,
        ],
        [
          'an obs-fold continuation line → 400 from Node',
          (c) => head(`Bearer\r\n ${c.tok()}`),
          400,
          undefined,
        ],
        [
          'an Authorization line of 17 KB → 431 from Node',
          () => head(`Bearer ${'a'.repeat(17_000)}`),
          431,
          undefined,
        ],
        [
          'a Latin-1 byte in the value → reaches the app: 400 invalid_request',
          () => head('Bearer caf\u00e9'),
          400,
          challengeOf(
            'error="invalid_request", error_description="Malformed authorization header"',
          ),
        ],
      ]
      for (const [title, build, status, challenge] of cases) {
        it(title, async () => {
          const res = await rawRequest(server.port, build(ctx))
          expect(res.status).to.equal(status)
          expect(res.all('www-authenticate')).to.deep.equal(
            challenge === undefined ? [] : [challenge],
          )
          // And the next request is served normally.
          const ok = await send(server.port, {
            path: '/mcp',
            headers: [['Authorization', `Bearer ${ctx.tok()}`]],
            body: '',
          })
          expectAnswer(ok, { user: 'user-123' }, [])
        })
      }
    })
  })

  describe('JWKS attacks (loopback JWKS the test controls, Express 5, a fresh verifier per row)', () => {
    const ISSUER = 'https://api.agent.press/orgs/jwks-attacks'
    const AUDIENCE = 'https://mcp.example.com/mcp'
    const PROVIDER = 'jwks-partner'
    let jwks: CountingServer
    let document: unknown
    const genuine = generateKeyPairSync('ed25519')
    const other = generateKeyPairSync('ed25519')
    const jwkOf = (key: KeyObject, extra: Record<string, unknown> = {}) => ({
      ...(key.export({ format: 'jwk' }) as Record<string, string>),
      kid: 'k1',
      ...extra,
    })
    const claims = (extra: Record<string, unknown> = {}) => ({
      iss: ISSUER,
      aud: AUDIENCE,
      ext_provider: PROVIDER,
      sub: 'user-123',
      jti: 'j',
      scope: 'mcp:read',
      iat: NOW,
      exp: NOW + 60,
      ...extra,
    })
    const token = (kid = 'k1', key: KeyObject = genuine.privateKey) =>
      signRaw(key, { alg: 'EdDSA', kid }, claims())

    before(async () => {
      jwks = await startCountingServer((_req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(typeof document === 'string' ? document : JSON.stringify(document))
      })
    })
    after(() => jwks.close())

    async function run(doc: unknown, tokenValue: string, expected: Expected): Promise<number> {
      document = doc
      const before = jwks.count
      const server = await listen(
        tokenAppFor('express5', {
          issuer: ISSUER,
          audience: AUDIENCE,
          expectedExtProvider: PROVIDER,
          jwksUrl: `${jwks.url}/jwks.json`,
          clock,
        }),
      )
      try {
        const res = await send(server.port, {
          path: '/mcp',
          headers: [['Authorization', `Bearer ${tokenValue}`]],
          body: '',
        })
        expectAnswer(res, expected, [tokenValue])
      } finally {
        await server.close()
      }
      return jwks.count - before
    }

    const pub = genuine.publicKey
    const cases: Array<[string, () => unknown, () => string, Expected]> = [
      [
        'control: the genuine key → 200',
        () => ({ keys: [jwkOf(pub)] }),
        () => token(),
        { user: 'user-123' },
      ],
      [
        'a published private key (d) → kid_missing_or_unknown',
        () => ({
          keys: [genuine.privateKey.export({ format: 'jwk' })].map((k) => ({ ...k, kid: 'k1' })),
        }),
        () => token(),
        'kid_missing_or_unknown',
      ],
      ...(
        [
          ['kty "EC"', { kty: 'EC' }],
          ['kty "oct"', { kty: 'oct' }],
          ['crv "X25519"', { crv: 'X25519' }],
          ['crv "Ed448"', { crv: 'Ed448' }],
          ['use "enc"', { use: 'enc' }],
          ['alg "RS256"', { alg: 'RS256' }],
          ['alg "none"', { alg: 'none' }],
          ['alg "Ed25519"', { alg: 'Ed25519' }],
          ['x with "=" padding', { x: `${(pub.export({ format: 'jwk' }) as { x: string }).x}=` }],
          [
            'x in standard base64',
            {
              x: Buffer.from(
                (pub.export({ format: 'jwk' }) as { x: string }).x,
                'base64url',
              ).toString('base64'),
            },
          ],
          ['x of 31 bytes', { x: Buffer.alloc(31, 7).toString('base64url') }],
          ['x a number', { x: 1 }],
          ['kid empty', { kid: '' }],
        ] as Array<[string, Record<string, unknown>]>
      ).map(
        ([label, extra]) =>
          [
            `key with ${label} → kid_missing_or_unknown`,
            () => ({ keys: [jwkOf(pub, extra)] }),
            () => token(),
            'kid_missing_or_unknown',
          ] as [string, () => unknown, () => string, Expected],
      ),
      [
        'two different keys under one kid → kid_missing_or_unknown (ambiguous)',
        () => ({ keys: [jwkOf(pub), jwkOf(other.publicKey)] }),
        () => token(),
        'kid_missing_or_unknown',
      ],
      [
        'the same key twice under one kid → kid_missing_or_unknown (ambiguous, pinned)',
        () => ({ keys: [jwkOf(pub), jwkOf(pub)] }),
        () => token(),
        'kid_missing_or_unknown',
      ],
      [
        'non-object entries beside the genuine key → 200',
        () => ({ keys: [null, 1, 'x', [], true, jwkOf(pub)] }),
        () => token(),
        { user: 'user-123' },
      ],
      [
        'a genuine key whose kid is "__proto__" → 200 (no prototype confusion)',
        () => ({ keys: [jwkOf(pub, { kid: '__proto__' })] }),
        () => token('__proto__'),
        { user: 'user-123' },
      ],
      [
        'kid "constructor" not published → kid_missing_or_unknown',
        () => ({ keys: [jwkOf(pub)] }),
        () => token('constructor'),
        'kid_missing_or_unknown',
      ],
      [
        'kid "hasOwnProperty" not published → kid_missing_or_unknown',
        () => ({ keys: [jwkOf(pub)] }),
        () => token('hasOwnProperty'),
        'kid_missing_or_unknown',
      ],
      [
        'an empty key set → kid_missing_or_unknown (a good fetch is authoritative)',
        () => ({ keys: [] }),
        () => token(),
        'kid_missing_or_unknown',
      ],
      [
        '"keys" an object, not an array → 503 (a bad document is an outage)',
        () => ({ keys: { 0: jwkOf(pub) } }),
        () => token(),
        'jwks_unavailable',
      ],
      ['"keys" a string → 503', () => ({ keys: 'k1' }), () => token(), 'jwks_unavailable'],
      ['"keys" null → 503', () => ({ keys: null }), () => token(), 'jwks_unavailable'],
      ['no "keys" member → 503', () => ({ key: [jwkOf(pub)] }), () => token(), 'jwks_unavailable'],
      ['the document is an array → 503', () => [jwkOf(pub)], () => token(), 'jwks_unavailable'],
      [
        'a key carrying x5u/jku pointing at the trap → 200, trap unused',
        () => ({
          keys: [jwkOf(pub, { x5u: 'http://127.0.0.1:9/x', jku: 'http://127.0.0.1:9/j' })],
        }),
        () => token(),
        { user: 'user-123' },
      ],
      [
        'duplicate "keys" members in the JSON text: the last one wins → 200',
        () => `{"keys":[],"keys":[${JSON.stringify(jwkOf(pub))}]}`,
        () => token(),
        { user: 'user-123' },
      ],
    ]
    for (const [title, doc, tok, expected] of cases) {
      it(title, async () => {
        const fetches = await run(doc(), tok(), expected)
        expect(fetches).to.equal(1)
      })
    }

    // A small-order key admits an S = 0 forgery under some OpenSSL builds; find one (bounded) and
    // send it. The package's refusal is asserted on every runtime; whether the runtime alone would
    // accept the forgery is reported in a separate, informational test.
    const SMALL = [
      '0100000000000000000000000000000000000000000000000000000000000000',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0000000000000000000000000000000000000000000000000000000000000080',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
    ]
    const forgeryFor = (point: Buffer) =>
      smallOrderForgery(
        point,
        (i) => `${enc({ alg: 'EdDSA', kid: 'small' })}.${enc(claims({ jti: `forged-${i}` }))}`,
      )
    const admitted: string[] = []
    for (const hex of SMALL) {
      it(`small-order key ${hex.slice(0, 8)}…${hex.slice(-2)} with an S = 0 forgery → kid_missing_or_unknown`, async () => {
        const point = Buffer.from(hex, 'hex')
        const forgery = forgeryFor(point)
        await run(
          { keys: [{ kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url'), kid: 'small' }] },
          forgery.token,
          'kid_missing_or_unknown',
        )
        if (forgery.runtimeAdmits) admitted.push(hex)
      })
    }
    it('informational: the runtime’s crypto.verify alone accepts an S = 0 forgery for every small-order key', function () {
      reportRuntimeAdmits(this, admitted.length > 0, 'S = 0 forgeries for small-order keys')
      expect(admitted).to.have.length(SMALL.length)
    })

    it('200 simultaneous cold requests → 200 × 200 and exactly 1 fetch', async () => {
      document = { keys: [jwkOf(pub)] }
      const before = jwks.count
      const server = await listen(
        tokenAppFor('express5', {
          issuer: ISSUER,
          audience: AUDIENCE,
          expectedExtProvider: PROVIDER,
          jwksUrl: `${jwks.url}/jwks.json`,
          clock,
        }),
      )
      try {
        const results = await Promise.all(
          Array.from({ length: 200 }, () =>
            send(server.port, {
              path: '/mcp',
              headers: [['Authorization', `Bearer ${token()}`]],
              body: '',
            }),
          ),
        )
        for (const r of results) expectAnswer(r, { user: 'user-123' }, [])
        expect(jwks.count - before).to.equal(1)
      } finally {
        await server.close()
      }
    })

    it('300 random kids per cooldown window → exactly 1 refetch per window, never a 503', async () => {
      document = { keys: [jwkOf(pub)] }
      let now = NOW_MS
      const before = jwks.count
      const server = await listen(
        tokenAppFor('express5', {
          issuer: ISSUER,
          audience: AUDIENCE,
          expectedExtProvider: PROVIDER,
          jwksUrl: `${jwks.url}/jwks.json`,
          jwksCooldownMs: 30_000,
          clock: () => now,
        }),
      )
      try {
        const ok = await send(server.port, {
          path: '/mcp',
          headers: [['Authorization', `Bearer ${token()}`]],
          body: '',
        })
        expectAnswer(ok, { user: 'user-123' }, [])
        const perWindow: number[] = []
        for (let window = 0; window < 3; window++) {
          const start = jwks.count
          const results = await Promise.all(
            Array.from({ length: 300 }, (_, i) => {
              const t = signRaw(
                genuine.privateKey,
                { alg: 'EdDSA', kid: `random-${window}-${i}` },
                claims(),
              )
              return send(server.port, {
                path: '/mcp',
                headers: [['Authorization', `Bearer ${t}`]],
                body: '',
              })
            }),
          )
          for (const r of results) expectAnswer(r, 'kid_missing_or_unknown', [])
          perWindow.push(jwks.count - start)
          now += 30_000 // the next cooldown window
        }
        // The cold fetch starts no kid-miss cooldown: each window's 300 misses share exactly one
        // refetch, and the next miss inside that window fetches nothing.
        expect(perWindow, 'fetches per window').to.deep.equal([1, 1, 1])
        expect(jwks.count - before).to.equal(4)
      } finally {
        await server.close()
      }
    })
  })

  describe('webhook attacks through the key-rotation router', () => {
    const SECRET = 'whsec_catalogue_0123456789abcdef'
    const OTHER_SECRET = 'whsec_another_secret_0123456789'
    const PATH = '/webhooks/agentpress/key-rotation'
    const TS = String(NOW)
    let hooks: MockAgentPress

    before(async () => {
      hooks = await createMockAgentPress({ orgSlug: 'hooks', clock, webhookSecret: SECRET })
    })
    after(() => hooks.close())

    const event = (extra: Record<string, unknown> = {}) => ({
      id: `evt_${Math.random().toString(36).slice(2)}`,
      type: 'signing_key_rotation',
      issuer: hooks.issuer,
      retiredKid: 'ap-old',
      newCurrentKid: hooks.currentKid,
      ...extra,
    })
    const mac = (body: string | Buffer, ts = TS, secret = SECRET) =>
      computeWebhookSignature(secret, ts, body).slice('sha256='.length)

    const refusal = (status: number, error: string, description: string) => ({
      status,
      body: JSON.stringify({ error, error_description: description }),
    })
    const R = {
      ok: { status: 200, body: '{"received":true}' },
      duplicate: { status: 200, body: '{"received":true,"duplicate":true}' },
      missing_signature: refusal(401, 'missing_signature', 'Missing X-AgentPress-Signature header'),
      missing_timestamp: refusal(401, 'missing_timestamp', 'Missing X-AgentPress-Timestamp header'),
      invalid_timestamp: refusal(
        401,
        'invalid_timestamp',
        'X-AgentPress-Timestamp must be Unix seconds in ASCII digits',
      ),
      out_of_window: refusal(
        401,
        'timestamp_out_of_window',
        'Timestamp outside the accepted window',
      ),
      mismatch: refusal(401, 'signature_mismatch', 'Signature does not match'),
      invalid_payload: refusal(400, 'invalid_payload', 'Invalid key-rotation payload'),
      too_large: refusal(413, 'payload_too_large', 'Payload larger than 8192 bytes'),
      encoding: refusal(415, 'unsupported_encoding', 'Content-Encoding must be identity'),
      timeout: refusal(408, 'request_timeout', 'Request body not received in time'),
    }
    type Want = { status: number; body: string }

    interface HookRow {
      readonly title: string
      readonly request: () => {
        headers: Array<[string, string]>
        body?: string | Buffer
        write?: (req: import('node:http').ClientRequest) => Promise<void> | void
      }
      readonly want: Want
      readonly refreshes: number
    }
    const signed = (body: string | Buffer, ts = TS, secret = SECRET): Array<[string, string]> => [
      ['Content-Type', 'application/json'],
      ['X-AgentPress-Timestamp', ts],
      ['X-AgentPress-Signature', `sha256=${mac(body, ts, secret)}`],
    ]
    const good = () => JSON.stringify(event())
    const withSig = (_body: string, value: string): Array<[string, string]> => [
      ['Content-Type', 'application/json'],
      ['X-AgentPress-Timestamp', TS],
      ['X-AgentPress-Signature', value],
    ]

    const HOOK_ROWS: HookRow[] = [
      {
        title: 'control: a valid delivery → 200, one refresh',
        request: () => {
          const b = good()
          return { headers: signed(b), body: b }
        },
        want: R.ok,
        refreshes: 1,
      },
      // Timestamp games.
      ...[
        '1.5',
        `+${TS}`,
        '0x6a00a1c0',
        `${TS}abc`,
        `-${TS}`,
        `${TS.slice(0, 5)} ${TS.slice(5)}`,
        `${TS}e0`,
        '99999999999999999999',
        `${TS},${TS}`,
      ].map((ts): HookRow => ({
        title: `timestamp ${JSON.stringify(ts)} (signed over it) → 401 invalid_timestamp`,
        request: () => {
          const b = good()
          return { headers: signed(b, ts), body: b }
        },
        want: R.invalid_timestamp,
        refreshes: 0,
      })),
      {
        title: 'timestamp header empty → 401 missing_timestamp',
        request: () => {
          const b = good()
          return { headers: signed(b, ''), body: b }
        },
        want: R.missing_timestamp,
        refreshes: 0,
      },
      {
        title: 'timestamp header absent → 401 missing_timestamp',
        request: () => {
          const b = good()
          return { headers: signed(b).filter(([n]) => n !== 'X-AgentPress-Timestamp'), body: b }
        },
        want: R.missing_timestamp,
        refreshes: 0,
      },
      {
        title:
          'spaces around the timestamp are stripped by HTTP (RFC 9110 §5.5): signed over the digits → 200',
        request: () => {
          const b = good()
          return {
            headers: [
              ['Content-Type', 'application/json'],
              ['X-AgentPress-Timestamp', `  ${TS}  `],
              ['X-AgentPress-Signature', `sha256=${mac(b)}`],
            ],
            body: b,
          }
        },
        want: R.ok,
        refreshes: 1,
      },
      {
        title: 'spaces around the timestamp, signed over the spaces → 401 signature_mismatch',
        request: () => {
          const b = good()
          return {
            headers: [
              ['Content-Type', 'application/json'],
              ['X-AgentPress-Timestamp', ` ${TS} `],
              ['X-AgentPress-Signature', `sha256=${mac(b, ` ${TS} `)}`],
            ],
            body: b,
          }
        },
        want: R.mismatch,
        refreshes: 0,
      },
      ...([-301, 301] as const).map((d): HookRow => ({
        title: `timestamp ${d > 0 ? '301 s ahead' : '301 s old'} → 401 timestamp_out_of_window`,
        request: () => {
          const b = good()
          return { headers: signed(b, String(NOW + d)), body: b }
        },
        want: R.out_of_window,
        refreshes: 0,
      })),
      ...([-300, 300] as const).map((d): HookRow => ({
        title: `timestamp exactly ${d > 0 ? '300 s ahead' : '300 s old'} → 200`,
        request: () => {
          const b = good()
          return { headers: signed(b, String(NOW + d)), body: b }
        },
        want: R.ok,
        refreshes: 1,
      })),
      {
        title: 'timestamp 0 → 401 timestamp_out_of_window',
        request: () => {
          const b = good()
          return { headers: signed(b, '0'), body: b }
        },
        want: R.out_of_window,
        refreshes: 0,
      },
      {
        title: 'timestamp of 16 digits → 401 timestamp_out_of_window',
        request: () => {
          const b = good()
          return { headers: signed(b, '9999999999999999'), body: b }
        },
        want: R.out_of_window,
        refreshes: 0,
      },
      // Signature games.
      {
        title: 'signature header absent → 401 missing_signature',
        request: () => {
          const b = good()
          return { headers: signed(b).filter(([n]) => n !== 'X-AgentPress-Signature'), body: b }
        },
        want: R.missing_signature,
        refreshes: 0,
      },
      {
        title: 'signature header only spaces → 401 missing_signature',
        request: () => {
          const b = good()
          return { headers: withSig(b, '   '), body: b }
        },
        want: R.missing_signature,
        refreshes: 0,
      },
      ...(
        [
          ['63 hex characters', (m: string) => `sha256=${m.slice(0, 63)}`],
          ['65 hex characters', (m: string) => `sha256=${m}0`],
          ['a non-hex character', (m: string) => `sha256=${m.slice(0, 63)}g`],
          [
            'base64 of the MAC',
            (m: string) => `sha256=${Buffer.from(m, 'hex').toString('base64')}`,
          ],
          ['upper-case hex', (m: string) => `sha256=${m.toUpperCase()}`],
          ['sha512= prefix', (m: string) => `sha512=${m}`],
          ['SHA256= prefix', (m: string) => `SHA256=${m}`],
          ['the MAC followed by a NUL-free junk suffix', (m: string) => `sha256=${m}xyz`],
          [
            'nine entries, the good one last (over the cap of 8)',
            (m: string) =>
              `${Array(8)
                .fill(`sha256=${'0'.repeat(64)}`)
                .join(',')},sha256=${m}`,
          ],
        ] as Array<[string, (m: string) => string]>
      ).map(([label, make]): HookRow => ({
        title: `signature: ${label} → 401 signature_mismatch`,
        request: () => {
          const b = good()
          return { headers: withSig(b, make(mac(b))), body: b }
        },
        want: R.mismatch,
        refreshes: 0,
      })),
      {
        title: 'signature: the right MAC under another secret → 401 signature_mismatch',
        request: () => {
          const b = good()
          return { headers: signed(b, TS, OTHER_SECRET), body: b }
        },
        want: R.mismatch,
        refreshes: 0,
      },
      {
        title: 'signature: eight entries, the good one last → 200',
        request: () => {
          const b = good()
          return {
            headers: withSig(
              b,
              `${Array(7)
                .fill(`sha256=${'0'.repeat(64)}`)
                .join(' ')} sha256=${mac(b)}`,
            ),
            body: b,
          }
        },
        want: R.ok,
        refreshes: 1,
      },
      {
        title: 'signature: a bad entry beside a good one → 200',
        request: () => {
          const b = good()
          return { headers: withSig(b, `sha256=${'f'.repeat(64)}, sha256=${mac(b)}`), body: b }
        },
        want: R.ok,
        refreshes: 1,
      },
      {
        title: 'signature: v1= and bare hex entries → 200',
        request: () => {
          const b = good()
          return { headers: withSig(b, `v1=${mac(b)}`), body: b }
        },
        want: R.ok,
        refreshes: 1,
      },
      {
        title: 'signature: two header lines, bad then good (joined as Node joins them) → 200',
        request: () => {
          const b = good()
          return {
            headers: [
              ...withSig(b, `sha256=${'a'.repeat(64)}`),
              ['X-AgentPress-Signature', `sha256=${mac(b)}`],
            ],
            body: b,
          }
        },
        want: R.ok,
        refreshes: 1,
      },
      // Body games.
      {
        title: 'body: one byte changed after signing → 401 signature_mismatch',
        request: () => {
          const b = good()
          return {
            headers: signed(b),
            body: b.replace('signing_key_rotation', 'signing_key_rotatioN'),
          }
        },
        want: R.mismatch,
        refreshes: 0,
      },
      {
        title: 'body: re-serialised JSON (spaces) → 401 signature_mismatch',
        request: () => {
          const b = good()
          return { headers: signed(b), body: JSON.stringify(JSON.parse(b), null, 1) }
        },
        want: R.mismatch,
        refreshes: 0,
      },
      {
        title: 'body: invalid UTF-8, a BOM and CRLF, signed exactly as sent → 200',
        request: () => {
          const json = JSON.stringify(event({ note: 'NOTE' }), null, 1).replace(/\n/g, '\r\n')
          const [a, z] = json.split('NOTE') as [string, string]
          const b = Buffer.concat([
            Buffer.from([0xef, 0xbb, 0xbf]),
            Buffer.from(a),
            Buffer.from([0xff, 0xfe]),
            Buffer.from(z),
          ])
          return { headers: signed(b), body: b }
        },
        want: R.ok,
        refreshes: 1,
      },
      {
        title: 'body: empty, signed → 400 invalid_payload',
        request: () => ({ headers: signed(''), body: '' }),
        want: R.invalid_payload,
        refreshes: 0,
      },
      {
        title: 'body: wrong type, signed → 400 invalid_payload',
        request: () => {
          const b = JSON.stringify(event({ type: 'key_rotation' }))
          return { headers: signed(b), body: b }
        },
        want: R.invalid_payload,
        refreshes: 0,
      },
      {
        title: 'body: a JSON array, signed → 400 invalid_payload',
        request: () => {
          const b = JSON.stringify([event()])
          return { headers: signed(b), body: b }
        },
        want: R.invalid_payload,
        refreshes: 0,
      },
      {
        title: 'body: exactly 8192 bytes, signed → 200',
        request: () => {
          const e = event({ pad: '' })
          const b = JSON.stringify({ ...e, pad: 'p'.repeat(8192 - JSON.stringify(e).length) })
          expect(Buffer.byteLength(b)).to.equal(8192)
          return { headers: signed(b), body: b }
        },
        want: R.ok,
        refreshes: 1,
      },
      {
        title: 'body: 8193 bytes with Content-Length → 413',
        request: () => {
          const b = JSON.stringify(event({ pad: 'p'.repeat(8300) })).slice(0, 8193)
          return { headers: signed(b), body: b }
        },
        want: R.too_large,
        refreshes: 0,
      },
      {
        title: 'body: 8193 bytes chunked, no Content-Length → 413 while streaming',
        request: () => {
          const b = 'p'.repeat(8193)
          return {
            headers: [...signed(b), ['Transfer-Encoding', 'chunked']],
            write: async (req) => {
              for (let i = 0; i < b.length; i += 1024) req.write(b.slice(i, i + 1024))
              req.end()
            },
          }
        },
        want: R.too_large,
        refreshes: 0,
      },
      {
        title: 'body: Content-Length of 10 MB, nothing sent → 413 at once',
        request: () => ({
          headers: [...signed('x'), ['Content-Length', String(10 * 1024 * 1024)]],
          write: (req) => req.flushHeaders(),
        }),
        want: R.too_large,
        refreshes: 0,
      },
      {
        title: 'body: Content-Length larger than the bytes sent → 408 at the body deadline',
        request: () => {
          const b = good()
          return {
            headers: [...signed(b), ['Content-Length', String(Buffer.byteLength(b) + 10)]],
            write: (req) => {
              req.write(b)
            },
          }
        },
        want: R.timeout,
        refreshes: 0,
      },
      {
        title: 'body: slow drip (one byte per 40 ms) → 408 at the body deadline',
        request: () => {
          const b = good()
          return {
            headers: [...signed(b), ['Content-Length', String(Buffer.byteLength(b))]],
            write: async (req) => {
              for (let i = 0; i < 40 && !req.destroyed; i++) {
                req.write(b[i]!)
                await sleep(40)
              }
            },
          }
        },
        want: R.timeout,
        refreshes: 0,
      },
      ...['gzip', 'deflate', 'br', 'gzip, identity', 'x-unknown'].map((encoding): HookRow => ({
        title: `Content-Encoding: ${encoding} (signed over the compressed bytes) → 415`,
        request: () => {
          const raw = Buffer.from(good())
          const b =
            encoding === 'deflate'
              ? deflateSync(raw)
              : encoding === 'br'
                ? brotliCompressSync(raw)
                : gzipSync(raw)
          return { headers: [...signed(b), ['Content-Encoding', encoding]], body: b }
        },
        want: R.encoding,
        refreshes: 0,
      })),
      {
        title: 'Content-Encoding: identity → 200',
        request: () => {
          const b = good()
          return { headers: [...signed(b), ['Content-Encoding', 'identity']], body: b }
        },
        want: R.ok,
        refreshes: 1,
      },
    ]

    for (const stack of STACKS) {
      describe(stack, () => {
        let server: Listening
        before(async () => {
          server = await listen(hookApp(stack, hooks, SECRET))
        })
        after(() => server.close())

        for (const r of HOOK_ROWS) {
          it(r.title, async () => {
            const { headers, body, write } = r.request()
            const before = hooks.jwksRequestCount
            const res = await send(server.port, {
              path: PATH,
              headers,
              ...(body === undefined ? {} : { body }),
              ...(write === undefined ? {} : { write }),
            })
            expect([res.status, res.text]).to.deep.equal([r.want.status, r.want.body])
            expect(res.get('content-type')).to.equal('application/json; charset=utf-8')
            expect(hooks.jwksRequestCount - before, 'JWKS refreshes').to.equal(r.refreshes)
          })
        }

        it('replay: the same delivery twice → 200, then 200 duplicate; one refresh', async () => {
          const b = good()
          const before = hooks.jwksRequestCount
          const first = await send(server.port, { path: PATH, headers: signed(b), body: b })
          const second = await send(server.port, { path: PATH, headers: signed(b), body: b })
          expect([first.status, first.text]).to.deep.equal([R.ok.status, R.ok.body])
          expect([second.status, second.text]).to.deep.equal([R.duplicate.status, R.duplicate.body])
          expect(hooks.jwksRequestCount - before).to.equal(1)
        })

        it('replay: 50 concurrent deliveries of one event → 50 × 200, one refresh', async () => {
          const b = good()
          const before = hooks.jwksRequestCount
          const results = await Promise.all(
            Array.from({ length: 50 }, () =>
              send(server.port, { path: PATH, headers: signed(b), body: b }),
            ),
          )
          for (const res of results) {
            expect(res.status).to.equal(200)
            expect([R.ok.body, R.duplicate.body]).to.include(res.text)
          }
          expect(hooks.jwksRequestCount - before).to.equal(1)
        })

        it('a Content-Length smaller than the body → the truncated body fails its signature (401)', async () => {
          const b = good()
          const head = signed(b)
            .map(([n, v]) => `${n}: ${v}\r\n`)
            .join('')
          // The 10 bytes beyond Content-Length follow a moment later: to the server they are the
          // start of a next request (which Node refuses), after the answer to this one.
          const res = await rawRequest(server.port, [
            `POST ${PATH} HTTP/1.1\r\nHost: x\r\n${head}Content-Length: ${Buffer.byteLength(b) - 10}\r\n\r\n${b.slice(0, -10)}`,
            200,
            b.slice(-10),
          ])
          expect([res.status, res.text]).to.deep.equal([R.mismatch.status, R.mismatch.body])
        })

        it('a body carrying a URL and keys → 200, the trap sees 0 requests, the key is not trusted', async () => {
          const attacker = generateKeyPairSync('ed25519')
          const jwk = {
            ...(attacker.publicKey.export({ format: 'jwk' }) as object),
            kid: 'attacker-kid',
          }
          const b = JSON.stringify(
            event({
              jwksUrl: `${trap.url}/jwks.json`,
              jku: `${trap.url}/j`,
              keys: [jwk],
              newCurrentKid: 'attacker-kid',
            }),
          )
          const trapped = trap.count
          const res = await send(server.port, { path: PATH, headers: signed(b), body: b })
          expect([res.status, res.text]).to.deep.equal([R.ok.status, R.ok.body])
          expect(trap.count - trapped).to.equal(0)
          // The attacker's kid is not a key the verifier knows after that refresh.
          const verifier = new (await import('passport-agentpress-partner')).PartnerTokenVerifier({
            ...hooks.partnerMcp,
            clock,
          })
          const forged = signRaw(
            attacker.privateKey,
            { alg: 'EdDSA', kid: 'attacker-kid' },
            { iss: hooks.issuer },
          )
          const reason = await verifier.verifyToken(forged).then(
            () => 'ok',
            (err: { reason?: string }) => err.reason,
          )
          expect(reason).to.equal('kid_missing_or_unknown')
        })

        it('a client abort mid-body crashes nothing, and the next delivery works', async () => {
          const b = good()
          await send(server.port, {
            path: PATH,
            headers: [...signed(b), ['Content-Length', String(Buffer.byteLength(b))]],
            write: async (req) => {
              req.write(b.slice(0, 20))
              await sleep(30)
              req.destroy()
            },
          }).catch(() => undefined)
          const next = good()
          const res = await send(server.port, { path: PATH, headers: signed(next), body: next })
          expect([res.status, res.text]).to.deep.equal([R.ok.status, R.ok.body])
        })

        it('wrong method → 405 with Allow: POST', async () => {
          const res = await send(server.port, { method: 'GET', path: PATH })
          expect(res.status).to.equal(405)
          expect(res.get('allow')).to.equal('POST')
          expect(res.text).to.equal(
            JSON.stringify({
              error: 'method_not_allowed',
              error_description: 'Only POST is allowed',
            }),
          )
        })
      })
    }

    describe('body parsers mounted before the router (Express 5)', () => {
      it('express.json() first → 500 body_already_parsed, naming the fix', async () => {
        const app = express5()
        app.use(express5.json())
        app.use(
          PATH,
          createKeyRotationRouter({
            webhookSecret: SECRET,
            verifiers: [
              new (await import('passport-agentpress-partner')).PartnerTokenVerifier({
                ...hooks.partnerMcp,
                clock,
              }),
            ],
            clock,
          }),
        )
        const server = await listen(app)
        try {
          const b = good()
          const before = hooks.jwksRequestCount
          const res = await send(server.port, { path: PATH, headers: signed(b), body: b })
          expect(res.status).to.equal(500)
          expect(res.text).to.equal(
            JSON.stringify({
              error: 'body_already_parsed',
              error_description: KEY_ROTATION_ERRORS.body_already_parsed.description,
            }),
          )
          expect(KEY_ROTATION_ERRORS.body_already_parsed.description).to.include(
            'express.json({ verify:',
          )
          expect(hooks.jwksRequestCount).to.equal(before)
        } finally {
          await server.close()
        }
      })

      it('express.json({ verify }) keeping req.rawBody → 200', async () => {
        const app = express5()
        app.use(
          express5.json({
            verify: (req, _res, buf) => {
              ;(req as IncomingMessage & { rawBody?: Buffer }).rawBody = buf
            },
          }),
        )
        app.use(
          PATH,
          createKeyRotationRouter({
            webhookSecret: SECRET,
            verifiers: [
              new (await import('passport-agentpress-partner')).PartnerTokenVerifier({
                ...hooks.partnerMcp,
                clock,
              }),
            ],
            clock,
          }),
        )
        const server = await listen(app)
        try {
          const b = good()
          const res = await send(server.port, { path: PATH, headers: signed(b), body: b })
          expect([res.status, res.text]).to.deep.equal([R.ok.status, R.ok.body])
        } finally {
          await server.close()
        }
      })
    })

    it('emergency rotation: the retired key is refused at once on the token route', async () => {
      const strategyVerify = async (claims: PartnerTokenClaims) => ({ sub: claims.sub })
      const passport = newPassport()
      const strategy = new AgentPressPartnerStrategy(
        { partnerMcp: { ...hooks.partnerMcp, clock }, realm: REALM, resourceMetadataUrl: PRM },
        strategyVerify,
      )
      passport.use(strategy)
      const app = express5()
      app.use(PATH, createKeyRotationRouter({ webhookSecret: SECRET, strategy, clock }))
      app.post('/mcp', passport.authenticate('agentpress-partner', { session: false }), echoUser)
      const server = await listen(app)
      try {
        const old = hooks.signToken()
        expectAnswer(
          await send(server.port, {
            path: '/mcp',
            headers: [['Authorization', `Bearer ${old}`]],
            body: '',
          }),
          { user: 'user-123' },
          [],
        )
        const rotation = hooks.rotateKeys({ emergency: true })
        const delivery = signWebhook(rotation, { secret: SECRET, clock })
        const res = await send(server.port, {
          path: PATH,
          headers: Object.entries(delivery.headers),
          body: delivery.body,
        })
        expect([res.status, res.text]).to.deep.equal([200, '{"received":true}'])
        expectAnswer(
          await send(server.port, {
            path: '/mcp',
            headers: [['Authorization', `Bearer ${old}`]],
            body: '',
          }),
          'kid_missing_or_unknown',
          [old],
        )
        expectAnswer(
          await send(server.port, {
            path: '/mcp',
            headers: [['Authorization', `Bearer ${hooks.signToken()}`]],
            body: '',
          }),
          { user: 'user-123' },
          [],
        )
      } finally {
        await server.close()
      }
    })
  })

  after(() => {
    // Express/Connect may log errors of 4xx/5xx through console.error only for 5xx; none expected
    // beyond the deliberate 500/503 rows.
    void quiet
  })
})

// ── App builders ─────────────────────────────────────────────────────────────────────────────
function tokenApp(stack: Stack, mock: MockAgentPress) {
  return tokenAppFor(stack, { ...mock.partnerMcp, clock })
}

function tokenAppFor(
  stack: Stack,
  partnerMcp: ConstructorParameters<typeof AgentPressPartnerStrategy>[0]['partnerMcp'] & object,
) {
  const passport = newPassport()
  passport.use(
    new AgentPressPartnerStrategy(
      { partnerMcp: partnerMcp as never, realm: REALM, resourceMetadataUrl: PRM },
      async (claims: PartnerTokenClaims) => ({ sub: claims.sub }),
    ),
  )
  return buildApp(stack, [
    {
      path: '/mcp',
      handlers: [passport.authenticate('agentpress-partner', { session: false }), echoUser],
    },
  ])
}

function hookApp(stack: Stack, hooks: MockAgentPress, secret: string) {
  const passport = newPassport()
  const strategy = new AgentPressPartnerStrategy(
    { partnerMcp: { ...hooks.partnerMcp, clock } },
    async () => ({}),
  )
  passport.use(strategy)
  const router = createKeyRotationRouter({
    webhookSecret: secret,
    strategy,
    clock,
    bodyTimeoutMs: 400,
  })
  // Mounted with use(path, router), as the README says: the framework strips the mount path.
  if (stack === 'connect')
    return buildApp('connect', [{ path: '/webhooks/agentpress/key-rotation', handlers: [router] }])
  const app = stack === 'express4' ? express4() : express5()
  app.use('/webhooks/agentpress/key-rotation', router)
  return app
}

/** finalhandler logs 5xx errors with console.error; keep the run quiet (and the lines, if needed). */
function silenceErrorLogs(): { lines: string[] } {
  const state = { lines: [] as string[] }
  let original: typeof console.error
  before(() => {
    original = console.error
    console.error = (...args: unknown[]) => {
      state.lines.push(args.map(String).join(' '))
    }
  })
  after(() => {
    console.error = original
  })
  return state
}
