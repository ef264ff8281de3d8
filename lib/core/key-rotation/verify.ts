/**
 * Verification of the `signing_key_rotation` webhook (§5): the HMAC-SHA256 signature over
 * `<timestamp>.<raw body>`, the ±300 s timestamp window and the shape of the event.
 *
 * Framework-free: it takes the raw bytes and a plain header object. The HTTP adapter that reads the
 * body, deduplicates deliveries and refreshes the JWKS is `createKeyRotationRouter`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { parseEvent, type IgnoredWebhookEvent, type KeyRotationEvent } from './event.js'
import { KEY_ROTATION_MAX_BODY_BYTES, KeyRotationVerifyError } from './errors.js'
import {
  header,
  parseSignatures,
  parseTimestamp,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
} from './signature.js'

/**
 * Default timestamp window, in seconds, applied in both directions (§5, public).
 *
 * @internal
 */
export const KEY_ROTATION_TOLERANCE_SEC = 300

/**
 * Validates and normalises `webhookSecret` (§5: a configuration error at construction when a
 * secret is empty, shorter than 16 characters or has leading/trailing whitespace — whitespace
 * usually means a copy-paste or `.env` accident that would make every signature fail silently).
 *
 * @param secret One secret, or several while the secret itself is being rotated.
 * @param name The option name used in error messages.
 * @returns A frozen, non-empty array of secrets.
 * @throws TypeError naming the option and the rule broken (never the secret itself).
 *
 * @internal
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
 * @internal
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

// The rest of a `whsec_` secret, when it is canonical padded base64 (Svix-style secrets are).
const BASE64_SECRET = /^whsec_((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$/

/**
 * The HMAC keys of one secret (§5): the UTF-8 bytes of the whole string, and, for a
 * `whsec_` secret whose rest is valid base64, the decoded rest (as Svix derives it).
 *
 * @internal
 */
export function webhookKeys(secret: string): Buffer[] {
  const keys = [Buffer.from(secret, 'utf8')]
  const match = BASE64_SECRET.exec(secret)
  if (match !== null && match[1]!.length > 0) {
    const decoded = Buffer.from(match[1]!, 'base64')
    // Canonical only: the last character's unused bits must be zero, so one text is one key.
    if (decoded.toString('base64') === match[1]) keys.push(decoded)
  }
  return keys
}

/**
 * Verifies one key-rotation delivery and returns its event (§5).
 *
 * Order of checks: body size → signature header present → timestamp present, digits only and
 * within ±`toleranceSec` → HMAC-SHA256 of `<timestamp>.<raw body>` under any key of any secret
 * (the whole string as UTF-8; for `whsec_<base64>` also the decoded rest) against any signature
 * entry (hex or `v1,<base64>`, constant time) → JSON shape. The body is parsed only once it is
 * authenticated, so an unsigned request never learns anything about the payload rules.
 *
 * @returns The event, frozen, with only the fields of {@link KeyRotationEvent}; or, for an
 *   authentic JSON object that names no `retiredKid` / `newCurrentKid`, an
 *   {@link IgnoredWebhookEvent} (acknowledge it; there is nothing to refresh).
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
 * if (!('ignored' in event)) {
 *   if (event.emergency) verifier.revokeKid(event.retiredKid)
 *   await verifier.refreshJwks()
 * }
 * ```
 */
export function verifyKeyRotation(
  options: VerifyKeyRotationOptions,
): KeyRotationEvent | IgnoredWebhookEvent {
  return verifyPrepared(prepareKeyRotation(options), options.payload, options.headers)
}

/** The verification settings, validated once (the router prepares them at construction). @internal */
export interface PreparedKeyRotation {
  readonly secrets: readonly string[]
  /** Every HMAC key the secrets stand for (see {@link webhookKeys}). */
  readonly keys: readonly Buffer[]
  readonly toleranceSec: number
  readonly clock: () => number
}

/** Validates the settings of {@link verifyKeyRotation}. @internal */
export function prepareKeyRotation(
  options: Pick<VerifyKeyRotationOptions, 'secret' | 'toleranceSec' | 'clock'>,
): PreparedKeyRotation {
  const secrets = assertWebhookSecrets(options.secret, 'secret')
  const toleranceSec = assertToleranceSec(options.toleranceSec)
  const clock = options.clock ?? Date.now
  if (typeof clock !== 'function') throw new TypeError('clock must be a function')
  const keys = Object.freeze(secrets.flatMap(webhookKeys))
  return Object.freeze({ secrets, keys, toleranceSec, clock })
}

/** {@link verifyKeyRotation} with prepared settings. @internal */
export function verifyPrepared(
  prepared: PreparedKeyRotation,
  payload: VerifyKeyRotationOptions['payload'],
  headers: VerifyKeyRotationOptions['headers'],
): KeyRotationEvent | IgnoredWebhookEvent {
  const { keys, toleranceSec, clock } = prepared
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

  const signatureHeader = header(headers, SIGNATURE_HEADER)
  if (signatureHeader === undefined || signatureHeader.trim() === '') {
    throw new KeyRotationVerifyError('missing_signature')
  }
  const timestamp = header(headers, TIMESTAMP_HEADER)
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
  for (const key of keys) {
    const expected = createHmac('sha256', key)
      .update(Buffer.from(timestamp, 'ascii'))
      .update('.')
      .update(body)
      .digest()
    // Compare against every entry without stopping early, so timing says nothing about which
    // entry, which secret or which derivation matched. All buffers are 32 bytes by construction.
    for (const mac of received) if (timingSafeEqual(mac, expected)) matched = true
  }
  if (!matched) throw new KeyRotationVerifyError('signature_mismatch')
  return parseEvent(body)
}
