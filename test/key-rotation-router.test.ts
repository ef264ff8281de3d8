import { request as httpRequest, createServer, type RequestListener, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import { expect } from 'chai'
import connect from 'connect'
import express from 'express'
import passport from 'passport'
import request from 'supertest'
import {
  PartnerTokenVerifier,
  type KeyRotationEvent,
  type TokenVerifier,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import {
  AgentPressPartnerStrategy,
  KEY_ROTATION_ERRORS,
  createKeyRotationRouter,
  type KeyRotationVerifyErrorReason,
  type KeyRotationRouterOptions,
} from 'passport-agentpress-partner'
import {
  computeWebhookSignature,
  deliverWebhook,
  signWebhook,
} from 'passport-agentpress-partner/testing'
import { startCountingServer } from './support/servers.js'

// Express 4 is installed under an npm alias and ships no types of its own: same API surface here.
const express4 = createRequire(import.meta.url)('express4') as typeof express

const PATH = '/webhooks/agentpress/key-rotation'
const SECRET = 'whsec_router_test_0123456789'
const OTHER_SECRET = 'whsec_router_other_0123456789'
const ISSUER_A = 'https://api.agent.press/orgs/acme-org'
const ISSUER_B = 'https://stg-api.agent.press/orgs/acme-org'
const T0 = 1_700_000_000

const EVENT: KeyRotationEvent = Object.freeze({
  id: 'evt_2f6c1d0e',
  type: 'signing_key_rotation',
  issuer: ISSUER_A,
  retiredKid: 'ap-2026-08',
  newCurrentKid: 'ap-2026-11',
  emergency: false,
  occurredAt: '2026-11-21T10:00:00Z',
})

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A TokenVerifier double that records what the router asked of it. */
class FakeVerifier implements TokenVerifier {
  readonly log: string[] = []
  refreshes = 0
  fail = false
  delayMs = 0
  hang = false
  constructor(readonly issuer?: string) {}
  async verifyToken(): Promise<never> {
    throw new Error('not used by the router')
  }
  async refreshJwks(): Promise<void> {
    this.refreshes++
    this.log.push('refresh')
    if (this.hang) await new Promise(() => {})
    if (this.delayMs > 0) await sleep(this.delayMs)
    if (this.fail) throw new Error('JWKS down')
  }
  revokeKid(kid: string): void {
    this.log.push(`revoke:${kid}`)
  }
}

type Setup = 'none' | 'json' | 'json-verify' | 'raw' | 'text' | 'json-after'

interface Framework {
  readonly name: string
  create(router: ReturnType<typeof createKeyRotationRouter>, setup: Setup): RequestListener
}

function expressFramework(name: string, lib: typeof express): Framework {
  return {
    name,
    create(router, setup) {
      const app = lib()
      app.get('/ping', (_req, res) => {
        res.send('pong')
      })
      if (setup === 'json') app.use(lib.json())
      if (setup === 'json-verify') {
        app.use(
          lib.json({
            verify: (req, _res, buf) => {
              ;(req as typeof req & { rawBody?: Buffer }).rawBody = buf
            },
          }),
        )
      }
      if (setup === 'raw') app.use(lib.raw({ type: '*/*' }))
      if (setup === 'text') app.use(lib.text({ type: '*/*' }))
      app.use(PATH, router as express.RequestHandler)
      if (setup === 'json-after') app.use(lib.json())
      app.use((_req: express.Request, res: express.Response) => {
        res.status(404).json({ fellThrough: true })
      })
      const onError: express.ErrorRequestHandler = (err, _req, res, _next) => {
        errors.push(err)
        res.status(599).end()
      }
      app.use(onError)
      return app as unknown as RequestListener
    },
  }
}

const connectFramework: Framework = {
  name: 'Connect',
  create(router) {
    const app = connect()
    app.use('/ping', (_req, res) => {
      res.end('pong')
    })
    app.use(PATH, router as connect.NextHandleFunction)
    app.use((_req: unknown, res: import('node:http').ServerResponse) => {
      res.statusCode = 404
      res.setHeader('content-type', 'application/json')
      res.end('{"fellThrough":true}')
    })
    app.use(((err: unknown, _req: unknown, res: import('node:http').ServerResponse) => {
      errors.push(err)
      res.statusCode = 599
      res.end()
    }) as connect.ErrorHandleFunction)
    return app as unknown as RequestListener
  },
}

const FRAMEWORKS: readonly Framework[] = [
  expressFramework('Express 5', express),
  expressFramework('Express 4', express4),
  connectFramework,
]

/** Errors that reached the app's error handler: the router must never produce one. */
let errors: unknown[] = []
const servers: Server[] = []

async function listen(listener: RequestListener): Promise<{ url: string; port: number }> {
  const server = createServer(listener)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, port }
}

afterEach(async () => {
  expect(errors, 'errors passed to next()').to.deep.equal([])
  errors = []
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        }),
    ),
  )
})

const refusal = (reason: KeyRotationVerifyErrorReason) => ({
  error: reason,
  error_description: KEY_ROTATION_ERRORS[reason].description,
})

interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: unknown
}

/**
 * A raw HTTP request for what supertest cannot express: chunked bodies, a lying or absent
 * Content-Length, slow drips and aborts. `write` drives the request body and may end it.
 */
