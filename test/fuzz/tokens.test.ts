// Property-based fuzzing of the bearer path (fast-check, seeded, FUZZ_RUNS): arbitrary
// Authorization headers (bytes on a raw socket, and printable values through Node's client) and
// tokens mutated from valid ones, through a real Express 5 app with plain passport.authenticate()
// and with the JSON body option. Properties: the status is in §4's set and never 500, every
// header is a valid header value, the challenge and body come from the fixed vocabulary, a
// mutated token never verifies, and the process never sees an unhandled rejection or exception.
import { expect } from 'chai'
import express from 'express'
import fc from 'fast-check'
import { newEd25519KeyPair } from '../../lib/testing/ed25519-key.js'
import {
  AgentPressPartnerStrategy,
  PartnerTokenError,
  PartnerTokenVerifier,
  type PartnerTokenClaims,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { finalhandlerPage, newPassport, passportJson } from '../support/stacks.js'
import { enc, L, signRaw, split } from '../support/tokens.js'
import {
  crashWatch,
  listen,
  quietErrors,
  rawRequest,
  send,
  VALID_HEADER_VALUE,
  type Listening,
  type WireResponse,
} from '../support/wire.js'
import { FUZZ_RUNS, params, suiteTimeout } from './config.js'
import { SPEC_DESCRIPTIONS } from '../support/spec.js'

const REALM = 'mcp'
const DESCRIPTIONS: Record<string, string> = SPEC_DESCRIPTIONS
const INVALID_REQUEST = `Bearer realm="${REALM}", error="invalid_request", error_description="Malformed authorization header"`
const NO_CREDENTIALS = `Bearer realm="${REALM}"`
const TOKEN_CHALLENGES = new Set(
  Object.values(DESCRIPTIONS).map(
    (d) => `Bearer realm="${REALM}", error="invalid_token", error_description="${d}"`,
  ),
)

/** Everything that must hold for any refused request, whichever route answered. */
function expectRefusal(res: WireResponse, route: '/mcp' | '/mcp-json'): void {
  for (const [name, value] of res.lines) {
    expect(VALID_HEADER_VALUE.test(value), `${name}: ${JSON.stringify(value)}`).to.equal(true)
  }
  const challenges = res.all('www-authenticate')
  if (res.status === 400 && challenges.length === 0) {
    // Refused by Node's parser before the app (invalid bytes in a header): no body, connection closed.
    expect(res.get('connection')).to.equal('close')
    expect(res.text).to.equal('')
    return
  }
  expect([400, 401], `status ${res.status}: ${res.text}`).to.include(res.status)
  expect(challenges).to.have.length(1)
  const challenge = challenges[0]!
  // The status, the challenge and the body are one of §4's fixed triples.
  let expectedBody: { error: string; error_description: string }
  if (res.status === 400) {
    expect(challenge).to.equal(INVALID_REQUEST)
    expectedBody = { error: 'invalid_request', error_description: 'Malformed authorization header' }
  } else if (challenge === NO_CREDENTIALS) {
    expectedBody = { error: 'no_credentials', error_description: 'No credentials' }
  } else {
    expect(TOKEN_CHALLENGES.has(challenge), challenge).to.equal(true)
    const description = /error_description="([^"]*)"$/.exec(challenge)![1]!
    expectedBody = { error: 'invalid_token', error_description: description }
  }
  if (route === '/mcp') {
    expect(res.text).to.equal(
      res.status === 401
        ? 'Unauthorized'
        : finalhandlerPage('AgentPressHttpError: Malformed authorization header', 400),
    )
  } else {
    expect(res.text).to.equal(JSON.stringify(expectedBody))
  }
}

// ── Mutations of a valid token ───────────────────────────────────────────────────────────────
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const charFrom = fc.constantFrom(...`${B64URL}.=+/~ `.split(''))
const jsonValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 12 }),
  fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
  fc.constantFrom('none', 'HS256', 'EdDSA', '__proto__', 1e308, -0, ''),
)

