/**
 * A loopback control API over a running mock AgentPress: mint tokens and rotate keys over HTTP, so
 * a process other than the one holding the keys (the `agentpress-mock token` / `rotate` commands,
 * curl) can drive it. The private keys never leave the mock's process.
 *
 * It answers only peers on this machine (the socket's address, never the `Host` header, decides),
 * and mints tokens for the mock's own loopback issuer only, which no production verifier trusts;
 * still, it refuses what a web page could send it: a `Host` that is not a loopback name (DNS
 * rebinding), any `Origin` header (browsers send one on cross-origin requests and on every POST),
 * and POSTs that are not `application/json` (a cross-origin browser request then needs a CORS
 * preflight, which is never approved).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { KeyRotationEvent } from '../core/key-rotation/event.js'
import { isLoopbackHost } from '../core/validate.js'
import { DEFAULT_MAX_TOKEN_LIFETIME_SEC } from '../core/verifier/options.js'
import { pathOf, sendJson } from '../http/connect.js'
import { BodyReadError, readBody } from '../http/raw-body.js'
import type { MockAgentPress } from './mock-agentpress.js'
import { deliverWebhook, type WebhookDeliveryResult } from './webhook.js'

/**
 * The path prefix of the control API.
 *
 * @internal
 */
export const MOCK_CONTROL_PATH = '/_mock'

/**
 * Options of {@link createMockControl}.
 *
 * @example
 * ```ts
 * // The mock's JWKS is reached through a proxy on another origin.
 * const control = createMockControl(mock, {
 *   issuer: 'http://localhost:8080/orgs/mock-org',
 *   jwksUrl: 'http://localhost:8080/orgs/mock-org/.well-known/jwks.json',
 * })
 * ```
 */
export interface MockControlOptions {
  /**
   * The issuer to put in minted tokens and rotation events, when the mock's JWKS is served under
   * another origin than the mock's own listener. Default `mock.issuer`.
   */
  issuer?: string
  /** The JWKS URL reported by `GET /_mock/config`. Default `mock.jwksUrl`. */
  jwksUrl?: string
}

/**
 * Body of `POST /_mock/token`. Every member is optional.
 *
 * @example
 * ```ts
 * const request: MockTokenRequest = { sub: 'alice', scope: 'mcp:read', ttlSec: -60, omit: ['jti'] }
 * const res = await fetch(`http://127.0.0.1:4011${MOCK_CONTROL_PATH}/token`, {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify(request),
 * })
 * const { token, claims } = await res.json() // an expired token without `jti`
 * ```
 */
export interface MockTokenRequest {
  /** `sub` claim. */
  sub?: string
  /** `scope` claim (space-separated). */
  scope?: string
  /** Lifetime in seconds from now; negative mints an expired token. Default: the mock's TTL. */
  ttlSec?: number
  /** `aud` claim. */
  audience?: string
  /** Any claims, applied last. */
  claims?: Record<string, unknown>
  /** Claim names to leave out. */
  omit?: string[]
}

/**
 * Body of `POST /_mock/rotate`.
 *
 * @example
 * ```ts
 * const request: MockRotateRequest = {
 *   emergency: true,
 *   webhookUrl: 'http://127.0.0.1:3000/webhooks/agentpress/key-rotation',
 * }
 * // POSTed as JSON to `${MOCK_CONTROL_PATH}/rotate`, it answers `{ event, delivery }`
 * ```
 */
export interface MockRotateRequest {
  /** Withdraw the retired key at once. Default false. */
  emergency?: boolean
  /** Deliver the signed `signing_key_rotation` webhook to this `http:`/`https:` URL. */
  webhookUrl?: string
}

/**
 * The control middleware; `(req, res, next)` for Node, Express and Connect.
 *
 * @example
 * ```ts
 * const control: MockControlHandler = createMockControl(mock)
 * app.use(control) // answers under /_mock/, passes every other path on
 * ```
 */
export type MockControlHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void

const MAX_BODY = 16 * 1024

class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  sendJson(res, status, JSON.stringify(body), undefined, true)
}

// What reverse proxies add to a request they forward (RFC 7239 and the de facto X- headers).
const FORWARDING_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'via',
]

function hostIsLoopback(host: string | undefined): boolean {
  if (host === undefined) return false
  // `[::1]:8080`, `127.0.0.1:8080`, `localhost`.
  const match = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(host)
  return match !== null && isLoopbackHost(match[1]!)
}

