/**
 * A local mock of AgentPress for tests and local development: a real HTTP server on 127.0.0.1
 * serving the JWKS of an Ed25519 key it generated, a token minter, key rotation, and switches that
 * make the JWKS endpoint misbehave. It implements the same contract (docs/wire-contract.md) as the verifier.
 */
import { createHash, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { KeyRotationEvent } from '../core/key-rotation/event.js'
import type { PartnerTokenVerifierOptions } from '../core/verifier/options.js'
import { optionsObject, rejectUnknownKeys } from '../core/validate.js'
import { newEd25519KeyPair } from './ed25519-key.js'
import { requestPathOr400 } from './request-target.js'
import {
  computeWebhookSignature,
  signWebhook,
  type SignedWebhook,
  type WebhookSigningForm,
} from './webhook.js'

/**
 * Options of {@link createMockAgentPress}.
 *
 * @example
 * ```ts
 * const options: MockAgentPressOptions = {
 *   orgSlug: 'acme-org',
 *   audience: 'http://127.0.0.1:3000/mcp',
 *   extProvider: 'example',
 *   scope: 'mcp:read',
 *   ttlSec: 300,
 * }
 * const mock = await createMockAgentPress(options)
 * mock.issuer // 'http://127.0.0.1:<port>/orgs/acme-org'
 * ```
 */
export interface MockAgentPressOptions {
  /** Org slug in the issuer URL. Default `mock-org`. */
  orgSlug?: string
  /** The `aud` of minted tokens. Default `http://127.0.0.1:3000/mcp`. */
  audience?: string
  /** The `ext_provider` of minted tokens. Default `example-partner`. */
  extProvider?: string
  /** The `sub` of minted tokens. Default `user-123`. */
  sub?: string
  /** The `scope` of minted tokens. Default `mcp:read mcp:write`. */
  scope?: string
  /** Lifetime of minted tokens in seconds. Default 60 (AgentPress's TTL). */
  ttlSec?: number
  /**
   * Secret that webhooks from this mock are signed with. Default: a random `whsec_<base64>` string
   * (24 random bytes), usable with either key derivation.
   */
  webhookSecret?: string
  /** How this mock's webhooks are signed by default (per call, `signWebhook` options override). */
  webhookSigning?: WebhookSigningForm
  /**
   * Port to listen on (127.0.0.1 only): a whole number from 0 to 65535. Default 0: any free port.
   * The issuer and JWKS URL carry the port chosen; a port in use rejects with the listen error
   * (`code: 'EADDRINUSE'`).
   */
  port?: number
  /** Clock in milliseconds; default `Date.now`. */
  clock?: () => number
  /**
   * The `alg` label of the published keys: `EdDSA` (default) or RFC 9864's fully specified
   * `Ed25519` (the same algorithm, §3).
   */
  keyAlg?: MockAlg
  /** The header `alg` of minted tokens: `EdDSA` (default) or `Ed25519` (§2). Per token, `signToken`'s header overrides it. */
  tokenAlg?: MockAlg
}

/** The two names of EdDSA over Ed25519 (RFC 8037 `EdDSA`, RFC 9864 `Ed25519`). */
export type MockAlg = 'EdDSA' | 'Ed25519'

function mockAlg(value: unknown, name: string): MockAlg {
  if (value === undefined) return 'EdDSA'
  if (value === 'EdDSA' || value === 'Ed25519') return value
  throw new TypeError(
    `options.${name} must be 'EdDSA' or 'Ed25519' (RFC 9864), got ${String(value)}`,
  )
}

/**
 * How the JWKS endpoint answers:
 * - `ok`: the published keys (200, JSON);
 * - `error`: 500; `not_found`: 404; `redirect`: 302 to another path;
 * - `garbage`: 200 with non-JSON bytes; `html`: 200 with an HTML page; `keys_null`: `{"keys":null}`;
 * - `oversized`: a 10 MB JSON body; `stall`: never answers; `drip`: one byte every 200 ms;
 * - `reset`: destroys the connection without answering.
 *
 * @example
 * ```ts
 * const mode: JwksMode = 'error'
 * mock.setJwksMode(mode) // the JWKS endpoint now answers 500
 * const verifier = new PartnerTokenVerifier(mock.partnerMcp) // nothing cached yet
 * await verifier.verifyToken(mock.signToken()) // rejects with JwksUnavailableError (503)
 * mock.setJwksMode('ok')
 * ```
 */
export type JwksMode =
  | 'ok'
  | 'error'
  | 'not_found'
  | 'redirect'
  | 'garbage'
  | 'html'
  | 'keys_null'
  | 'oversized'
  | 'stall'
  | 'drip'
  | 'reset'

/**
 * One signing key of the mock.
 *
 * @example
 * ```ts
 * const key: MockSigningKey = mock.keys[0]!
 * key.publicJwk // { kty: 'OKP', crv: 'Ed25519', x, kid, use: 'sig', alg: 'EdDSA' }
 * const token = mock.signToken({}, { kid: key.kid }) // signed with this key
 * ```
 */
export interface MockSigningKey {
  readonly kid: string
  readonly privateKey: KeyObject
  readonly publicJwk: Readonly<{
    kty: 'OKP'
    crv: 'Ed25519'
    x: string
    kid: string
    use: 'sig'
    alg: MockAlg
  }>
}

/**
 * A running mock AgentPress. Close it with `close()`.
 *
 * @example
 * ```ts
 * const mock: MockAgentPress = await createMockAgentPress()
 * const verifier = new PartnerTokenVerifier(mock.partnerMcp)
 * await verifier.verifyToken(mock.signToken({ scope: 'mcp:read' }))
 * const event = mock.rotateKeys({ emergency: true })
 * const { body, headers } = mock.signWebhook(event) // POST these to your receiver
 * await mock.close()
 * ```
 */
export interface MockAgentPress {
  /** Origin of the server, e.g. `http://127.0.0.1:43123`. */
  readonly url: string
  /** The issuer (`<url>/orgs/<orgSlug>`). */
  readonly issuer: string
  /** `<issuer>/.well-known/jwks.json`. */
  readonly jwksUrl: string
  readonly audience: string
  readonly extProvider: string
  /** The secret this mock signs webhooks with. */
  readonly webhookSecret: string
  /** How this mock signs webhooks by default (key derivation, signature encoding). */
  readonly webhookSigning: Readonly<WebhookSigningForm>
  /** Ready options for `new PartnerTokenVerifier(...)` / the strategy's `partnerMcp`. */
  readonly partnerMcp: PartnerTokenVerifierOptions
  /** Kid of the key tokens are signed with by default. */
  readonly currentKid: string
  /** The keys currently published, newest last. */
  readonly keys: readonly MockSigningKey[]
  /** Number of requests the JWKS endpoint has received. */
  readonly jwksRequestCount: number
  /**
   * How many of them were conditional (`If-None-Match` equal to the current `ETag`) and answered
   * 304 Not Modified. In `ok` mode every JWKS answer carries a strong `ETag` of its bytes.
   */
  readonly jwksNotModifiedCount: number
  /**
   * Mints a token. Claims and header members given override the defaults; a member given as
   * `undefined` is removed. The signature is made with the key named by the header's `kid` when the
   * mock has it, else with the current key.
   */
  signToken(claims?: Record<string, unknown>, header?: Record<string, unknown>): string
  /**
   * Publishes a new current key. Normally the retiring key stays published (overlap window);
   * with `emergency: true` it is withdrawn at once. Returns the matching rotation event.
   */
  rotateKeys(options?: { emergency?: boolean }): KeyRotationEvent
  /**
   * Signs a rotation event (or any body) as AgentPress's webhook would, with this mock's
   * `webhookSecret` and clock: `{ body, headers }` ready to POST.
   */
  signWebhook(
    event: KeyRotationEvent | Record<string, unknown> | string,
    options?: { timestamp?: number } & WebhookSigningForm,
  ): SignedWebhook
  /** Switches how the JWKS endpoint answers. */
  setJwksMode(mode: JwksMode): void
  /** Serves this exact document instead of the published keys (`undefined` restores them). */
  setJwksDocument(document: unknown): void
  /** Resets `jwksRequestCount` and `jwksNotModifiedCount` to 0. */
  resetJwksRequestCount(): void
  /** Stops the server and drops every open connection. */
  close(): Promise<void>
}

function newKey(alg: MockAlg): MockSigningKey {
  const { privateKey, x } = newEd25519KeyPair()
  const kid = `ap-${randomBytes(6).toString('hex')}`
  return Object.freeze({
    kid,
    privateKey,
    publicJwk: Object.freeze({
      kty: 'OKP',
      crv: 'Ed25519',
      x,
      kid,
      use: 'sig',
      alg,
    } as const),
  })
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

function merge(
  base: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete out[name]
    else out[name] = value
  }
  return out
}

// Every option, as a record over the interface's keys: an option added there without a line here
// is a compile error, so the unknown-option check can never refuse a real option.
const MOCK_OPTION_NAMES: Record<keyof MockAgentPressOptions, true> = {
  orgSlug: true,
  audience: true,
  extProvider: true,
  sub: true,
  scope: true,
  ttlSec: true,
  webhookSecret: true,
  webhookSigning: true,
  port: true,
  clock: true,
  keyAlg: true,
  tokenAlg: true,
}
const MOCK_OPTIONS: ReadonlySet<string> = new Set(Object.keys(MOCK_OPTION_NAMES))

/**
 * Starts a mock AgentPress on 127.0.0.1 (`port`, default 0: any free port). Options are checked
 * first: an unknown one, or a bad `orgSlug`, `port`, `keyAlg`, `tokenAlg` or webhook signing form,
 * is a `TypeError` naming it.
 *
 * @example
 * ```ts
 * import { createMockAgentPress } from 'passport-agentpress-partner/testing'
 * import { PartnerTokenVerifier } from 'passport-agentpress-partner'
 *
 * const mock = await createMockAgentPress({ audience: 'http://127.0.0.1:3000/mcp' })
 * const verifier = new PartnerTokenVerifier(mock.partnerMcp)
 * const claims = await verifier.verifyToken(mock.signToken({ sub: 'alice' }))
 * await mock.close()
 * ```
 */
export async function createMockAgentPress(
  options: MockAgentPressOptions = {},
): Promise<MockAgentPress> {
  return startMockAgentPress(options)
}

/**
 * Answers a request the mock's server received before the mock does (the `agentpress-mock serve`
 * CLI mounts its control API this way): `true` when it answered. `path` is the request's path,
 * `jwks` whether it is the mock's JWKS path.
 *
 * @internal
 */
export type MockRequestHook = (
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  jwks: boolean,
) => boolean

function mockPort(value: unknown): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new TypeError(
      `options.port must be a whole number from 0 to 65535 (0 picks a free port), got ${String(value)}`,
    )
  }
  return value
}