function rawRequest(
  port: number,
  headers: Record<string, string | number>,
  write: (req: import('node:http').ClientRequest) => void | Promise<void>,
  { method = 'POST', path = PATH } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const target = { host: '127.0.0.1', port, method, path, headers, agent: false }
    const req = httpRequest(target, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch {
          // keep text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
        req.destroy()
      })
    })
    // The server may close while we are still writing: that is the point of some tests.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error)
    })
    Promise.resolve(write(req)).catch(reject)
  })
}

for (const framework of FRAMEWORKS) {
  describe(`createKeyRotationRouter in ${framework.name}`, () => {
    let now = T0 * 1000
    const clock = (): number => now
    let verifier: FakeVerifier

    beforeEach(() => {
      now = T0 * 1000
      verifier = new FakeVerifier(ISSUER_A)
    })

    async function app(
      options: Partial<KeyRotationRouterOptions> = {},
      setup: Setup = 'none',
    ): Promise<{ url: string; port: number }> {
      // `options` may swap verifiers for a strategy; the runtime checks are what some tests test.
      const router = createKeyRotationRouter({
        webhookSecret: SECRET,
        verifiers: [verifier],
        clock,
        ...options,
      } as KeyRotationRouterOptions)
      return listen(framework.create(router, setup))
    }

    const sign = (
      event: unknown = EVENT,
      options: { timestamp?: string | number; secret?: string } = {},
    ) =>
      signWebhook(event as KeyRotationEvent, {
        clock,
        ...options,
        secret: options.secret ?? SECRET,
      })

    const post = (url: string, body: string | Buffer, headers: Record<string, string>) =>
      request(url).post(PATH).set(headers).send(body)

    describe('every refusal of SPEC §5 from a real request', () => {
      it('a valid delivery → 200 {"received":true} and one refresh', async () => {
        const { url } = await app()
        const { body, headers } = sign()
        const res = await post(url, body, headers)
        expect(res.status).to.equal(200)
        expect(res.body).to.deep.equal({ received: true })
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
        expect(res.headers['cache-control']).to.equal('no-store')
        expect(verifier.log).to.deep.equal(['refresh'])
      })

      it('missing timestamp → 401 missing_timestamp', async () => {
        const { url } = await app()
        const { body, headers } = sign()
        delete headers['X-AgentPress-Timestamp']
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([401, refusal('missing_timestamp')])
      })

      it('missing signature → 401 missing_signature', async () => {
        const { url } = await app()
        const { body, headers } = sign()
        delete headers['X-AgentPress-Signature']
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([401, refusal('missing_signature')])
      })

      // Node strips the optional whitespace around a header value (RFC 9110 §5.5), so surrounding
      // spaces never reach the router; a space inside the value does. The core test covers both.
      const garbage = ['1.5', `+${T0}`, `${T0}abc`, '17000 00000', `-${T0}`, '0x6553f100']
      for (const timestamp of garbage) {
        it(`garbage timestamp ${JSON.stringify(timestamp)} → 401 invalid_timestamp`, async () => {
          const { url } = await app()
          const { body, headers } = sign(EVENT, { timestamp })
          const res = await post(url, body, headers)
          expect([res.status, res.body]).to.deep.equal([401, refusal('invalid_timestamp')])
        })
      }

      it('±301 s → 401 timestamp_out_of_window; ±300 s → 200', async () => {
        const { url } = await app()
        for (const delta of [-301, 301]) {
          const event = { ...EVENT, id: `evt_${delta}` }
          const { body, headers } = sign(event, { timestamp: T0 + delta })
          const res = await post(url, body, headers)
          expect([res.status, res.body]).to.deep.equal([401, refusal('timestamp_out_of_window')])
        }
        for (const delta of [-300, 300]) {
          const event = { ...EVENT, id: `evt_${delta}` }
          const { body, headers } = sign(event, { timestamp: T0 + delta })
          const res = await post(url, body, headers)
          expect([res.status, res.body]).to.deep.equal([200, { received: true }])
        }
        expect(verifier.refreshes).to.equal(2)
      })

      it('wrong secret → 401 signature_mismatch; a second secret → 200', async () => {
        const { url } = await app({ webhookSecret: [SECRET, OTHER_SECRET] })
        const wrong = sign(EVENT, { secret: 'whsec_nobody_knows_this_one' })
        const res = await post(url, wrong.body, wrong.headers)
        expect([res.status, res.body]).to.deep.equal([401, refusal('signature_mismatch')])
        const second = sign(EVENT, { secret: OTHER_SECRET })
        const ok = await post(url, second.body, second.headers)
        expect([ok.status, ok.body]).to.deep.equal([200, { received: true }])
      })

      it('one body byte changed → 401 signature_mismatch', async () => {
        const { url } = await app()
        const { body, headers } = sign()
        const res = await post(url, body.replace('ap-2026-08', 'ap-2026-09'), headers)
        expect([res.status, res.body]).to.deep.equal([401, refusal('signature_mismatch')])
        expect(verifier.refreshes).to.equal(0)
      })

      it('a re-serialised body → 401 signature_mismatch', async () => {
        const { url } = await app()
        const { body, headers } = sign(JSON.stringify(EVENT, null, 2))
        const res = await post(url, JSON.stringify(JSON.parse(body)), headers)
        expect([res.status, res.body]).to.deep.equal([401, refusal('signature_mismatch')])
      })

      const badSignatures: Array<[string, (mac: string) => string]> = [
        [
          'one signature character changed',
          (mac) => `${mac.slice(0, -1)}${mac.endsWith('0') ? '1' : '0'}`,
        ],
        ['63 hex characters', (mac) => mac.slice(0, -1)],
        ['65 hex characters', (mac) => `${mac}0`],
        ['non-hex', (mac) => `${mac.slice(0, -2)}zz`],
        ['upper-case hex', (mac) => mac.toUpperCase().replace('SHA256=', 'sha256=')],
        [
          'nine entries (the good one last)',
          (mac) => [...Array(8).fill(`sha256=${'0'.repeat(64)}`), mac].join(', '),
        ],
      ]
      for (const [label, mutate] of badSignatures) {
        it(`${label} → 401 signature_mismatch`, async () => {
          const { url } = await app()
          const { body, headers } = sign()
          headers['X-AgentPress-Signature'] = mutate(headers['X-AgentPress-Signature'] as string)
          const res = await post(url, body, headers)
          expect([res.status, res.body]).to.deep.equal([401, refusal('signature_mismatch')])
        })
      }

      it('a bad entry beside a good one, and two signature header lines → 200', async () => {
        const { port } = await app()
        const { body, headers } = sign()
        const good = headers['X-AgentPress-Signature'] as string
        const res = await rawRequest(port, {}, (req) => {
          req.setHeader('Content-Type', 'application/json')
          req.setHeader('X-AgentPress-Timestamp', String(T0))
          // Two header lines: Node joins unknown duplicate headers with ", ".
          req.setHeader('X-AgentPress-Signature', [`sha256=${'f'.repeat(64)}`, good])
          req.end(body)
        })
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })

      it('8193 bytes with Content-Length → 413 payload_too_large', async () => {
        const { url } = await app()
        const padded = JSON.stringify(EVENT) + ' '.repeat(8193 - JSON.stringify(EVENT).length)
        const { body, headers } = sign(padded)
        expect(Buffer.byteLength(body)).to.equal(8193)
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([413, refusal('payload_too_large')])
        expect(res.headers.connection).to.equal('close')
      })

      it('8192 bytes → 200', async () => {
        const { url } = await app()
        const padded = JSON.stringify(EVENT) + ' '.repeat(8192 - JSON.stringify(EVENT).length)
        const { body, headers } = sign(padded)
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })

      it('8193 bytes chunked, without Content-Length → 413 while streaming', async () => {
        const { port } = await app()
        const padded = JSON.stringify(EVENT) + ' '.repeat(8193 - JSON.stringify(EVENT).length)
        const { body, headers } = sign(padded)
        const res = await rawRequest(port, headers, (req) => {
          expect(req.getHeader('content-length')).to.equal(undefined)
          req.write(body.slice(0, 4000))
          req.write(body.slice(4000))
          req.end()
        })
        expect([res.status, res.body]).to.deep.equal([413, refusal('payload_too_large')])
        expect(verifier.refreshes).to.equal(0)
      })

      it('an endless chunked body is cut off at the cap', async () => {
        const { port } = await app()
        const { headers } = sign()
        let written = 0
        const res = await rawRequest(port, headers, async (req) => {
          // Bounded: 64 × 1 KB, far past the cap; the answer comes long before the end.
          for (let i = 0; i < 64 && !req.destroyed; i++) {
            req.write(Buffer.alloc(1024, 0x20))
            written += 1024
            await sleep(5)
          }
        })
        expect([res.status, res.body]).to.deep.equal([413, refusal('payload_too_large')])
        expect(written).to.be.greaterThan(8192)
      })

      it('a Content-Length above the cap → 413 at once, before any byte is sent', async () => {
        const { port } = await app()
        const { headers } = sign()
        const res = await rawRequest(port, { ...headers, 'Content-Length': 1_000_000 }, (req) => {
          req.flushHeaders()
        })
        expect([res.status, res.body]).to.deep.equal([413, refusal('payload_too_large')])
      })

      for (const [encoding, compress] of [
        ['gzip', gzipSync],
        ['deflate', deflateSync],
        ['br', brotliCompressSync],
        ['GZIP', gzipSync],
      ] as const) {
        it(`Content-Encoding: ${encoding} → 415 unsupported_encoding`, async () => {
          const { url } = await app()
          const compressed = compress(Buffer.from(JSON.stringify(EVENT)))
          const headers = {
            'Content-Type': 'application/json',
            'Content-Encoding': encoding,
            'X-AgentPress-Timestamp': String(T0),
            'X-AgentPress-Signature': computeWebhookSignature(SECRET, T0, compressed),
          }
          const res = await post(url, compressed, headers)
          expect([res.status, res.body]).to.deep.equal([415, refusal('unsupported_encoding')])
          expect(verifier.refreshes).to.equal(0)
        })
      }

      it('Content-Encoding: identity is accepted', async () => {
        const { url } = await app()
        const { body, headers } = sign()
        const res = await post(url, body, { ...headers, 'Content-Encoding': 'identity' })
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })

      const invalid: Array<[string, string]> = [
        ['empty body', ''],
        ['non-JSON', 'rotation please'],
        ['wrong type', JSON.stringify({ ...EVENT, type: 'signing_key_created' })],
        ['missing id', JSON.stringify({ ...EVENT, id: undefined })],
        ['missing retiredKid', JSON.stringify({ ...EVENT, retiredKid: undefined })],
        ['missing newCurrentKid', JSON.stringify({ ...EVENT, newCurrentKid: undefined })],
        ['missing type', JSON.stringify({ ...EVENT, type: undefined })],
      ]
      for (const [label, raw] of invalid) {
        it(`${label} (correctly signed) → 400 invalid_payload`, async () => {
          const { url } = await app()
          const { body, headers } = sign(raw)
          const res = await post(url, body, headers)
          expect([res.status, res.body]).to.deep.equal([400, refusal('invalid_payload')])
          expect(verifier.refreshes).to.equal(0)
        })
      }

      it('a body with invalid UTF-8, a BOM and CRLF verifies exactly as signed', async () => {
        const { port } = await app()
        const json = JSON.stringify(EVENT).replace('{', '{\r\n  "note": "NOTE",\r\n  ')
        const [head, tail] = json.split('NOTE') as [string, string]
        const bytes = Buffer.concat([
          Buffer.from([0xef, 0xbb, 0xbf]),
          Buffer.from(head),
          Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
          Buffer.from(`${tail}\r\n`),
        ])
        const headers = {
          'Content-Type': 'application/json',
          'X-AgentPress-Timestamp': String(T0),
          'X-AgentPress-Signature': computeWebhookSignature(SECRET, T0, bytes),
        }
        const res = await rawRequest(port, headers, (req) => {
          req.end(bytes)
        })
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })
    })

    describe('routing', () => {
      for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        it(`${method} → 405 with Allow: POST`, async () => {
          const { url } = await app()
          const res = await request(url)[method.toLowerCase() as 'get'](PATH)
          expect(res.status).to.equal(405)
          expect(res.headers.allow).to.equal('POST')
          expect(res.body).to.deep.equal({
            error: 'method_not_allowed',
            error_description: 'Only POST is allowed',
          })
        })
      }

      it('HEAD → 405 with Allow: POST and no body', async () => {
        const { url } = await app()
        const res = await request(url).head(PATH)
        expect(res.status).to.equal(405)
        expect(res.headers.allow).to.equal('POST')
        // The headers of the GET refusal, without its body.
        expect(res.text).to.equal(undefined)
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
        const get = JSON.stringify({
          error: 'method_not_allowed',
          error_description: 'Only POST is allowed',
        })
        expect(res.headers['content-length']).to.equal(String(Buffer.byteLength(get)))
        expect(verifier.refreshes).to.equal(0)
      })

      it('another sub-path goes to next()', async () => {
        const { url } = await app()
        const { body, headers } = sign()
        const res = await request(url).post(`${PATH}/other`).set(headers).send(body)
        expect([res.status, res.body]).to.deep.equal([404, { fellThrough: true }])
        expect(verifier.refreshes).to.equal(0)
      })

      it('a query string on the mount path is still ours', async () => {
        const { url } = await app()
        const { body, headers } = sign()
        const res = await request(url).post(`${PATH}?attempt=2`).set(headers).send(body)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })
    })

    describe('body parsers mounted before the router', () => {
      if (framework.name === 'Connect') return

      it('express.json() first → 500 body_already_parsed naming the fix', async () => {
        const { url } = await app({}, 'json')
        const { body, headers } = sign()
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([500, refusal('body_already_parsed')])
        expect(res.body.error_description).to.include('Mount the router before express.json()')
        expect(res.body.error_description).to.include('req.rawBody')
        expect(verifier.refreshes).to.equal(0)
      })

      it('express.text() first → 500 body_already_parsed (text is not bytes)', async () => {
        const { url } = await app({}, 'text')
        const { body, headers } = sign()
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([500, refusal('body_already_parsed')])
      })

      it('express.json({ verify }) keeping req.rawBody → 200', async () => {
        const { url } = await app({}, 'json-verify')
        const { body, headers } = sign()
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })

      it('express.json({ verify }) and a gzip body → 415 (raw copy inflated)', async () => {
        const { port } = await app({}, 'json-verify')
        const compressed = gzipSync(Buffer.from(JSON.stringify(EVENT)))
        const headers = {
          'Content-Type': 'application/json',
          'Content-Encoding': 'gzip',
          'X-AgentPress-Timestamp': String(T0),
          'X-AgentPress-Signature': computeWebhookSignature(SECRET, T0, JSON.stringify(EVENT)),
        }
        const res = await rawRequest(port, headers, (req) => {
          req.end(compressed)
        })
        expect([res.status, res.body]).to.deep.equal([415, refusal('unsupported_encoding')])
      })

      it('express.raw() first (req.body is a Buffer) → 200', async () => {
        const { url } = await app({}, 'raw')
        const { body, headers } = sign()
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })

      it('express.json() first, a non-JSON Content-Type (stream untouched) → 200', async () => {
        const { url } = await app({}, 'json')
        const { body, headers } = sign()
        const res = await post(url, body, { ...headers, 'Content-Type': 'text/plain' })
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })

      it('express.json() after the router → 200', async () => {
        const { url } = await app({}, 'json-after')
        const { body, headers } = sign()
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })
    })

    describe('slow, lying and aborted bodies', () => {
      it('a slow drip is cut off at the deadline (408), the server stays responsive', async () => {
        const { url, port } = await app({ bodyTimeoutMs: 600 })
        const { body, headers } = sign()
        const started = Date.now()
        const pings: number[] = []
        const framing = { ...headers, 'Content-Length': Buffer.byteLength(body) }
        const drip = rawRequest(port, framing, async (req) => {
          // Bounded: one byte every 50 ms for at most 100 bytes (5 s), never the whole body.
          for (let i = 0; i < 100 && !req.destroyed; i++) {
            req.write(body[i] as string)
            await sleep(50)
          }
        })
        // Meanwhile the same server answers other requests at once.
        for (let i = 0; i < 3; i++) {
          await sleep(100)
          const t = Date.now()
          const res = await request(url).get('/ping')
          expect(res.text).to.equal('pong')
          pings.push(Date.now() - t)
        }
        const res = await drip
        const elapsed = Date.now() - started
        expect([res.status, res.body]).to.deep.equal([
          408,
          { error: 'request_timeout', error_description: 'Request body not received in time' },
        ])
        expect(res.headers.connection).to.equal('close')
        expect(elapsed).to.be.within(550, 3000)
        expect(Math.max(...pings)).to.be.below(500)
        expect(verifier.refreshes).to.equal(0)
      })

      it('a Content-Length above the bytes sent ends at the deadline, not never', async () => {
        const { port } = await app({ bodyTimeoutMs: 300 })
        const { body, headers } = sign()
        const framing = { ...headers, 'Content-Length': Buffer.byteLength(body) + 10 }
        const res = await rawRequest(port, framing, (req) => {
          req.write(body)
        })
        expect([res.status, res.body]).to.deep.equal([
          408,
          { error: 'request_timeout', error_description: 'Request body not received in time' },
        ])
        expect(res.headers.connection).to.equal('close')
        expect(verifier.refreshes).to.equal(0)
      })

      it('a client abort mid-body crashes nothing, and the next delivery works', async () => {
        const { url, port } = await app()
        const { body, headers } = sign()
        await new Promise<void>((resolve) => {
          const req = httpRequest({
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: PATH,
            agent: false,
            headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
          })
          req.on('error', () => resolve())
          req.on('close', () => resolve())
          req.write(body.slice(0, 20), () => {
            setTimeout(() => req.destroy(), 50)
          })
        })
        await sleep(50)
        expect(verifier.refreshes).to.equal(0)
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      })
    })

    describe('processing a valid event', () => {
      it('emergency: revokeKid(retiredKid) first, then refreshJwks', async () => {
        const { url } = await app()
        const { body, headers } = sign({ ...EVENT, emergency: true })
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
        expect(verifier.log).to.deep.equal(['revoke:ap-2026-08', 'refresh'])
      })

      it('emergency with a failing refresh: still revoked, 503 with Retry-After', async () => {
        verifier.fail = true
        const { url } = await app()
        const { body, headers } = sign({ ...EVENT, emergency: true })
        const res = await post(url, body, headers)
        expect(res.status).to.equal(503)
        expect(res.headers['retry-after']).to.equal('5')
        expect(res.body).to.deep.equal({
          error: 'jwks_unavailable',
          error_description: 'Signing keys unavailable',
        })
        expect(verifier.log).to.deep.equal(['revoke:ap-2026-08', 'refresh'])
      })

      it('a failed refresh → 503 and the retry is processed in full', async () => {
        verifier.fail = true
        const { url } = await app()
        const first = sign()
        const res = await post(url, first.body, first.headers)
        expect([res.status, res.body]).to.deep.equal([
          503,
          { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
        ])
        expect(res.headers['retry-after']).to.equal('5')
        verifier.fail = false
        now += 30_000
        const retry = sign()
        const ok = await post(url, retry.body, retry.headers)
        expect([ok.status, ok.body]).to.deep.equal([200, { received: true }])
        expect(verifier.refreshes).to.equal(2)
      })

      it('a refresh that never settles → 503 at refreshTimeoutMs', async () => {
        verifier.hang = true
        const { url } = await app({ refreshTimeoutMs: 200 })
        const { body, headers } = sign()
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([
          503,
          { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
        ])
        expect(res.headers['retry-after']).to.equal('5')
      })

      it('a replay within the window → 200 duplicate, no second refresh', async () => {
        const { url } = await app()
        const { body, headers } = sign()
        const first = await post(url, body, headers)
        const second = await post(url, body, headers)
        now += 120_000
        const resent = sign() // AgentPress re-sending the same id with a fresh timestamp
        const third = await post(url, resent.body, resent.headers)
        expect([first.status, first.body]).to.deep.equal([200, { received: true }])
        const duplicate = { received: true, duplicate: true }
        expect([second.status, second.body]).to.deep.equal([200, duplicate])
        expect([third.status, third.body]).to.deep.equal([200, duplicate])
        expect(verifier.refreshes).to.equal(1)
      })

      it('50 concurrent deliveries of one event share one refresh', async () => {
        verifier.delayMs = 100
        const { url } = await app()
        const { body, headers } = sign()
        const deliveries = Array.from({ length: 50 }, () => post(url, body, headers))
        const answers = await Promise.all(deliveries)
        // A delivery that joins the processing in flight answers with it ({"received":true}); one
        // that arrives after it completed is a replay ({"received":true,"duplicate":true}). Which
        // one each gets depends on when the 50 connections are served: both are exact 200s.
        const texts = new Set(['{"received":true}', '{"received":true,"duplicate":true}'])
        for (const res of answers) {
          expect(res.status).to.equal(200)
          expect(texts.has(res.text), res.text).to.equal(true)
        }
        expect(answers.some((res) => res.text === '{"received":true}')).to.equal(true)
        expect(verifier.refreshes).to.equal(1)
      })

      it('remembers a bounded number of ids (least recently seen forgotten first)', async () => {
        const { url } = await app({ maxRememberedIds: 2 })
        const answers = []
        for (const id of ['e1', 'e2', 'e3', 'e1', 'e3']) {
          const { body, headers } = sign({ ...EVENT, id })
          const res = await post(url, body, headers)
          answers.push([res.status, res.body])
        }
        const received = [200, { received: true }]
        const duplicate = [200, { received: true, duplicate: true }]
        expect(answers).to.deep.equal([received, received, received, received, duplicate])
        // e1 was evicted by e3 and processed again; e3 was still remembered.
        expect(verifier.refreshes).to.equal(4)
      })

      it('forgets an id after 24 h', async () => {
        const { url } = await app()
        const first = sign()
        await post(url, first.body, first.headers)
        now += 24 * 3600 * 1000 + 1000
        const later = sign()
        const res = await post(url, later.body, later.headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
        expect(verifier.refreshes).to.equal(2)
      })

      it('refreshes the verifier of event.issuer; all when the event names none', async () => {
        const a = new FakeVerifier(ISSUER_A)
        const b = new FakeVerifier(ISSUER_B)
        const { url } = await app({ verifiers: [a, b] })
        const forB = sign({ ...EVENT, id: 'for-b', issuer: ISSUER_B })
        const resB = await post(url, forB.body, forB.headers)
        expect([resB.status, resB.body]).to.deep.equal([200, { received: true }])
        expect([a.refreshes, b.refreshes]).to.deep.equal([0, 1])
        const { issuer: _issuer, ...noIssuer } = EVENT
        const forAll = sign({ ...noIssuer, id: 'for-all', emergency: true })
        const resAll = await post(url, forAll.body, forAll.headers)
        expect([resAll.status, resAll.body]).to.deep.equal([200, { received: true }])
        expect(a.log).to.deep.equal(['revoke:ap-2026-08', 'refresh'])
        expect(b.log).to.deep.equal(['refresh', 'revoke:ap-2026-08', 'refresh'])
      })

      it('an issuer no verifier trusts → 200 ignored, nothing refreshed or revoked', async () => {
        const { url } = await app()
        const other = sign({ ...EVENT, issuer: `${ISSUER_A}/`, emergency: true })
        const res = await post(url, other.body, other.headers)
        const ignored = { received: true, ignored: 'unknown_issuer' }
        expect([res.status, res.body]).to.deep.equal([200, ignored])
        expect(verifier.log).to.deep.equal([])
      })

      it('a verifier without an issuer matches every event', async () => {
        const anonymous = new FakeVerifier()
        const { url } = await app({ verifiers: [anonymous] })
        const { body, headers } = sign({ ...EVENT, issuer: 'https://api.agent.press/orgs/other' })
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
        expect(anonymous.refreshes).to.equal(1)
      })

      it('takes the verifiers of a strategy', async () => {
        const { url } = await app({ verifiers: undefined, strategy: { verifiers: [verifier] } })
        const { body, headers } = sign()
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
        expect(verifier.refreshes).to.equal(1)
      })

      it('calls onRotation once per processed event; its failures change nothing', async () => {
        const seen: KeyRotationEvent[] = []
        let calls = 0
        const { url } = await app({
          onRotation: (event) => {
            calls++
            seen.push(event)
            if (calls === 2) throw new Error('hook bug')
            if (calls === 3) return Promise.reject(new Error('async hook bug'))
            return undefined
          },
        })
        const answers = []
        for (const id of ['h1', 'h1', 'h2', 'h3']) {
          const { body, headers } = sign({ ...EVENT, id, jwksUrl: 'http://127.0.0.1:9/x' })
          const res = await post(url, body, headers)
          answers.push([res.status, res.body])
        }
        const received = [200, { received: true }]
        const duplicate = [200, { received: true, duplicate: true }]
        expect(answers).to.deep.equal([received, duplicate, received, received])
        expect(seen.map((event) => event.id)).to.deep.equal(['h1', 'h2', 'h3'])
        expect(seen[0]).to.deep.equal({ ...EVENT, id: 'h1' })
      })
    })
  })
}

describe('createKeyRotationRouter options', () => {
  const verifier = new FakeVerifier(ISSUER_A)
  const cases: Array<[string, unknown, string]> = [
    ['no options', undefined, 'createKeyRotationRouter: options must be an object'],
    ['no secret', { verifiers: [verifier] }, 'webhookSecret must be a string'],
    [
      'a short secret',
      { webhookSecret: 'short', verifiers: [verifier] },
      'webhookSecret must be at least 16 characters long',
    ],
    [
      'an empty secret',
      { webhookSecret: '', verifiers: [verifier] },
      'webhookSecret must not be empty',
    ],
    [
      'a secret with a trailing newline',
      { webhookSecret: `${SECRET}\n`, verifiers: [verifier] },
      'webhookSecret must not have leading or trailing whitespace',
    ],
    [
      'a bad second secret',
      { webhookSecret: [SECRET, ' x'], verifiers: [verifier] },
      'webhookSecret[1] must be at least 16 characters long',
    ],
    [
      'neither strategy nor verifiers',
      { webhookSecret: SECRET },
      'strategy or verifiers is required',
    ],
    [
      'both strategy and verifiers',
      { webhookSecret: SECRET, verifiers: [verifier], strategy: { verifiers: [verifier] } },
      'pass either strategy or verifiers, not both',
    ],
    [
      'an empty verifiers array',
      { webhookSecret: SECRET, verifiers: [] },
      'verifiers must be a non-empty array',
    ],
    [
      'a strategy without verifiers',
      { webhookSecret: SECRET, strategy: {} },
      'strategy.verifiers must be a non-empty array',
    ],
    [
      'a null verifier',
      { webhookSecret: SECRET, verifiers: [null] },
      'verifiers[0] must be a TokenVerifier',
    ],
    [
      'verifiers that cannot refresh',
      { webhookSecret: SECRET, verifiers: [{ verifyToken: async () => ({}) }] },
      'verifiers: no verifier has refreshJwks(), so a rotation could change nothing',
    ],
    [
      'a non-function onRotation',
      { webhookSecret: SECRET, verifiers: [verifier], onRotation: 'log' },
      'onRotation must be a function',
    ],
    [
      'a negative toleranceSec',
      { webhookSecret: SECRET, verifiers: [verifier], toleranceSec: -1 },
      'toleranceSec must be a finite, non-negative number of seconds',
    ],
    [
      'a NaN bodyTimeoutMs',
      { webhookSecret: SECRET, verifiers: [verifier], bodyTimeoutMs: Number.NaN },
      'bodyTimeoutMs must be a finite number of milliseconds greater than 0',
    ],
    [
      'an infinite refreshTimeoutMs',
      { webhookSecret: SECRET, verifiers: [verifier], refreshTimeoutMs: Infinity },
      'refreshTimeoutMs must be a finite number of milliseconds greater than 0',
    ],
    [
      'a fractional maxRememberedIds',
      { webhookSecret: SECRET, verifiers: [verifier], maxRememberedIds: 1.5 },
      'maxRememberedIds must be a positive integer',
    ],
  ]
  for (const [label, options, message] of cases) {
    it(`${label} → TypeError`, () => {
      const create = () => createKeyRotationRouter(options as KeyRotationRouterOptions)
      expect(create).to.throw(TypeError, message)
    })
  }

  it('snapshots the verifier list: later mutation changes nothing', async () => {
    const list = [verifier]
    const router = createKeyRotationRouter({ webhookSecret: SECRET, verifiers: list })
    list.length = 0
    const { url } = await listen(express().use(PATH, router) as unknown as RequestListener)
    const before = verifier.refreshes
    const { body, headers } = signWebhook({ ...EVENT, id: 'snapshot' }, { secret: SECRET })
    const res = await request(url).post(PATH).set(headers).send(body)
    expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    expect(verifier.refreshes).to.equal(before + 1)
  })
})

describe('key rotation end to end with the mock AgentPress', () => {
  let mock: MockAgentPress

  beforeEach(async () => {
    mock = await createMockAgentPress()
  })
  afterEach(async () => {
    await mock.close()
  })

  for (const framework of FRAMEWORKS) {
    describe(framework.name, () => {
      /** An app with a Passport-protected /mcp and the rotation router sharing one strategy. */
      async function partnerApp(): Promise<{ url: string; strategy: AgentPressPartnerStrategy }> {
        const strategy = new AgentPressPartnerStrategy(
          { partnerMcp: mock.partnerMcp },
          async (claims) => ({ id: claims.sub }),
        )
        const instance = new passport.Passport()
        instance.use(strategy)
        const router = createKeyRotationRouter({ webhookSecret: mock.webhookSecret, strategy })
        const auth = instance.authenticate(strategy.name, {
          session: false,
        }) as connect.NextHandleFunction
        const ok = (_req: unknown, res: import('node:http').ServerResponse) => {
          res.end('ok')
        }
        let listener: RequestListener
        if (framework.name === 'Connect') {
          const app = connect()
          app.use('/mcp', auth)
          app.use('/mcp', ok)
          app.use(PATH, router)
          listener = app as unknown as RequestListener
        } else {
          const lib = framework.name === 'Express 4' ? express4 : express
          const app = lib()
          app.use(PATH, router as express.RequestHandler)
          app.use(lib.json())
          app.post('/mcp', auth as express.RequestHandler, ok as express.RequestHandler)
          listener = app as unknown as RequestListener
        }
        const { url } = await listen(listener)
        return { url, strategy }
      }

      const callMcp = (url: string, token: string) =>
        request(url).post('/mcp').set('Authorization', `Bearer ${token}`).send({})

      // What the MCP route answered: exact status, exact WWW-Authenticate (or none) and body.
      const wire = (res: { status: number; headers: Record<string, unknown>; text: string }) => [
        res.status,
        res.headers['www-authenticate'],
        res.text,
      ]
      const OK = [200, undefined, 'ok']
      // Plain passport.authenticate() without a realm: Passport's own 401 body.
      const REFUSED_UNKNOWN_KID = [
        401,
        'Bearer error="invalid_token", error_description="Signing key not found"',
        'Unauthorized',
      ]

      it('rotation announced → one JWKS fetch → new-key tokens verify, none fail', async () => {
        const { url } = await partnerApp()
        expect(wire(await callMcp(url, mock.signToken()))).to.deep.equal(OK)
        mock.resetJwksRequestCount()
        const event = mock.rotateKeys()
        const delivery = await deliverWebhook(`${url}${PATH}`, event, {
          secret: mock.webhookSecret,
        })
        expect([delivery.status, delivery.body]).to.deep.equal([200, { received: true }])
        expect(mock.jwksRequestCount).to.equal(1)
        const calls = Array.from({ length: 20 }, () => callMcp(url, mock.signToken()))
        const answers = await Promise.all(calls)
        expect(answers.map(wire)).to.deep.equal(Array(20).fill(OK))
        expect(mock.jwksRequestCount).to.equal(1)
      })

      it('50 concurrent deliveries → one fetch; a replay → no fetch', async () => {
        const { url } = await partnerApp()
        expect(wire(await callMcp(url, mock.signToken()))).to.deep.equal(OK)
        mock.resetJwksRequestCount()
        const event = mock.rotateKeys()
        const answers = await Promise.all(
          Array.from({ length: 50 }, () =>
            deliverWebhook(`${url}${PATH}`, event, { secret: mock.webhookSecret }),
          ),
        )
        // Joining the processing in flight answers {"received":true}; arriving after it completed
        // is a replay: which one each delivery gets is timing, but each is one of the two exactly.
        const bodies = [{ received: true }, { received: true, duplicate: true }]
        for (const answer of answers) {
          expect(answer.status).to.equal(200)
          expect(bodies).to.deep.include(answer.body)
        }
        expect(answers.map((answer) => answer.body)).to.deep.include({ received: true })
        expect(mock.jwksRequestCount).to.equal(1)
        const replay = await deliverWebhook(`${url}${PATH}`, event, { secret: mock.webhookSecret })
        const duplicate = { received: true, duplicate: true }
        expect([replay.status, replay.body]).to.deep.equal([200, duplicate])
        expect(mock.jwksRequestCount).to.equal(1)
      })

      it('emergency rotation → retired kid refused at once, even with JWKS down', async () => {
        const { url } = await partnerApp()
        const oldToken = mock.signToken()
        expect(wire(await callMcp(url, oldToken))).to.deep.equal(OK)
        const event = mock.rotateKeys({ emergency: true })
        mock.setJwksMode('error')
        const delivery = await deliverWebhook(`${url}${PATH}`, event, {
          secret: mock.webhookSecret,
        })
        expect([delivery.status, delivery.body]).to.deep.equal([
          503,
          { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
        ])
        expect(delivery.headers['retry-after']).to.equal('5')
        const refused = await callMcp(url, oldToken)
        expect(wire(refused)).to.deep.equal(REFUSED_UNKNOWN_KID)
        // AgentPress retries once the JWKS is back: processed in full.
        mock.setJwksMode('ok')
        const retry = await deliverWebhook(`${url}${PATH}`, event, { secret: mock.webhookSecret })
        expect([retry.status, retry.body]).to.deep.equal([200, { received: true }])
        expect(wire(await callMcp(url, mock.signToken()))).to.deep.equal(OK)
        expect(wire(await callMcp(url, oldToken))).to.deep.equal(REFUSED_UNKNOWN_KID)
      })

      it('JWKS down during a normal rotation → 503, then the retry succeeds', async () => {
        const { url } = await partnerApp()
        expect(wire(await callMcp(url, mock.signToken()))).to.deep.equal(OK)
        const event = mock.rotateKeys()
        mock.setJwksMode('error')
        const delivery = await deliverWebhook(`${url}${PATH}`, event, {
          secret: mock.webhookSecret,
        })
        expect([delivery.status, delivery.body]).to.deep.equal([
          503,
          { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
        ])
        expect(delivery.headers['retry-after']).to.equal('5')
        mock.setJwksMode('ok')
        mock.resetJwksRequestCount()
        const retry = await deliverWebhook(`${url}${PATH}`, event, { secret: mock.webhookSecret })
        expect([retry.status, retry.body]).to.deep.equal([200, { received: true }])
        expect(mock.jwksRequestCount).to.equal(1)
      })
    })
  }

  it('URLs and keys in the body are ignored: only the configured JWKS URL is fetched', async () => {
    const decoy = await startCountingServer()
    try {
      const verifier = new PartnerTokenVerifier(mock.partnerMcp)
      const router = createKeyRotationRouter({
        webhookSecret: mock.webhookSecret,
        verifiers: [verifier],
      })
      const { url } = await listen(express().use(PATH, router) as unknown as RequestListener)
      const event = mock.rotateKeys()
      const delivery = await deliverWebhook(
        `${url}${PATH}`,
        {
          ...event,
          jwksUrl: `${decoy.url}/.well-known/jwks.json`,
          jku: `${decoy.url}/jku`,
          issuerUrl: decoy.url,
          keys: [
            {
              kty: 'OKP',
              crv: 'Ed25519',
              x: 'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
              kid: event.newCurrentKid,
            },
          ],
        },
        { secret: mock.webhookSecret },
      )
      expect([delivery.status, delivery.body]).to.deep.equal([200, { received: true }])
      expect(decoy.count).to.equal(0)
      expect(mock.jwksRequestCount).to.equal(1)
      expect((await verifier.verifyToken(mock.signToken())).iss).to.equal(mock.issuer)
    } finally {
      await decoy.close()
    }
  })
})