type Mutation = (token: string) => string
// A mutation that does not apply to what earlier mutations left (no such segment, not JSON any
// more) leaves the token unchanged.
const safe =
  (apply: Mutation): Mutation =>
  (t) => {
    try {
      return apply(t)
    } catch {
      return t
    }
  }
const mutation: fc.Arbitrary<{ name: string; apply: Mutation }> = fc.oneof(
  fc.tuple(fc.nat(), charFrom).map(([i, c]) => ({
    name: `replace @${i} by ${JSON.stringify(c)}`,
    apply: (t: string) => t.slice(0, i % t.length) + c + t.slice((i % t.length) + 1),
  })),
  fc.tuple(fc.nat(), charFrom).map(([i, c]) => ({
    name: `insert ${JSON.stringify(c)} @${i}`,
    apply: (t: string) => t.slice(0, i % (t.length + 1)) + c + t.slice(i % (t.length + 1)),
  })),
  fc.nat().map((i) => ({
    name: `delete @${i}`,
    apply: (t: string) => t.slice(0, i % t.length) + t.slice((i % t.length) + 1),
  })),
  fc.nat().map((i) => ({ name: `truncate @${i}`, apply: (t: string) => t.slice(0, i % t.length) })),
  fc
    .tuple(fc.integer({ min: 0, max: 2 }), fc.nat(), fc.integer({ min: 0, max: 7 }))
    .map(([seg, byte, bit]) => ({
      name: `flip bit ${bit} of byte ${byte} in segment ${seg}`,
      apply: (t: string) => {
        const parts = split(t)
        const bytes = Buffer.from(parts[seg]!, 'base64url')
        bytes[byte % bytes.length]! ^= 1 << bit
        parts[seg] = bytes.toString('base64url')
        return parts.join('.')
      },
    })),
  fc
    .tuple(fc.constantFrom(0, 1), fc.string({ maxLength: 8 }), jsonValue)
    .map(([seg, member, value]) => ({
      name: `set ${seg === 0 ? 'header' : 'payload'}.${member} = ${JSON.stringify(value)}`,
      apply: (t: string) => {
        const parts = split(t)
        const json = JSON.parse(Buffer.from(parts[seg]!, 'base64url').toString()) as Record<
          string,
          unknown
        >
        json[member] = value
        parts[seg] = enc(json)
        return parts.join('.')
      },
    })),
  fc.constantFrom<[number, number]>([0, 1], [1, 2], [0, 2]).map(([a, b]) => ({
    name: `swap segments ${a} and ${b}`,
    apply: (t: string) => {
      const parts = split(t)
      ;[parts[a], parts[b]] = [parts[b]!, parts[a]!]
      return parts.join('.')
    },
  })),
  fc.constantFrom(0, 1, 2).map((seg) => ({
    name: `duplicate segment ${seg}`,
    apply: (t: string) => {
      const parts: string[] = split(t)
      parts.splice(seg, 0, parts[seg]!)
      return parts.join('.')
    },
  })),
  fc.constant({
    name: 'S + L',
    apply: (t: string) => {
      const sig = Buffer.from(split(t)[2], 'base64url')
      let s = 0n
      for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!)
      s += L
      for (let i = 32; i < 64; i++) {
        sig[i] = Number(s & 0xffn)
        s >>= 8n
      }
      return `${split(t).slice(0, 2).join('.')}.${sig.toString('base64url')}`
    },
  }),
  fc.constantFrom('=', '==', '.', ' ', '\t').map((suffix) => ({
    name: `append ${JSON.stringify(suffix)}`,
    apply: (t: string) => `${t}${suffix}`,
  })),
)
const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 })

