/**
 * The HTTP receiver of the key-rotation webhook (SPEC §5): reads the raw body itself, verifies it
 * with {@link verifyKeyRotation}, deduplicates deliveries and refreshes the matching verifiers.
 *
 * A plain `(req, res, next)` function over Node's own request and response (`statusCode`,
 * `setHeader`, `end`): it runs unchanged under Express 4, Express 5 and Connect, and the package
 * has no runtime dependency on any of them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  KEY_ROTATION_MAX_BODY_BYTES,
  KeyRotationVerifyError,
  keyRotationRefusal,
  type KeyRotationRouterReason,
} from './core/key-rotation-errors.js'
import type { KeyRotationEvent } from './core/key-rotation-event.js'
import { assertWebhookSecrets, prepareKeyRotation, verifyPrepared } from './core/key-rotation.js'
import { MAX_TIMER_MS, optionalFunction, optionsObject } from './core/validate.js'
import { pathOf, sendJson, type Middleware } from './http/connect.js'
import { BodyReadError, hasUnreadBody, preParsedBody, readBody } from './http/raw-body.js'
import { AUTH_ERRORS, JWKS_RETRY_AFTER_SECONDS } from './core/reasons.js'
import type { TokenVerifier } from './core/verifier.js'
import {
  checkFleet,
  signedDelivery,
  type RotationFleet,
  type SignedDelivery,
} from './core/rotation-fleet.js'

/**
 * Options of {@link createKeyRotationRouter}.
 *
 * @example
 * ```ts
 * const options: KeyRotationRouterOptions = {
 *   webhookSecret: process.env.AGENTPRESS_WEBHOOK_SECRET!,
 *   strategy, // the AgentPressPartnerStrategy whose verifiers are refreshed
 *   onRotation: (event) => console.info('signing key rotated to', event.newCurrentKid),
 * }
 * app.use('/webhooks/agentpress/key-rotation', createKeyRotationRouter(options))
 * ```
 */
export interface KeyRotationRouterOptions {
  /** The webhook secret, or several while the secret itself is rotated (SPEC §5). */
  webhookSecret: string | readonly string[]
  /** Our strategy (or anything exposing `verifiers`): its verifiers are refreshed. */
  strategy?: { readonly verifiers: readonly TokenVerifier[] }
  /** The verifiers to refresh, when there is no strategy. Exactly one of the two is required. */
  verifiers?: readonly TokenVerifier[]
  /**
   * Called once per processed event, after the refresh succeeded and before the 200 is sent; not
   * for duplicates, failed refreshes or events of an issuer no verifier trusts. Not awaited;
   * whatever it throws or rejects with is ignored (a logging hook must not change what AgentPress
   * is told).
   */
  onRotation?: (event: KeyRotationEvent) => unknown
  /** Accepted timestamp difference in seconds, both directions, inclusive. Default 300. */
  toleranceSec?: number
  /** Clock in milliseconds since the epoch; default `Date.now`. For tests. */
  clock?: () => number
  /** Deadline for the whole body to arrive, in ms. Default 10,000 (SPEC §5). */
  bodyTimeoutMs?: number
  /** Deadline for the JWKS refresh of one delivery, in ms; past it, 503. Default 15,000. */
  refreshTimeoutMs?: number
  /** How many processed delivery ids are remembered for deduplication. Default 1,000. */
  maxRememberedIds?: number
  /**
   * Share deliveries with the other instances (e.g. `createRedisFleet` of
   * `passport-agentpress-partner/redis`): a delivery is answered 200 only once it is applied here
   * **and** published; if publishing fails, 503 + `Retry-After` and the retry is processed in full.
   * An id another instance processed is a duplicate here too.
   */
  fleet?: RotationFleet
}

/**
 * The middleware returned by {@link createKeyRotationRouter}.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 *
 * const router: KeyRotationRouter = createKeyRotationRouter({
 *   webhookSecret,
 *   verifiers: [verifier],
 * })
 * // Any `(req, res, next)` host: Express, Connect, or a bare Node server.
 * createServer((req, res) => router(req, res, () => res.writeHead(404).end())).listen(3000)
 * ```
 */
export type KeyRotationRouter = Middleware

