/**
 * The key-rotation event (§5) and the parse of an authenticated body into it: a rotation, or
 * an authentic body that names no rotation and is acknowledged as ignored.
 */
import { KeyRotationVerifyError } from './errors.js'

/**
 * A verified `signing_key_rotation` webhook event (§5). Extra body fields are dropped.
 *
 * @example
 * ```ts
 * const event: KeyRotationEvent = {
 *   id: 'evt_0123456789abcdef',
 *   type: 'signing_key_rotation',
 *   issuer: 'https://api.agent.press/orgs/acme-org',
 *   retiredKid: 'ap-2024-01',
 *   newCurrentKid: 'ap-2024-07',
 *   emergency: false,
 *   occurredAt: '2025-01-15T09:30:00Z',
 * }
 * ```
 */
export interface KeyRotationEvent {
  /** Delivery id; repeats of an id already processed are acknowledged without a second refresh. */
  readonly id: string
  /**
   * The event type as sent: `signing_key_rotation`, `scheduled` and `emergency` are rotations; any
   * other type that names both kids is handled as a rotation too (a refresh is always safe) and
   * reported here as sent.
   */
  readonly type: 'signing_key_rotation' | 'scheduled' | 'emergency' | (string & {})
  /** The trust relationship that rotated; absent means every verifier behind the receiver. */
  readonly issuer?: string
  /** The kid being retired. */
  readonly retiredKid: string
  /** The kid now used for signing. */
  readonly newCurrentKid: string
  /** `true`: the retired key must be refused at once (also set for `type: "emergency"`). */
  readonly emergency?: boolean
  /** Time of the rotation as sent, when Date.parse can read it (otherwise left out). */
  readonly occurredAt?: string
}

/**
 * An authentic body (signed with our secret, timely) that is a JSON object but does not name both
 * `retiredKid` and `newCurrentKid`: acknowledged (200) and otherwise ignored, since a retry cannot
 * make it a rotation. `id` and `type` are kept when they are non-empty strings.
 *
 * @example
 * ```ts
 * const result = verifyKeyRotation({ payload, headers, secret })
 * if ('ignored' in result) console.info('webhook ignored:', result.type)
 * else await verifier.refreshJwks()
 * ```
 */
export interface IgnoredWebhookEvent {
  readonly ignored: 'not_a_rotation'
  readonly id?: string
  readonly type?: string
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function invalidPayload(detail: string): KeyRotationVerifyError {
  return new KeyRotationVerifyError('invalid_payload', { cause: new Error(detail) })
}

/**
 * Parses an authenticated body into the event; only the known fields are kept.
 *
 * @internal
 */
export function parseEvent(body: Uint8Array): KeyRotationEvent | IgnoredWebhookEvent {
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
  if (!nonEmptyString(input.retiredKid) || !nonEmptyString(input.newCurrentKid)) {
    // Authentic, but no rotation: nothing to refresh, and a 4xx would only be retried in vain.
    const ignored: { -readonly [K in keyof IgnoredWebhookEvent]: IgnoredWebhookEvent[K] } = {
      ignored: 'not_a_rotation',
    }
    if (nonEmptyString(input.id)) ignored.id = input.id
    if (nonEmptyString(input.type)) ignored.type = input.type
    return Object.freeze(ignored)
  }
  for (const field of ['id', 'type'] as const) {
    if (!nonEmptyString(input[field])) throw invalidPayload(`${field} must be a non-empty string`)
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
  // and can never reach a fetch (§5: no URL or key material is taken from the body).
  const event: {
    -readonly [K in keyof KeyRotationEvent]: KeyRotationEvent[K]
  } = {
    id: input.id as string,
    type: input.type as string,
    retiredKid: input.retiredKid,
    newCurrentKid: input.newCurrentKid,
  }
  if (input.issuer !== undefined) event.issuer = input.issuer as string
  if (input.emergency !== undefined) event.emergency = input.emergency as boolean
  if (input.type === 'emergency') event.emergency = true
  // Informational only: an ISO-8601 spelling Date.parse cannot read is dropped, never a reason to
  // refuse an authentic rotation (which AgentPress would retry in vain).
  if (typeof input.occurredAt === 'string' && !Number.isNaN(Date.parse(input.occurredAt))) {
    event.occurredAt = input.occurredAt
  }
  return Object.freeze(event)
}
