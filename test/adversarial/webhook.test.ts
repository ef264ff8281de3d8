// The adversarial catalogue's webhook attacks (ATTACKS.md, §5) as one table, HOOK_ROWS, each
// row sent over a real socket to the key-rotation router on Express 5, Express 4 and Connect, plus
// the attacks that need their own app. Every row asserts the exact status and body and how many
// JWKS refreshes it caused. Shared setup: catalogue-support.ts.
import { expect } from 'chai'
import express5 from 'express'
import { newEd25519KeyPair } from '../../lib/testing/ed25519-key.js'
import type { IncomingMessage } from 'node:http'
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
import { newPassport, STACKS } from '../support/stacks.js'
import { signRaw } from '../support/tokens.js'
import { listen, rawRequest, send, sleep, type Listening } from '../support/wire.js'
import {
  catalogueSuite,
  clock,
  echoUser,
  expectAnswer,
  hookApp,
  NOW,
  PRM,
  REALM,
} from './catalogue-support.js'

describe('adversarial catalogue over HTTP: webhook attacks through the key-rotation router', function () {
  this.timeout(60_000)
  const live = catalogueSuite()

  const SECRET = 'whsec_catalogue0123456789abcdef000'
  const OTHER_SECRET = 'whsec_anothersecret01234567890'
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
    out_of_window: refusal(401, 'timestamp_out_of_window', 'Timestamp outside the accepted window'),
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
        ['base64 of the MAC', (m: string) => `sha256=${Buffer.from(m, 'hex').toString('base64')}`],
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
      title: 'body: another type naming both kids, signed → 200, refreshed (§5)',
      request: () => {
        const b = JSON.stringify(event({ type: 'key_rotation' }))
        return { headers: signed(b), body: b }
      },
      want: R.ok,
      refreshes: 1,
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
        const attacker = newEd25519KeyPair()
        const jwk = {
          ...(attacker.publicKey.export({ format: 'jwk' }) as object),
          kid: 'attacker-kid',
        }
        const b = JSON.stringify(
          event({
            jwksUrl: `${live.trap.url}/jwks.json`,
            jku: `${live.trap.url}/j`,
            keys: [jwk],
            newCurrentKid: 'attacker-kid',
          }),
        )
        const trapped = live.trap.count
        const res = await send(server.port, { path: PATH, headers: signed(b), body: b })
        expect([res.status, res.text]).to.deep.equal([R.ok.status, R.ok.body])
        expect(live.trap.count - trapped).to.equal(0)
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