/** Whether the socket's peer is this machine: 127.0.0.0/8 or ::1, also IPv4-mapped. */
function peerIsLoopback(req: IncomingMessage): boolean {
  const address = req.socket.remoteAddress
  if (address === undefined) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4)
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const parsed = (req as IncomingMessage & { body?: unknown }).body
  // Behind express.json() the stream is already consumed; its result is as good as ours here.
  if (req.readableEnded && parsed !== undefined) {
    if (
      parsed === null ||
      typeof parsed !== 'object' ||
      Array.isArray(parsed) ||
      Buffer.isBuffer(parsed)
    ) {
      return Promise.reject(new ControlError(400, 'request body must be a JSON object'))
    }
    return Promise.resolve(parsed as Record<string, unknown>)
  }
  return readBody(req, MAX_BODY, 10_000).then(
    (bytes) => {
      const text = bytes.toString('utf8')
      let body: unknown
      try {
        body = text.length === 0 ? {} : JSON.parse(text)
      } catch {
        throw new ControlError(400, 'request body must be JSON')
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new ControlError(400, 'request body must be a JSON object')
      }
      return body as Record<string, unknown>
    },
    (error: BodyReadError) => {
      if (error.kind === 'too_large') throw new ControlError(413, 'request body too large')
      if (error.kind === 'timeout') throw new ControlError(408, 'request body not received in time')
      throw new ControlError(400, 'request aborted')
    },
  )
}

function field<T>(
  body: Record<string, unknown>,
  name: string,
  type: 'string' | 'number' | 'boolean',
): T | undefined {
  const value = body[name]
  if (value === undefined) return undefined
  if (typeof value !== type || (type === 'number' && !Number.isSafeInteger(value))) {
    throw new ControlError(400, `${name} must be a ${type === 'number' ? 'whole number' : type}`)
  }
  return value as T
}

/**
 * The control API of a running mock, as a `(req, res, next)` middleware answering under
 * `/_mock/` and passing every other path to `next()`:
 *
 * - `GET /_mock/config` → `{ issuer, jwksUrl, audience, extProvider, currentKid }` (no secret);
 * - `POST /_mock/token` with a {@link MockTokenRequest} → `{ token, claims }`;
 * - `POST /_mock/rotate` with a {@link MockRotateRequest} → `{ event, delivery? }`, where
 *   `delivery` is the receiver's `{ status, body, headers }` or `{ error }` when it was unreachable.
 *
 * Refusals are JSON `{ "error": "<message>" }` with 400/403/404/405/413/415; a peer that is not a
 * loopback address is 403 `control API is loopback only`, whatever its `Host` says, and so is a
 * request carrying a proxy's forwarding header (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `Via`).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { createMockAgentPress, createMockControl } from 'passport-agentpress-partner/testing'
 *
 * const mock = await createMockAgentPress()
 * const control = createMockControl(mock)
 * createServer((req, res) => control(req, res, () => res.writeHead(404).end())).listen(4011, '127.0.0.1')
 * // curl -s -X POST http://127.0.0.1:4011/_mock/token -H 'content-type: application/json' -d '{"sub":"alice"}'
 * ```
 */