/**
 * {@link createMockAgentPress}, with a hook that sees every request first.
 *
 * @internal
 */
export async function startMockAgentPress(
  options: MockAgentPressOptions = {},
  before?: MockRequestHook,
): Promise<MockAgentPress> {
  optionsObject(options, 'createMockAgentPress: options must be an object')
  rejectUnknownKeys(options, MOCK_OPTIONS, 'createMockAgentPress')
  const listenPort = mockPort(options.port)
  const orgSlug = options.orgSlug ?? 'mock-org'
  const audience = options.audience ?? 'http://127.0.0.1:3000/mcp'
  const extProvider = options.extProvider ?? 'example-partner'
  const clock = options.clock ?? Date.now
  const ttlSec = options.ttlSec ?? 60
  const webhookSecret = options.webhookSecret ?? `whsec_${randomBytes(24).toString('base64')}`
  const webhookSigning: WebhookSigningForm = { ...options.webhookSigning }
  // A signing form the secret cannot serve is a TypeError now, not at the first rotation.
  computeWebhookSignature(webhookSecret, 0, '', webhookSigning)
  if (!/^[a-z0-9-]+$/.test(orgSlug))
    throw new TypeError('orgSlug must be lower-case letters, digits and hyphens')

  const keyAlg = mockAlg(options.keyAlg, 'keyAlg')
  const tokenAlg = mockAlg(options.tokenAlg, 'tokenAlg')

  let keys: MockSigningKey[] = [newKey(keyAlg)]
  let mode: JwksMode = 'ok'
  let document: unknown
  let requestCount = 0
  let notModifiedCount = 0
  const held = new Set<ServerResponse>()
  const timers = new Set<NodeJS.Timeout>()

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = requestPathOr400(req, res)
    if (path === undefined) return
    const jwks = path === `/orgs/${orgSlug}/.well-known/jwks.json`
    if (before?.(req, res, path, jwks) === true) return
    if (!jwks) {
      res.statusCode = 404
      res.end()
      return
    }
    requestCount++
    const json = (body: string, status = 200, type = 'application/json') => {
      res.statusCode = status
      res.setHeader('content-type', type)
      res.end(body)
    }
    switch (mode) {
      case 'ok': {
        const body = JSON.stringify(document ?? { keys: keys.map((k) => k.publicJwk) })
        // A strong ETag of the exact bytes: an unchanged key set answers a conditional GET 304.
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
        res.setHeader('etag', etag)
        res.setHeader('cache-control', 'no-cache')
        if (req.headers['if-none-match'] === etag) {
          notModifiedCount++
          res.statusCode = 304
          return res.end()
        }
        return json(body)
      }
      case 'error':
        return json('{"error":"internal"}', 500)
      case 'not_found':
        return json('{"error":"not found"}', 404)
      case 'redirect':
        res.statusCode = 302
        res.setHeader('location', '/elsewhere/jwks.json')
        return res.end()
      case 'garbage':
        return json('\u0000garbage{not json')
      case 'html':
        return json('<!doctype html><title>Maintenance</title>', 200, 'text/html')
      case 'keys_null':
        return json('{"keys":null}')
      case 'oversized':
        return json(JSON.stringify({ keys: [], pad: 'x'.repeat(10 * 1024 * 1024) }))
      case 'stall':
        held.add(res)
        res.on('close', () => held.delete(res))
        return
      case 'drip': {
        const body = JSON.stringify({ keys: keys.map((k) => k.publicJwk) })
        res.setHeader('content-type', 'application/json')
        held.add(res)
        let i = 0
        const timer = setInterval(() => {
          if (i >= body.length || res.destroyed) {
            clearInterval(timer)
            timers.delete(timer)
            held.delete(res)
            res.end()
            return
          }
          res.write(body[i++])
        }, 200)
        timers.add(timer)
        return
      }
      case 'reset':
        req.socket.destroy()
        return
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(listenPort, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}`
  const issuer = `${url}/orgs/${orgSlug}`
  const jwksUrl = `${issuer}/.well-known/jwks.json`

  const mock: MockAgentPress = {
    url,
    issuer,
    jwksUrl,
    audience,
    extProvider,
    webhookSecret,
    webhookSigning: Object.freeze(webhookSigning),
    partnerMcp: Object.freeze({ issuer, audience, expectedExtProvider: extProvider, jwksUrl }),
    get currentKid() {
      return keys[keys.length - 1]!.kid
    },
    get keys() {
      return keys.slice()
    },
    get jwksRequestCount() {
      return requestCount
    },
    get jwksNotModifiedCount() {
      return notModifiedCount
    },
    signToken(claims = {}, header = {}) {
      const now = Math.floor(clock() / 1000)
      const current = keys[keys.length - 1]!
      const fullHeader = merge({ alg: tokenAlg, typ: 'JWT', kid: current.kid }, header)
      const payload = merge(
        {
          iss: issuer,
          aud: audience,
          ext_provider: extProvider,
          sub: options.sub ?? 'user-123',
          jti: randomUUID(),
          scope: options.scope ?? 'mcp:read mcp:write',
          iat: now,
          exp: now + ttlSec,
        },
        claims,
      )
      const key = keys.find((k) => k.kid === fullHeader.kid) ?? current
      const signingInput = `${b64url(fullHeader)}.${b64url(payload)}`
      const signature = sign(null, Buffer.from(signingInput), key.privateKey).toString('base64url')
      return `${signingInput}.${signature}`
    },
    rotateKeys({ emergency = false } = {}) {
      const retired = keys[keys.length - 1]!
      const fresh = newKey(keyAlg)
      // Overlap window (§3): the retiring key stays published beside the new one.
      keys = emergency ? [fresh] : [retired, fresh]
      return Object.freeze({
        id: `evt_${randomBytes(8).toString('hex')}`,
        type: 'signing_key_rotation' as const,
        issuer,
        retiredKid: retired.kid,
        newCurrentKid: fresh.kid,
        emergency,
        occurredAt: new Date(clock()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      })
    },
    signWebhook(event, opts = {}) {
      return signWebhook(event, { secret: webhookSecret, clock, ...webhookSigning, ...opts })
    },
    setJwksMode(next) {
      mode = next
    },
    setJwksDocument(next) {
      document = next
    },
    resetJwksRequestCount() {
      requestCount = 0
      notModifiedCount = 0
    },
    async close() {
      for (const timer of timers) clearInterval(timer)
      for (const res of held) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return mock
}
