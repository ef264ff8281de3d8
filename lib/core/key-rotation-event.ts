/**
 * The `signing_key_rotation` event (SPEC §5) and the parse of an authenticated body into it.
 */
import { KeyRotationVerifyError } from './key-rotation-errors.js'

/**
 * A verified `signing_key_rotation` webhook event (SPEC §5). Extra body fields are dropped.
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
  /** Always `signing_key_rotation`. */
  readonly type: 'signing_key_rotation'
  /** The trust relationship that rotated; absent means every verifier behind the receiver. */
  readonly issuer?: string
  /** The kid being retired. */
  readonly retiredKid: string
  /** The kid now used for signing. */
  readonly newCurrentKid: string
  /** `true`: the retired key must be refused at once. */
  readonly emergency?: boolean
  /** Time of the rotation as sent, when Date.parse can read it (otherwise left out). */
  readonly occurredAt?: string
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
export function parseEvent(body: Uint8Array): KeyRotationEvent {
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