describe('fuzzing the bearer path (fast-check)', function () {
  this.timeout(suiteTimeout(FUZZ_RUNS * 12))
  const watch = crashWatch()
  quietErrors()
  let mock: MockAgentPress
  let server: Listening
  let verifier: PartnerTokenVerifier
  const now = Date.UTC(2026, 10, 21, 12, 0, 0)
  const clock = () => now
  // Intervals (cooldown, max age) on a clock that moves a second per reading: a mutated `kid` is
  // looked up by a refetch at once instead of waiting out a real 5 s cooldown. With the fixed
  // `clock` driving them too, every unknown kid after the first waited 5 s of real time (the two
  // properties below took ~25 s of their 30 s timeout, mostly asleep).
  let ticks = 0
  const monotonicClock = () => (ticks += 1000)

  before(async () => {
    mock = await createMockAgentPress({ clock })
    const passport = newPassport()
    passport.use(
      new AgentPressPartnerStrategy(
        {
          partnerMcp: { ...mock.partnerMcp, clock, monotonicClock },
          realm: REALM,
          resourceMetadataUrl: false,
        },
        async (claims: PartnerTokenClaims) => ({ sub: claims.sub }),
      ),
    )
    const app = express()
    app.post(
      '/mcp',
      passport.authenticate('agentpress-partner', { session: false }),
      (_req, res) => {
        res.json({ ok: true })
      },
    )
    app.post('/mcp-json', passportJson(passport, { body: 'json' }), (_req, res) => {
      res.json({ ok: true })
    })
    server = await listen(app)
    verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock, monotonicClock })
  })
  after(async () => {
    await server.close()
    await mock.close()
  })
  afterEach(() => {
    expect(watch.crashes, 'no unhandled rejection or uncaught exception').to.deep.equal([])
  })

  it('control: the genuine token is accepted on both routes', async () => {
    for (const path of ['/mcp', '/mcp-json']) {
      const res = await send(server.port, {
        path,
        headers: [['Authorization', `Bearer ${mock.signToken()}`]],
        body: '',
      })
      expect([res.status, res.text]).to.deep.equal([200, '{"ok":true}'])
    }
  })

  it('arbitrary Authorization bytes on a raw socket → Node’s 400, or 400/401 with a fixed challenge', async () => {
    // Any byte but CR and LF (which would end the line and frame another header, a client bug,
    // not an input the server sees as one value).
    const byte = fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x0d && b !== 0x0a)
    const value = fc.oneof(
      fc.array(byte, { maxLength: 300 }).map((b) => Buffer.from(b)),
      fc
        .tuple(
          fc.constantFrom('Bearer ', 'bearer ', 'Basic ', 'Bearer  ', ''),
          fc.array(byte, { maxLength: 120 }),
        )
        .map(([prefix, b]) => Buffer.concat([Buffer.from(prefix), Buffer.from(b)])),
    )
    await fc.assert(
      fc.asyncProperty(
        value,
        fc.constantFrom('/mcp' as const, '/mcp-json' as const),
        async (bytes, route) => {
          const head = Buffer.concat([
            Buffer.from(`POST ${route} HTTP/1.1\r\nHost: x\r\nAuthorization: `),
            bytes,
            Buffer.from('\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
          ])
          const res = await rawRequest(server.port, head)
          expectRefusal(res, route)
        },
      ),
      params(2),
    )
  })

  it('arbitrary printable Authorization values (one or two lines) → 400/401 with a fixed challenge', async () => {
    const printable = fc.string({
      unit: fc.constantFrom(...'aZ9-._~+/= "\\,:;\'é\tÿ'.split(''), ...B64URL.split('')),
      maxLength: 200,
    })
    const line = fc
      .tuple(fc.constantFrom('Bearer ', 'BEARER ', 'Bearer', 'Basic ', 'Token ', ''), printable)
      .map(([a, b]) => `${a}${b}`)
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { minLength: 1, maxLength: 2 }),
        fc.constantFrom('/mcp' as const, '/mcp-json' as const),
        async (lines, route) => {
          const res = await send(server.port, {
            path: route,
            headers: lines.map((l) => ['Authorization', l] as const),
            body: '',
          })
          expectRefusal(res, route)
        },
      ),
      params(2),
    )
  })

  it('mutated valid tokens never verify over HTTP: 400/401 with a fixed challenge, never 200 or 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        mutations,
        fc.constantFrom('/mcp' as const, '/mcp-json' as const),
        async (list, route) => {
          const original = mock.signToken()
          const mutated = list.reduce((t, m) => safe(m.apply)(t), original)
          // Spaces before the token and OWS after it are not part of the value (RFC 6750 §2.1,
          // RFC 9110 §5.5): such a "mutation" is the genuine token and rightly verifies.
          fc.pre(mutated.replace(/^ +/, '').replace(/[ \t]+$/, '') !== original)
          // A value Node's client refuses to send (none of the mutations produce one) would throw here.
          const res = await send(server.port, {
            path: route,
            headers: [['Authorization', `Bearer ${mutated}`]],
            body: '',
          })
          expectRefusal(res, route)
          if (res.status === 401) {
            // The HTTP refusal names the reason the core verifier gives for the token as it
            // arrives (without the spaces and OWS around it).
            const arrived = mutated.replace(/^ +/, '').replace(/[ \t]+$/, '')
            const reason = await verifier.verifyToken(arrived).then(
              () => 'verified',
              (err: unknown) => (err instanceof PartnerTokenError ? err.reason : String(err)),
            )
            expect(res.all('www-authenticate')).to.deep.equal([
              `Bearer realm="${REALM}", error="invalid_token", error_description="${DESCRIPTIONS[reason]}"`,
            ])
          }
        },
      ),
      params(3),
    )
  })

  it('mutated valid tokens never verify in the core: always a PartnerTokenError (never an outage or a crash)', async () => {
    await fc.assert(
      fc.asyncProperty(mutations, async (list) => {
        const original = mock.signToken()
        const mutated = list.reduce((t, m) => safe(m.apply)(t), original)
        fc.pre(mutated !== original)
        const outcome = await verifier.verifyToken(mutated).then(
          () => 'verified',
          (err: unknown) =>
            err instanceof PartnerTokenError ? err.reason : `other: ${String(err)}`,
        )
        expect(
          Object.keys(DESCRIPTIONS),
          `${list.map((m) => m.name).join(' + ')} → ${outcome}`,
        ).to.include(outcome)
      }),
      params(10),
    )
  })

  it('tokens built from arbitrary header and payload JSON, signed with the genuine key, never crash and answer from the fixed set', async () => {
    const key = mock.keys.at(-1)!
    const other = newEd25519KeyPair().privateKey
    const member = fc.constantFrom(
      'alg',
      'kid',
      'typ',
      'crit',
      'jku',
      'b64',
      'cty',
      '__proto__',
      'constructor',
    )
    const claim = fc.constantFrom(
      'iss',
      'aud',
      'sub',
      'jti',
      'scope',
      'iat',
      'exp',
      'nbf',
      'ext_provider',
      '__proto__',
    )
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(member, jsonValue, { maxKeys: 4 }),
        fc.dictionary(claim, jsonValue, { maxKeys: 4 }),
        fc.boolean(),
        async (headerChanges, claimChanges, genuine) => {
          const header: Record<string, unknown> = { alg: 'EdDSA', typ: 'JWT', kid: key.kid }
          const base = JSON.parse(
            Buffer.from(split(mock.signToken())[1], 'base64url').toString(),
          ) as Record<string, unknown>
          const token = signRaw(
            genuine ? key.privateKey : other,
            JSON.stringify(Object.assign(header, headerChanges)),
            JSON.stringify(Object.assign(base, claimChanges)),
          )
          const res = await send(server.port, {
            path: '/mcp-json',
            headers: [['Authorization', `Bearer ${token}`]],
            body: '',
          })
          if (res.status === 200) {
            // Only a genuine signature over claims that still satisfy §2 may pass.
            expect(genuine).to.equal(true)
            const outcome = await verifier.verifyToken(token).then(
              () => 'ok',
              () => 'refused',
            )
            expect(outcome).to.equal('ok')
            return
          }
          expectRefusal(res, '/mcp-json')
          if (!genuine) expect(res.status).to.equal(401)
        },
      ),
      params(2),
    )
  })
})
