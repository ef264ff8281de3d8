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
import type { IgnoredWebhookEvent, KeyRotationEvent } from './core/key-rotation-event.js'
import { assertWebhookSecrets, prepareKeyRotation, verifyPrepared } from './core/key-rotation.js'
import {
  MAX_TIMER_MS,
  optionalFunction,
  optionsObject,
  rejectUnknownKeys,
} from './core/validate.js'
import { pathOf, sendJson, type Middleware } from './http/connect.js'
import { BodyReadError, hasUnreadBody, preParsedBody, readBody } from './http/raw-body.js'
import { JWKS_RETRY_AFTER_SECONDS } from './core/reasons.js'
import {
  checkRotationTargets,
  createRotationDeliveries,
  type RotationOutcome,
} from './core/rotation-deliveries.js'
import type { TokenVerifier } from './core/verifier.js'
import { checkFleet, signedDelivery, type RotationFleet } from './core/rotation-fleet.js'
import { publishWebhookDelivery } from './core/diagnostics-publish.js'

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
export type KeyRotationRouterOptions = KeyRotationRouterCommonOptions &
  // Exactly one of the two, as a type (a compile error for both or neither) and at run time.
  (
    | {
        /** Our strategy (or anything exposing `verifiers`): its verifiers are refreshed. */
        strategy: { readonly verifiers: readonly TokenVerifier[] }
        verifiers?: undefined
      }
    | {
        /** The verifiers to refresh, when there is no strategy. */
        verifiers: readonly TokenVerifier[]
        strategy?: undefined
      }
  )

/** The options of {@link createKeyRotationRouter} besides `strategy`/`verifiers`. */
export interface KeyRotationRouterCommonOptions {
  /** The webhook secret, or several while the secret itself is rotated (SPEC §5). */
  webhookSecret: string | readonly string[]
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

const NOT_A_ROTATION: RotationOutcome = {
  status: 200,
  body: { received: true, ignored: 'not_a_rotation' },
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'webhookSecret',
  'strategy',
  'verifiers',
  'onRotation',
  'toleranceSec',
  'clock',
  'bodyTimeoutMs',
  'refreshTimeoutMs',
  'maxRememberedIds',
  'fleet',
])

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
  return checkRotationTargets(list, name)
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
  const body = { error: reason, error_description: row.description }
  publishWebhookDelivery(row.status, body)
  send(res, row.status, body, headers)
}

/**
 * Creates the key-rotation webhook receiver (SPEC §5). Mount it at the URL registered with
 * AgentPress, **before** any global body parser (or keep `req.rawBody` with
 * `express.json({ verify })`): it reads the raw body itself (8192 bytes at most, within
 * `bodyTimeoutMs`), verifies it, and answers `POST` at its mount path only (405 otherwise; other
 * sub-paths go to `next()`). A valid event revokes the retired kid first when `emergency` is set,
 * refreshes the verifiers of `event.issuer`, and is 200 `{"received":true}`; a repeat is
 * acknowledged without a refresh; a failed refresh is 503 with `Retry-After: 5`, so AgentPress
 * retries. An authentic JSON object naming no `retiredKid` / `newCurrentKid` is 200
 * `{"received":true,"ignored":"not_a_rotation"}`. Every refusal is `{"error":"<reason>","error_description":"<fixed text>"}`. The README
 * section "Key-rotation webhook router" has every status.
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
export function createKeyRotationRouter(options: KeyRotationRouterOptions): Middleware {
  optionsObject(options, 'createKeyRotationRouter: options must be an object')
  rejectUnknownKeys(options, KNOWN_OPTIONS, 'createKeyRotationRouter')
  const secret = assertWebhookSecrets(options.webhookSecret, 'webhookSecret')
  const verifiers = resolveVerifiers(options)
  const prepared = prepareKeyRotation({ ...options, secret })
  const { clock } = prepared
  const onRotation = optionalFunction(options.onRotation, 'onRotation must be a function')
  const bodyTimeoutMs = positiveMs(options.bodyTimeoutMs, 'bodyTimeoutMs', 10_000)
  const refreshTimeoutMs = positiveMs(options.refreshTimeoutMs, 'refreshTimeoutMs', 15_000)
  const maxRemembered = options.maxRememberedIds ?? 1000
  if (!Number.isSafeInteger(maxRemembered) || maxRemembered < 1) {
    throw new TypeError('maxRememberedIds must be a positive integer')
  }

  const fleet = checkFleet(options.fleet, 'fleet')
  const deliver = createRotationDeliveries({
    verifiers,
    onRotation,
    refreshTimeoutMs,
    maxRememberedIds: maxRemembered,
    clock,
    fleet,
  })
  fleet?.join({ prepared, verifiers, apply: (event) => deliver(event) })

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
    let event: KeyRotationEvent | IgnoredWebhookEvent
    try {
      event = verifyPrepared(prepared, body, req.headers)
    } catch (error) {
      if (!(error instanceof KeyRotationVerifyError)) throw error
      refuse(res, error.reason)
      return
    }
    const outcome =
      'ignored' in event
        ? NOT_A_ROTATION
        : await deliver(event, fleet === undefined ? undefined : signedDelivery(body, req.headers))
    publishWebhookDelivery(outcome.status, outcome.body, 'ignored' in event ? undefined : event)
    send(
      res,
      outcome.status,
      outcome.body,
      outcome.status === 503 ? { 'Retry-After': String(JWKS_RETRY_AFTER_SECONDS) } : {},
    )
  }

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
