/**
 * The refusals of the key-rotation webhook (§5): reason → status and fixed description, the
 * error verification throws, and the two refusals only the HTTP receiver makes (405, 408).
 */
import { trimStack } from '../refusals/errors.js'

/**
 * The stable reasons a key-rotation delivery is refused with (§5).
 *
 * @example
 * ```ts
 * const reason: KeyRotationVerifyErrorReason = 'timestamp_out_of_window'
 * KEY_ROTATION_ERRORS[reason].status // 401
 * ```
 */
export type KeyRotationVerifyErrorReason =
  | 'missing_signature'
  | 'missing_timestamp'
  | 'invalid_timestamp'
  | 'timestamp_out_of_window'
  | 'signature_mismatch'
  | 'invalid_payload'
  | 'payload_too_large'
  | 'unsupported_encoding'
  | 'body_already_parsed'

/**
 * One row of {@link KEY_ROTATION_ERRORS}.
 */
export interface KeyRotationErrorEntry {
  /** HTTP status of the response (§5 table). */
  readonly status: 400 | 401 | 413 | 415 | 500
  /** Fixed description: the error's message and the `error_description` of the JSON body. */
  readonly description: string
}

/**
 * Largest accepted body, in bytes (§5: 8 KB, public).
 *
 * @internal
 */
export const KEY_ROTATION_MAX_BODY_BYTES = 8192

const row = (status: KeyRotationErrorEntry['status'], description: string): KeyRotationErrorEntry =>
  Object.freeze({ status, description })

/**
 * Reason → status and fixed description. The router renders exactly these; nothing from the
 * request is ever reflected into a response.
 *
 * @example
 * ```ts
 * KEY_ROTATION_ERRORS.payload_too_large.status // 413
 * ```
 */
export const KEY_ROTATION_ERRORS: Readonly<
  Record<KeyRotationVerifyErrorReason, KeyRotationErrorEntry>
> = Object.freeze({
  missing_signature: row(401, 'Missing X-AgentPress-Signature header'),
  missing_timestamp: row(401, 'Missing X-AgentPress-Timestamp header'),
  invalid_timestamp: row(401, 'X-AgentPress-Timestamp must be Unix seconds in ASCII digits'),
  timestamp_out_of_window: row(401, 'Timestamp outside the accepted window'),
  signature_mismatch: row(401, 'Signature does not match'),
  invalid_payload: row(400, 'Invalid key-rotation payload'),
  payload_too_large: row(413, `Payload larger than ${KEY_ROTATION_MAX_BODY_BYTES} bytes`),
  unsupported_encoding: row(415, 'Content-Encoding must be identity'),
  body_already_parsed: row(
    500,
    'A body parser consumed the raw request body before the key-rotation router. Mount the ' +
      'router before express.json(), or keep the raw bytes with ' +
      'express.json({ verify: (req, res, buf) => { req.rawBody = buf } })',
  ),
})

/**
 * The nine reasons, in the order of §5.
 *
 * @internal
 */
export const KEY_ROTATION_VERIFY_ERROR_REASONS: readonly KeyRotationVerifyErrorReason[] =
  Object.freeze(Object.keys(KEY_ROTATION_ERRORS) as KeyRotationVerifyErrorReason[])

/**
 * A key-rotation delivery was refused. `reason` is one of §5's; `status`/`statusCode` and
 * `expose` follow the `http-errors` convention so `finalhandler` renders the right status. The
 * message is the fixed description of {@link KEY_ROTATION_ERRORS}; details, if any, are in `cause`.
 *
 * @example
 * ```ts
 * try {
 *   verifyKeyRotation({ payload, headers, secret })
 * } catch (err) {
 *   if (err instanceof KeyRotationVerifyError) res.status(err.status).json({ error: err.reason })
 * }
 * ```
 */
export class KeyRotationVerifyError extends Error {
  override readonly name = 'KeyRotationVerifyError'
  /** Stable machine-readable reason. */
  readonly reason: KeyRotationVerifyErrorReason
  /** HTTP status (§5 table). */
  readonly status: KeyRotationErrorEntry['status']
  /** Same as `status`, for handlers that read `statusCode`. */
  readonly statusCode: KeyRotationErrorEntry['status']
  /** The message is fixed text: safe to expose. */
  readonly expose = true

  constructor(reason: KeyRotationVerifyErrorReason, options: { cause?: unknown } = {}) {
    const entry = KEY_ROTATION_ERRORS[reason]
    super(entry.description, options.cause === undefined ? undefined : { cause: options.cause })
    this.reason = reason
    this.status = entry.status
    this.statusCode = entry.status
    trimStack(this)
  }

  /** The fixed description (same as `message`). */
  get description(): string {
    return KEY_ROTATION_ERRORS[this.reason].description
  }
}

/** A refusal of the HTTP receiver outside §5's verification reasons. @internal */
export type KeyRotationRouterReason =
  KeyRotationVerifyErrorReason | 'method_not_allowed' | 'request_timeout'

const ROUTER_ONLY: Readonly<
  Record<'method_not_allowed' | 'request_timeout', { status: number; description: string }>
> = Object.freeze({
  method_not_allowed: Object.freeze({ status: 405, description: 'Only POST is allowed' }),
  request_timeout: Object.freeze({ status: 408, description: 'Request body not received in time' }),
})

/** The status and description of a receiver refusal. @internal */
export function keyRotationRefusal(reason: KeyRotationRouterReason): {
  readonly status: number
  readonly description: string
} {
  return reason === 'method_not_allowed' || reason === 'request_timeout'
    ? ROUTER_ONLY[reason]
    : KEY_ROTATION_ERRORS[reason]
}
