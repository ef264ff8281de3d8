// The adversarial catalogue's token attacks (ATTACKS.md, RFC 8725, §2, §4) as one table,
// TOKEN_ROWS, each row sent over a real socket to plain passport.authenticate() on Express 5,
// Express 4 and Connect. Every row asserts the exact status, the exact WWW-Authenticate line(s) and
// the exact body, and that nothing sent (token, segment, kid) comes back. Shared setup and the
// expected answers: catalogue-support.ts.
import { expect } from 'chai'
import { createPublicKey, sign as edSign, type KeyObject } from 'node:crypto'
import { STACKS } from '../support/stacks.js'
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
import { listen, rawRequest, send, type Listening } from '../support/wire.js'
import {
  advanceMonotonicClock,
  catalogueSuite,
  challengeOf,
  contextFor,
  expectAnswer,
  NOW,
  tokenApp,
  type Ctx,
  type Expected,
} from './catalogue-support.js'

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
    'Ed448',
    'eddsa',
    'EDDSA',
    'EdDSA ',
    ' EdDSA',
    'EdDSA\u0000',
    // RFC 9864's name is accepted exactly as written (§2): no case folding, no trimming.
    'ed25519',
    'ED25519',
    'Ed25519 ',
    'Ed25519\u0000',
    'Ed25519ph',
  ].map((alg) =>
    row(`alg ${JSON.stringify(alg)} → alg_not_allowed`, 'alg_not_allowed', (c) =>
      signRaw(c.key, c.header({ alg }), c.claims()),
    ),
  ),
  // RFC 9864 §2: `Ed25519` is EdDSA over Ed25519, fully specified; the key (published as `EdDSA`)
  // verifies it (§2: header and key may name the algorithm differently).
  row('alg "Ed25519" (RFC 9864) with a key labelled "EdDSA" → 200', { user: 'user-123' }, (c) =>
    signRaw(c.key, c.header({ alg: 'Ed25519' }), c.claims()),
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

  // Structure (§2) as the HTTP layer sees it: non-b64token values stop at 400 first.
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
  // §2 bounds the lifetime from above only; exp and iat are each held to the clock tolerance.
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
    'forged with a foreign issuer → issuer_mismatch (the issuer pre-filter, §2)',
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

describe('adversarial catalogue over HTTP: token attacks through plain passport.authenticate()', function () {
  this.timeout(60_000)
  const live = catalogueSuite()

  for (const stack of STACKS) {
    describe(stack, () => {
      let server: Listening
      let ctx: Ctx
      before(async () => {
        ctx = contextFor(live.mock, live.trap)
        server = await listen(tokenApp(stack, live.mock))
      })
      after(async () => {
        await server.close()
        // Not one row made anything fetch a URL a token named.
        expect(live.trap.count, 'requests the trap server received').to.equal(0)
      })

      for (const r of TOKEN_ROWS) {
        it(r.title, async () => {
          advanceMonotonicClock(10_000) // past the default 5 s kid-miss cooldown
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
      ctx = contextFor(live.mock, live.trap)
      server = await listen(tokenApp('express5', live.mock))
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
        const before = live.mock.jwksRequestCount
        const token = build(ctx)
        const res = await send(server.port, {
          path: '/mcp',
          headers: [['Authorization', `Bearer ${token}`]],
          body: '',
        })
        expectAnswer(res, expected, [token])
        expect(live.mock.jwksRequestCount - before).to.equal(0)
      })
    }
  })

  describe('what Node refuses before the app (the server survives each)', () => {
    let server: Listening
    let ctx: Ctx
    before(async () => {
      ctx = contextFor(live.mock, live.trap)
      server = await listen(tokenApp('express5', live.mock))
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
        challengeOf('error="invalid_request", error_description="Malformed authorization header"'),
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