export function createMockControl(
  mock: MockAgentPress,
  options: MockControlOptions = {},
): MockControlHandler {
  if (mock === null || typeof mock !== 'object' || typeof mock.signToken !== 'function') {
    throw new TypeError('createMockControl: mock must be a MockAgentPress')
  }
  const issuer = options.issuer ?? mock.issuer
  const jwksUrl = options.jwksUrl ?? mock.jwksUrl
  if (typeof issuer !== 'string' || typeof jwksUrl !== 'string') {
    throw new TypeError('createMockControl: issuer and jwksUrl must be strings')
  }

  const token = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readJson(req)
    const claims: Record<string, unknown> = { iss: issuer }
    const ttl = field<number>(body, 'ttlSec', 'number')
    if (ttl !== undefined && ttl > DEFAULT_MAX_TOKEN_LIFETIME_SEC) {
      throw new ControlError(
        400,
        `ttlSec must be at most ${DEFAULT_MAX_TOKEN_LIFETIME_SEC} (the verifier's maxTokenLifetimeSec default)`,
      )
    }
    if (ttl !== undefined) {
      const now = Math.floor(Date.now() / 1000)
      claims.iat = now
      claims.exp = now + ttl
    }
    const sub = field<string>(body, 'sub', 'string')
    const scope = field<string>(body, 'scope', 'string')
    const audience = field<string>(body, 'audience', 'string')
    if (sub !== undefined) claims.sub = sub
    if (scope !== undefined) claims.scope = scope
    if (audience !== undefined) claims.aud = audience
    const extra = body.claims ?? {}
    if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) {
      throw new ControlError(400, 'claims must be an object')
    }
    Object.assign(claims, extra)
    const omit = body.omit ?? []
    if (!Array.isArray(omit) || omit.some((name) => typeof name !== 'string')) {
      throw new ControlError(400, 'omit must be an array of claim names')
    }
    // The mock's signToken removes a claim given as undefined.
    for (const name of omit as string[]) claims[name] = undefined
    const minted = mock.signToken(claims)
    const payload: unknown = JSON.parse(
      Buffer.from(minted.split('.')[1]!, 'base64url').toString('utf8'),
    )
    reply(res, 200, { token: minted, claims: payload })
  }

  const rotate = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readJson(req)
    const emergency = field<boolean>(body, 'emergency', 'boolean') ?? false
    const webhookUrl = field<string>(body, 'webhookUrl', 'string')
    if (webhookUrl !== undefined) {
      const target = URL.canParse(webhookUrl) ? new URL(webhookUrl) : undefined
      if (target === undefined || (target.protocol !== 'http:' && target.protocol !== 'https:')) {
        throw new ControlError(400, 'webhookUrl must be an http: or https: URL')
      }
    }
    const event: KeyRotationEvent = { ...mock.rotateKeys({ emergency }), issuer }
    let delivery: WebhookDeliveryResult | { error: string } | undefined
    if (webhookUrl !== undefined) {
      try {
        delivery = await deliverWebhook(webhookUrl, event, {
          secret: mock.webhookSecret,
          ...mock.webhookSigning,
        })
      } catch (err) {
        const code = (err as { cause?: { code?: unknown } }).cause?.code
        delivery = {
          error: `${(err as Error).message}${typeof code === 'string' ? ` (${code})` : ''}`,
        }
      }
    }
    reply(res, 200, { event, ...(delivery === undefined ? {} : { delivery }) })
  }

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    // The peer address decides who may mint tokens: a Host header is whatever the client writes.
    // Host and Origin are still checked, against DNS rebinding from a browser on this machine.
    if (!peerIsLoopback(req)) throw new ControlError(403, 'control API is loopback only')
    // Behind a reverse proxy on this machine every client is a loopback peer: a request the proxy
    // forwarded says so in these headers, and is refused whoever sent it.
    if (FORWARDING_HEADERS.some((name) => req.headers[name] !== undefined)) {
      throw new ControlError(
        403,
        'proxied requests are not allowed: the control API is loopback only',
      )
    }
    if (!hostIsLoopback(req.headers.host)) throw new ControlError(403, 'Host not allowed')
    if (req.headers.origin !== undefined)
      throw new ControlError(403, 'browser requests are not allowed')
    if (path === `${MOCK_CONTROL_PATH}/config`) {
      if (req.method !== 'GET') {
        res.setHeader('Allow', 'GET')
        throw new ControlError(405, 'only GET is allowed')
      }
      return reply(res, 200, {
        issuer,
        jwksUrl,
        audience: mock.audience,
        extProvider: mock.extProvider,
        currentKid: mock.currentKid,
      })
    }
    if (path !== `${MOCK_CONTROL_PATH}/token` && path !== `${MOCK_CONTROL_PATH}/rotate`) {
      throw new ControlError(404, 'not found')
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST')
      throw new ControlError(405, 'only POST is allowed')
    }
    if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      throw new ControlError(415, 'Content-Type must be application/json')
    }
    return path === `${MOCK_CONTROL_PATH}/token` ? token(req, res) : rotate(req, res)
  }

  return (req, res, next) => {
    const path = pathOf(req.url)
    if (path !== MOCK_CONTROL_PATH && !path.startsWith(`${MOCK_CONTROL_PATH}/`)) return next()
    handle(req, res, path).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy()
      if (err instanceof ControlError) return reply(res, err.status, { error: err.message })
      reply(res, 500, { error: 'internal error' })
    })
  }
}
