/**
 * The HTTP receiver of the key-rotation webhook (§5): reads the raw body itself, verifies it
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
} from '../core/key-rotation/errors.js'
import type { IgnoredWebhookEvent, KeyRotationEvent } from '../core/key-rotation/event.js'
import { secretMatchOf, verifyPrepared } from '../core/key-rotation/verify.js'
import { pathOf, sendJson, type Middleware } from '../http/connect.js'
import { BodyReadError, hasUnreadBody, preParsedBody, readBody } from '../http/raw-body.js'
import { JWKS_RETRY_AFTER_SECONDS } from '../core/refusals/reasons.js'
import { createRotationDeliveries, type RotationOutcome } from '../core/key-rotation/deliveries.js'
import { signedDelivery, type RelayedEventResult } from '../core/key-rotation/fleet.js'
import { publishWebhookDelivery } from '../core/diagnostics/publish.js'
import { normalizeRouterOptions, type KeyRotationRouterOptions } from './options.js'

export type { KeyRotationRouterCommonOptions, KeyRotationRouterOptions } from './options.js'

const NOT_A_ROTATION: RotationOutcome = {
  status: 200,
  body: { received: true, ignored: 'not_a_rotation' },
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

const APPLIED: RelayedEventResult = Object.freeze({ applied: true })

/**
 * Creates the key-rotation webhook receiver (§5). Mount it at the URL registered with
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
  const { prepared, bodyTimeoutMs, fleet, deliveries } = normalizeRouterOptions(options)
  const deliver = createRotationDeliveries(deliveries)
  fleet?.join({
    prepared,
    verifiers: deliveries.verifiers,
    // A relayed event's outcome is nobody's HTTP answer: the fleet counts and reports it.
    apply: (event) =>
      deliver(event).then((outcome) =>
        outcome.status === 200 ? APPLIED : { applied: false, reason: String(outcome.body.error) },
      ),
  })
  let warnedParsed = false

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
      // Only AgentPress sees this 500, and it retries for a day: say it once, loudly, here.
      if (!warnedParsed) {
        warnedParsed = true
        process.emitWarning(
          `createKeyRotationRouter: every delivery will fail with 500 body_already_parsed. ${keyRotationRefusal('body_already_parsed').description}`,
          { code: 'AGENTPRESS_WEBHOOK_BODY_ALREADY_PARSED' },
        )
      }
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
    publishWebhookDelivery(
      outcome.status,
      outcome.body,
      'ignored' in event ? undefined : event,
      secretMatchOf(event),
    )
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
