/**
 * Verification of the `signing_key_rotation` webhook (SPEC §5): the HMAC-SHA256 signature over
 * `<timestamp>.<raw body>`, the ±300 s timestamp window and the shape of the event.
 *
 * Framework-free: it takes the raw bytes and a plain header object. The HTTP adapter that reads the
 * body, deduplicates deliveries and refreshes the JWKS is `createKeyRotationRouter`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { KeyRotationEvent } from './types.js'

/**
 * The stable reasons a key-rotation delivery is refused with (SPEC §5).
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
 *
 * @example
 * ```ts
 * const entry: KeyRotationErrorEntry = KEY_ROTATION_ERRORS.unsupported_encoding
 * // { status: 415, description: 'Content-Encoding must be identity' }
 * ```
 */
export interface KeyRotationErrorEntry {
  /** HTTP status of the response (SPEC §5 table). */
  readonly status: 400 | 401 | 413 | 415 | 500
  /** Fixed description: the error's message and the `error_description` of the JSON body. */
  readonly description: string
}

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
  payload_too_large: row(413, 'Payload larger than 8192 bytes'),
  unsupported_encoding: row(415, 'Content-Encoding must be identity'),
  body_already_parsed: row(
    500,
    'A body parser consumed the raw request body before the key-rotation router. Mount the ' +
      'router before express.json(), or keep the raw bytes with ' +
      'express.json({ verify: (req, res, buf) => { req.rawBody = buf } })',
  ),
})

/**
 * The nine reasons, in the order of SPEC §5.
 *
 * @example
 * ```ts
 * KEY_ROTATION_VERIFY_ERROR_REASONS.includes('signature_mismatch') // true
 * ```
 */
export const KEY_ROTATION_VERIFY_ERROR_REASONS: readonly KeyRotationVerifyErrorReason[] =
  Object.freeze(Object.keys(KEY_ROTATION_ERRORS) as KeyRotationVerifyErrorReason[])

/**
 * Largest accepted body, in bytes (SPEC §5: 8 KB, public).
 *
 * @example
 * ```ts
 * if (body.length > KEY_ROTATION_MAX_BODY_BYTES) res.statusCode = 413
 * ```
 */
export const KEY_ROTATION_MAX_BODY_BYTES = 8192

/**
 * Default timestamp window, in seconds, applied in both directions (SPEC §5, public).
 *
 * @example
 * ```ts
 * verifyKeyRotation({ payload, headers, secret, toleranceSec: KEY_ROTATION_TOLERANCE_SEC })
 * ```
 */
export const KEY_ROTATION_TOLERANCE_SEC = 300

/**
 * Most signature entries one header may carry; more is refused before any HMAC (SPEC §5).
 *
 * @example
 * ```ts
 * KEY_ROTATION_MAX_SIGNATURES // 8
 * ```
 */
export const KEY_ROTATION_MAX_SIGNATURES = 8

/**
 * Name of the timestamp header, lower-case as Node delivers it.
 *
 * @example
 * ```ts
 * req.headers[KEY_ROTATION_TIMESTAMP_HEADER] // '1700000000'
 * ```
 */
export const KEY_ROTATION_TIMESTAMP_HEADER = 'x-agentpress-timestamp'

/**
 * Name of the signature header, lower-case as Node delivers it.
 *
 * @example
 * ```ts
 * req.headers[KEY_ROTATION_SIGNATURE_HEADER] // 'sha256=…'
 * ```
 */
export const KEY_ROTATION_SIGNATURE_HEADER = 'x-agentpress-signature'

/**
 * A key-rotation delivery was refused. `reason` is one of SPEC §5's; `status`/`statusCode` and
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
  /** HTTP status (SPEC §5 table). */
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
    // An expected outcome, not a bug: keep the stack to its first line, as errors.ts does, so a
    // development-mode error page never prints library internals.
    this.stack = `${this.name}: ${this.message}`
  }

  /** The fixed description (same as `message`). */
  get description(): string {
    return KEY_ROTATION_ERRORS[this.reason].description
  }
}

/**
 * Validates and normalises `webhookSecret` (SPEC §5: a configuration error at construction when a
 * secret is empty, shorter than 16 characters or has leading/trailing whitespace — whitespace
 * usually means a copy-paste or `.env` accident that would make every signature fail silently).
 *
 * @param secret One secret, or several while the secret itself is being rotated.
 * @param name The option name used in error messages.
 * @returns A frozen, non-empty array of secrets.
 * @throws TypeError naming the option and the rule broken (never the secret itself).
 *
 * @example
 * ```ts
 * const secrets = assertWebhookSecrets(process.env.AGENTPRESS_WEBHOOK_SECRET ?? '')
 * ```
 */