/** How long a processed id is remembered: the key overlap window of SPEC §3 (24 h). */
const REMEMBER_MS = 24 * 60 * 60 * 1000

interface Outcome {
  readonly status: 200 | 503
  readonly body: Readonly<Record<string, unknown>>
}

const RECEIVED: Outcome = { status: 200, body: { received: true } }
const DUPLICATE: Outcome = { status: 200, body: { received: true, duplicate: true } }
const UNKNOWN_ISSUER: Outcome = { status: 200, body: { received: true, ignored: 'unknown_issuer' } }
const REFRESH_FAILED: Outcome = {
  status: 503,
  body: { error: 'jwks_unavailable', error_description: AUTH_ERRORS.jwks_unavailable.description },
}
const FLEET_UNAVAILABLE: Outcome = {
  status: 503,
  body: { error: 'fleet_unavailable', error_description: 'Fleet unavailable' },
}

function positiveMs(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a finite number of milliseconds greater than 0`)
  }
  if (value > MAX_TIMER_MS) {
    throw new TypeError(`${name} must be at most ${MAX_TIMER_MS} milliseconds`)
  }
  return value
}

function resolveVerifiers(options: KeyRotationRouterOptions): readonly TokenVerifier[] {
  const { strategy, verifiers } = options
  if (strategy !== undefined && verifiers !== undefined) {
    throw new TypeError('pass either strategy or verifiers, not both')
  }
  let list: unknown
  let name: string
  if (strategy !== undefined) {
    if (typeof strategy !== 'object' || strategy === null) {
      throw new TypeError('strategy must be an object with a verifiers array')
    }
    list = strategy.verifiers
    name = 'strategy.verifiers'
  } else if (verifiers !== undefined) {
    list = verifiers
    name = 'verifiers'
  } else {
    throw new TypeError('strategy or verifiers is required')
  }
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(`${name} must be a non-empty array`)
  }
  list.forEach((verifier: unknown, index) => {
    if (typeof verifier !== 'object' || verifier === null) {
      throw new TypeError(`${name}[${index}] must be a TokenVerifier`)
    }
    const { refreshJwks, revokeKid, issuer } = verifier as Record<string, unknown>
    if (refreshJwks !== undefined && typeof refreshJwks !== 'function') {
      throw new TypeError(`${name}[${index}].refreshJwks must be a function`)
    }
    if (revokeKid !== undefined && typeof revokeKid !== 'function') {
      throw new TypeError(`${name}[${index}].revokeKid must be a function`)
    }
    if (issuer !== undefined && typeof issuer !== 'string') {
      throw new TypeError(`${name}[${index}].issuer must be a string`)
    }
  })
  if (!list.some((verifier) => typeof (verifier as TokenVerifier).refreshJwks === 'function')) {
    throw new TypeError(
      `${name}: no verifier has refreshJwks(), so a rotation could change nothing`,
    )
  }
  return Object.freeze([...(list as TokenVerifier[])])
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  // The client may be gone (abort mid-body) or another layer may have answered: never throw.
  if (res.headersSent || res.writableEnded || res.destroyed) return
  sendJson(res, status, JSON.stringify(body), headers, true)
}

function refuse(res: ServerResponse, reason: KeyRotationRouterReason, bodyUnread = false): void {
  const row = keyRotationRefusal(reason)
  const headers: Record<string, string> = {}
  if (reason === 'method_not_allowed') headers.Allow = 'POST'
  // Answering before the body was read: close the connection rather than let Node drain (or wait
  // for) bytes nobody will read.
  if (bodyUnread) headers.Connection = 'close'
  send(res, row.status, { error: reason, error_description: row.description }, headers)
}

/**
 * Creates the key-rotation webhook receiver. Mount it at the URL registered with AgentPress,
 * **before** any global body parser (or keep `req.rawBody` with `express.json({ verify })`):
 *
 * - `POST` at the mount path only; other methods get 405 with `Allow: POST`; other sub-paths go to
 *   `next()`.
 * - The raw body is read here: at most 8192 bytes, enforced while streaming (413, also at once
 *   from a larger `Content-Length`), within `bodyTimeoutMs` (408), `Content-Encoding` other than
 *   `identity` is 415. A Buffer left by an earlier parser in `req.rawBody` or `req.body` is used
 *   as is; a body consumed with no raw copy is 500 `body_already_parsed`, whose message names the
 *   fix — the body is never re-serialised.
 * - Every refusal is JSON `{"error":"<reason>","error_description":"<fixed text>"}`, the shape of
 *   SPEC §4's JSON option; statuses per SPEC §5.
 * - A valid event: with `emergency: true`, `revokeKid(retiredKid)` first on each matching verifier
 *   (so the old key is refused even if the refetch fails), then `refreshJwks()` on the verifiers
 *   whose `issuer` equals `event.issuer` (all when the event names none; a verifier without
 *   `issuer` matches every event), then 200 `{"received":true}`.
 * - An event naming an issuer no verifier trusts is 200
 *   `{"received":true,"ignored":"unknown_issuer"}`: it is authentic (signed with our secret) and
 *   retrying cannot change anything, while a 4xx would only make AgentPress retry five times.
 * - A failed refresh is 503 with `Retry-After: 5` and `{"error":"jwks_unavailable",…}`, so
 *   AgentPress retries and the retry is processed in full.
 * - An id already processed (kept 24 h, at most `maxRememberedIds`, least recently seen evicted) is
 *   200 `{"received":true,"duplicate":true}` with no refresh; concurrent deliveries of one id share
 *   one processing.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { createKeyRotationRouter } from 'passport-agentpress-partner'
 *
 * const app = express()
 * app.use(
 *   '/webhooks/agentpress/key-rotation',
 *   createKeyRotationRouter({ webhookSecret: process.env.AGENTPRESS_WEBHOOK_SECRET!, strategy }),
 * )
 * app.use(express.json()) // after the router
 * ```
 */
export function createKeyRotationRouter(options: KeyRotationRouterOptions): KeyRotationRouter {
  optionsObject(options, 'createKeyRotationRouter: options must be an object')
  const secret = assertWebhookSecrets(options.webhookSecret, 'webhookSecret')
  const verifiers = resolveVerifiers(options)
  const prepared = prepareKeyRotation({ ...options, secret })
  const { clock } = prepared
  const onRotation = optionalFunction(options.onRotation, 'onRotation must be a function')
  const bodyTimeoutMs = positiveMs(options.bodyTimeoutMs, 'bodyTimeoutMs', 10_000)
  const refreshTimeoutMs = positiveMs(options.refreshTimeoutMs, 'refreshTimeoutMs', 15_000)
  const fleet = checkFleet(options.fleet, 'fleet')
  const maxRemembered = options.maxRememberedIds ?? 1000
  if (!Number.isSafeInteger(maxRemembered) || maxRemembered < 1) {
    throw new TypeError('maxRememberedIds must be a positive integer')
  }

  // id → expiry (ms). Map keeps insertion order, so the first key is the least recently seen.
  const remembered = new Map<string, number>()
  const inFlight = new Map<string, Promise<Outcome>>()

  const isRemembered = (id: string): boolean => {
    const expires = remembered.get(id)
    if (expires === undefined) return false
    if (expires <= clock()) {
      remembered.delete(id)
      return false
    }
    remembered.delete(id)
    remembered.set(id, expires)
    return true
  }
  const remember = (id: string): void => {
    remembered.delete(id)
    remembered.set(id, clock() + REMEMBER_MS)
    while (remembered.size > maxRemembered) {
      remembered.delete(remembered.keys().next().value as string)
    }
  }

  const refresh = (verifier: TokenVerifier): Promise<void> => {
    if (typeof verifier.refreshJwks !== 'function') return Promise.resolve()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('refresh deadline passed')), refreshTimeoutMs)
      timer.unref()
    })
    return Promise.race([Promise.resolve().then(() => verifier.refreshJwks!()), deadline]).finally(
      () => clearTimeout(timer),
    )
  }

  // `signed`: the delivery as received over HTTP, to publish; absent for one relayed by the fleet.
  const apply = async (event: KeyRotationEvent, signed?: SignedDelivery): Promise<Outcome> => {
    const targets = verifiers.filter(
      (v) => event.issuer === undefined || v.issuer === undefined || v.issuer === event.issuer,
    )
    if (targets.length === 0) {
      remember(event.id)
      return UNKNOWN_ISSUER
    }
    let failed = false
    if (event.emergency === true) {
      // Revoke before any await: the retired key is refused from this instant, even if the
      // refetch below fails or stalls (SPEC §5).
      for (const target of targets) {
        try {
          target.revokeKid?.(event.retiredKid)
        } catch {
          failed = true
        }
      }
    }
    const results = await Promise.allSettled(targets.map(refresh))
    if (failed || results.some((result) => result.status === 'rejected')) return REFRESH_FAILED
    if (fleet !== undefined && signed !== undefined) {
      try {
        await fleet.publish(signed, event)
      } catch {
        return FLEET_UNAVAILABLE // not remembered: the retry is processed in full
      }
    }
    remember(event.id)
    if (onRotation !== undefined) {
      try {
        Promise.resolve(onRotation(event)).catch(() => {})
      } catch {
        // A throwing hook must not turn a processed rotation into a retry.
      }
    }
    return RECEIVED
  }

  const shared = async (event: KeyRotationEvent, signed: SignedDelivery): Promise<Outcome> => {
    // An outage here is not a verdict: process locally; the publish then decides the answer.
    const processed = await fleet!.wasProcessed(event.id).catch(() => false)
    if (!processed) return apply(event, signed)
    remember(event.id)
    return DUPLICATE
  }

  const deliver = (event: KeyRotationEvent, signed?: SignedDelivery): Promise<Outcome> => {
    if (isRemembered(event.id)) return Promise.resolve(DUPLICATE)
    let pending = inFlight.get(event.id)
    if (pending === undefined) {
      const run = fleet !== undefined && signed !== undefined ? shared(event, signed) : apply(event)
      pending = run.finally(() => inFlight.delete(event.id))
      inFlight.set(event.id, pending)
    }
    return pending
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const encoding = req.headers['content-encoding']
    if (encoding !== undefined && !/^\s*identity\s*$/i.test(encoding)) {
      // No inflation: the signature covers the bytes as sent, and a decompressor would turn the
      // 8 KB cap into a zip-bomb allowance.
      refuse(res, 'unsupported_encoding', hasUnreadBody(req))
      return
    }
    let body: Uint8Array
    const parsed = preParsedBody(req)
    if (parsed === 'consumed') {
      refuse(res, 'body_already_parsed')
      return
    } else if (parsed !== undefined) body = parsed
    else {
      const length = req.headers['content-length']
      if (length !== undefined && Number(length) > KEY_ROTATION_MAX_BODY_BYTES) {
        refuse(res, 'payload_too_large', true)
        return
      }
      try {
        body = await readBody(req, KEY_ROTATION_MAX_BODY_BYTES, bodyTimeoutMs)
      } catch (error) {
        const kind = (error as BodyReadError).kind
        if (kind === 'too_large') refuse(res, 'payload_too_large', true)
        else if (kind === 'timeout') refuse(res, 'request_timeout', true)
        // aborted: nobody is listening any more; write nothing.
        return
      }
    }
    let event: KeyRotationEvent
    try {
      event = verifyPrepared(prepared, body, req.headers)
    } catch (error) {
      if (!(error instanceof KeyRotationVerifyError)) throw error
      refuse(res, error.reason)
      return
    }
    const outcome = await deliver(
      event,
      fleet === undefined ? undefined : signedDelivery(body, req.headers),
    )
    send(
      res,
      outcome.status,
      outcome.body,
      outcome.status === 503 ? { 'Retry-After': String(JWKS_RETRY_AFTER_SECONDS) } : {},
    )
  }

  fleet?.join({ prepared, verifiers, apply: (event) => deliver(event) })

  return function keyRotationRouter(req, res, next) {
    // Mounted with app.use(path, router), the framework strips the mount path: '/' (or '') is ours.
    const pathname = pathOf(req.url)
    if (pathname !== '/' && pathname !== '') {
      next()
      return
    }
    if (req.method !== 'POST') {
      refuse(res, 'method_not_allowed', hasUnreadBody(req))
      return
    }
    handle(req, res).catch(next)
  }
}
