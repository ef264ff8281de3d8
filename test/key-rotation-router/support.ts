// What the createKeyRotationRouter tests share: the secrets and the event, FakeVerifier (records
// what the router asked of it; support/doubles.ts CountingVerifier only counts, without the
// order, failures or delays these tests need), the three frameworks, `listen`, `rawRequest`, and
// the hooks and per-framework fixture each describe registers.
import { request as httpRequest, createServer, type RequestListener, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import connect from 'connect'
import express from 'express'
import request from 'supertest'
import { type KeyRotationEvent, type TokenVerifier } from 'passport-agentpress-partner'
import {
  KEY_ROTATION_ERRORS,
  createKeyRotationRouter,
  type KeyRotationVerifyErrorReason,
  type KeyRotationRouterOptions,
} from 'passport-agentpress-partner'
import { signWebhook } from 'passport-agentpress-partner/testing'

// Express 4 is installed under an npm alias and ships no types of its own: same API surface here.
export const express4 = createRequire(import.meta.url)('express4') as typeof express

export const PATH = '/webhooks/agentpress/key-rotation'
export const SECRET = 'whsec_routertest0123456789'
export const OTHER_SECRET = 'whsec_routerother0123456789000'
export const ISSUER_A = 'https://api.agent.press/orgs/acme-org'
export const ISSUER_B = 'https://stg-api.agent.press/orgs/acme-org'
export const T0 = 1_700_000_000

export const EVENT: KeyRotationEvent = Object.freeze({
  id: 'evt_2f6c1d0e',
  type: 'signing_key_rotation',
  issuer: ISSUER_A,
  retiredKid: 'ap-2026-08',
  newCurrentKid: 'ap-2026-11',
  emergency: false,
  occurredAt: '2026-11-21T10:00:00Z',
})

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms))

/** A TokenVerifier double that records what the router asked of it. */
export class FakeVerifier implements TokenVerifier {
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

export type Setup = 'none' | 'json' | 'json-verify' | 'raw' | 'text' | 'json-after'

export interface Framework {
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

export const FRAMEWORKS: readonly Framework[] = [
  expressFramework('Express 5', express),
  expressFramework('Express 4', express4),
  connectFramework,
]

/** Errors that reached the app's error handler: the router must never produce one. */
let errors: unknown[] = []
const servers: Server[] = []

export async function listen(listener: RequestListener): Promise<{ url: string; port: number }> {
  const server = createServer(listener)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, port }
}

/**
 * Registers, in the calling describe, the check every router test ends with: no error reached an
 * app's error handler (the router must never pass one to next()); then closes the servers `listen`
 * started.
 */
export function routerHooks(): void {
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
}

export const refusal = (reason: KeyRotationVerifyErrorReason) => ({
  error: reason,
  error_description: KEY_ROTATION_ERRORS[reason].description,
})

export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: unknown
}

/**
 * A raw HTTP request for what supertest cannot express: chunked bodies, a lying or absent
 * Content-Length, slow drips and aborts. `write` drives the request body and may end it.
 */
export function rawRequest(
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

/**
 * The per-framework setup of the `createKeyRotationRouter in <framework>` describes: a clock at T0
 * and a fresh FakeVerifier before each test, `app(options, setup)` (a router on that framework),
 * `sign` (a delivery signed at the clock) and `post`. `now` and `verifier` are read live.
 */
function routerFixture(framework: Framework) {
  routerHooks()
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

  return {
    framework,
    get now() {
      return now
    },
    set now(value: number) {
      now = value
    },
    get verifier() {
      return verifier
    },
    clock,
    app,
    sign,
    post,
  }
}

export type RouterFixture = ReturnType<typeof routerFixture>

/**
 * `describe('createKeyRotationRouter in <framework>')` once per framework of FRAMEWORKS, each with
 * its own routerFixture handed to `body`.
 */
export function describeOnEachFramework(body: (f: RouterFixture) => void): void {
  for (const framework of FRAMEWORKS) {
    describe(`createKeyRotationRouter in ${framework.name}`, () => body(routerFixture(framework)))
  }
}