export function assertWebhookSecrets(secret: unknown, name = 'webhookSecret'): readonly string[] {
  const list: unknown[] = Array.isArray(secret) ? [...(secret as unknown[])] : [secret]
  if (list.length === 0) throw new TypeError(`${name} must not be an empty array`)
  list.forEach((value, index) => {
    const label = Array.isArray(secret) ? `${name}[${index}]` : name
    if (typeof value !== 'string') throw new TypeError(`${label} must be a string`)
    if (value.length === 0) throw new TypeError(`${label} must not be empty`)
    if (value.length < 16) throw new TypeError(`${label} must be at least 16 characters long`)
    if (/^\s|\s$/u.test(value)) {
      throw new TypeError(`${label} must not have leading or trailing whitespace`)
    }
  })
  return Object.freeze(list as string[])
}

/**
 * Validates `toleranceSec`: a finite, non-negative number of seconds (default 300).
 *
 * @example
 * ```ts
 * assertToleranceSec(undefined) // 300
 * ```
 */
export function assertToleranceSec(value: unknown, name = 'toleranceSec'): number {
  if (value === undefined) return KEY_ROTATION_TOLERANCE_SEC
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a finite, non-negative number of seconds`)
  }
  return value
}

/**
 * Input of {@link verifyKeyRotation}.
 *
 * @example
 * ```ts
 * const options: VerifyKeyRotationOptions = {
 *   payload: rawBody, // the Buffer exactly as received, before any JSON parsing
 *   headers: req.headers,
 *   secret: [newSecret, oldSecret], // either may sign while the secret itself is rotated
 * }
 * const event = verifyKeyRotation(options)
 * ```
 */
export interface VerifyKeyRotationOptions {
  /** The raw request body exactly as received (a string is taken as its UTF-8 bytes). */
  payload: Uint8Array | string
  /** Request headers; names in any case. A string array is joined with `", "`, as Node does. */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>
  /** The webhook secret, or several (any may match). */
  secret: string | readonly string[]
  /** Accepted clock difference in seconds, both directions, inclusive. Default 300. */
  toleranceSec?: number
  /** Clock in milliseconds since the epoch; default `Date.now`. For tests. */
  clock?: () => number
}

function header(headers: VerifyKeyRotationOptions['headers'], name: string): string | undefined {
  let found: string | undefined
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== name) continue
    const value = headers[key]
    const text =
      typeof value === 'string' ? value : Array.isArray(value) ? value.join(', ') : undefined
    // Two spellings of the same header are two header lines: join them as Node does.
    if (text !== undefined) found = found === undefined ? text : `${found}, ${text}`
  }
  return found
}

// `sha256=<hex>`, `v1=<hex>` or bare hex; lower-case only, so each MAC has one spelling (SPEC §5).
const SIGNATURE_ENTRY = /^(?:sha256=|v1=)?([0-9a-f]{64})$/

/**
 * Parses the signature header into at most eight 32-byte MACs. The format is checked with a regular
 * expression before `Buffer.from(hex)`, which silently stops at the first non-hex character, and
 * before `timingSafeEqual`, which throws on a length mismatch (ATTACKS.md).
 */
function parseSignatures(value: string): Buffer[] {
  const entries = value.split(/[ ,]+/).filter((entry) => entry !== '')
  if (entries.length > KEY_ROTATION_MAX_SIGNATURES) {
    throw new KeyRotationVerifyError('signature_mismatch', {
      cause: new Error(`more than ${KEY_ROTATION_MAX_SIGNATURES} signature entries`),
    })
  }
  const macs: Buffer[] = []
  for (const entry of entries) {
    const match = SIGNATURE_ENTRY.exec(entry)
    // A malformed entry cannot match; it is skipped so a well-formed one beside it still counts.
    if (match !== null) macs.push(Buffer.from(match[1] as string, 'hex'))
  }
  return macs
}

function parseTimestamp(value: string, toleranceSec: number, nowMs: number): void {
  // Digits only [SPEC §5, ours]: no sign, no decimals, no exponent, no hex, no spaces, which
  // Number() and parseInt() would otherwise accept in some form.
  if (!/^[0-9]{1,16}$/.test(value)) throw new KeyRotationVerifyError('invalid_timestamp')
  const timestamp = Number(value)
  const now = Math.floor(nowMs / 1000)
  if (!Number.isFinite(now) || Math.abs(now - timestamp) > toleranceSec) {
    throw new KeyRotationVerifyError('timestamp_out_of_window')
  }
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function invalidPayload(detail: string): KeyRotationVerifyError {
  return new KeyRotationVerifyError('invalid_payload', { cause: new Error(detail) })
}

function parseEvent(body: Uint8Array): KeyRotationEvent {
  if (body.length === 0) throw invalidPayload('empty body')
  // The signature was checked over the bytes; decoding happens only now. A UTF-8 BOM may be
  // ignored by a JSON parser (RFC 8259 §8.1), and invalid UTF-8 decodes to U+FFFD: the bytes are
  // already authenticated, so lenient decoding cannot let anyone forge an event.
  const text = new TextDecoder('utf-8', { ignoreBOM: false }).decode(body)
  if (text.length === 0) throw invalidPayload('empty body')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (cause) {
    throw new KeyRotationVerifyError('invalid_payload', { cause })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidPayload('body is not a JSON object')
  }
  const input = parsed as Record<string, unknown>
  for (const field of ['id', 'type', 'retiredKid', 'newCurrentKid'] as const) {
    if (!nonEmptyString(input[field])) throw invalidPayload(`${field} must be a non-empty string`)
  }
  if (input.type !== 'signing_key_rotation') {
    throw invalidPayload('type is not signing_key_rotation')
  }
  if (input.issuer !== undefined && !nonEmptyString(input.issuer)) {
    throw invalidPayload('issuer must be a non-empty string when present')
  }
  if (input.emergency !== undefined && typeof input.emergency !== 'boolean') {
    throw invalidPayload('emergency must be a boolean when present')
  }
  if (input.occurredAt !== undefined && typeof input.occurredAt !== 'string') {
    throw invalidPayload('occurredAt must be a string when present')
  }
  // Copy only the known fields: a `jwksUrl`, `keys` or anything else in the body is dropped here
  // and can never reach a fetch (SPEC §5: no URL or key material is taken from the body).
  const event: {
    -readonly [K in keyof KeyRotationEvent]: KeyRotationEvent[K]
  } = {
    id: input.id as string,
    type: 'signing_key_rotation',
    retiredKid: input.retiredKid as string,
    newCurrentKid: input.newCurrentKid as string,
  }
  if (input.issuer !== undefined) event.issuer = input.issuer as string
  if (input.emergency !== undefined) event.emergency = input.emergency as boolean
  // Informational only: an ISO-8601 spelling Date.parse cannot read is dropped, never a reason to
  // refuse an authentic rotation (which AgentPress would retry in vain).
  if (typeof input.occurredAt === 'string' && !Number.isNaN(Date.parse(input.occurredAt))) {
    event.occurredAt = input.occurredAt
  }
  return Object.freeze(event)
}

/**
 * Verifies one key-rotation delivery and returns its event (SPEC §5).
 *
 * Order of checks: body size → signature header present → timestamp present, digits only and
 * within ±`toleranceSec` → HMAC-SHA256 of `<timestamp>.<raw body>` under any secret against any
 * signature entry (constant time) → JSON shape. The body is parsed only once it is authenticated,
 * so an unsigned request never learns anything about the payload rules.
 *
 * @returns The event, frozen, with only the fields of {@link KeyRotationEvent}.
 * @throws KeyRotationVerifyError with the reason of the first failed check.
 * @throws TypeError when `secret` or `toleranceSec` is misconfigured.
 *
 * @example
 * ```ts
 * const event = verifyKeyRotation({
 *   payload: rawBody, // Buffer, exactly as received
 *   headers: req.headers,
 *   secret: process.env.AGENTPRESS_WEBHOOK_SECRET!,
 * })
 * if (event.emergency) verifier.revokeKid(event.retiredKid)
 * await verifier.refreshJwks()
 * ```
 */
export function verifyKeyRotation(options: VerifyKeyRotationOptions): KeyRotationEvent {
  const secrets = assertWebhookSecrets(options.secret, 'secret')
  const toleranceSec = assertToleranceSec(options.toleranceSec)
  const clock = options.clock ?? Date.now
  if (typeof clock !== 'function') throw new TypeError('clock must be a function')
  const { payload, headers } = options
  if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
    throw new TypeError('payload must be the raw body as a Buffer, Uint8Array or string')
  }
  if (typeof headers !== 'object' || headers === null) {
    throw new TypeError('headers must be an object')
  }
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  if (body.length > KEY_ROTATION_MAX_BODY_BYTES) {
    throw new KeyRotationVerifyError('payload_too_large')
  }

  const signatureHeader = header(headers, KEY_ROTATION_SIGNATURE_HEADER)
  if (signatureHeader === undefined || signatureHeader.trim() === '') {
    throw new KeyRotationVerifyError('missing_signature')
  }
  const timestamp = header(headers, KEY_ROTATION_TIMESTAMP_HEADER)
  if (timestamp === undefined || timestamp === '') {
    throw new KeyRotationVerifyError('missing_timestamp')
  }
  parseTimestamp(timestamp, toleranceSec, clock())

  const received = parseSignatures(signatureHeader)
  if (received.length === 0) {
    throw new KeyRotationVerifyError('signature_mismatch', {
      cause: new Error('no well-formed signature entry'),
    })
  }
  let matched = false
  for (const secret of secrets) {
    // The key is the UTF-8 bytes of the whole secret, prefix included (SPEC §5).
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8'))
      .update(Buffer.from(timestamp, 'ascii'))
      .update('.')
      .update(body)
      .digest()
    // Compare against every entry without stopping early, so timing says nothing about which
    // entry or which secret matched. All buffers are 32 bytes by construction.
    for (const mac of received) if (timingSafeEqual(mac, expected)) matched = true
  }
  if (!matched) throw new KeyRotationVerifyError('signature_mismatch')
  return parseEvent(body)
}
