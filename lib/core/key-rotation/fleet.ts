/**
 * What the key-rotation router and a fleet of instances (for example the Redis fleet of
 * `passport-agentpress-partner/redis`) exchange, and the authenticated records a fleet stores.
 *
 * Nothing a fleet relays or stores is trusted as such: a relayed delivery is the signed webhook
 * itself, verified again by every receiver with its own webhook secret; a stored revocation and a
 * "processed" marker carry an HMAC-SHA256 under the webhook secret. Write access to the shared
 * store alone can therefore neither revoke a key, nor trigger a refresh, nor mark a delivery done.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { KeyRotationEvent } from './event.js'
import type { PreparedKeyRotation } from './verify.js'
import type { TokenVerifier } from '../verifier/verifier.js'

/**
 * A webhook delivery exactly as AgentPress signed it: the raw body and the two signature headers.
 *
 * @example
 * ```ts
 * const delivery: SignedDelivery = {
 *   body: rawBody,
 *   timestamp: req.headers['x-agentpress-timestamp'] as string,
 *   signature: req.headers['x-agentpress-signature'] as string,
 * }
 * ```
 */
export interface SignedDelivery {
  readonly body: Uint8Array
  readonly timestamp: string
  readonly signature: string
}

/**
 * The side of a rotation router a fleet talks to (given to {@link RotationFleet.join}).
 *
 * @example
 * ```ts
 * fleet.join({ prepared, verifiers, apply: (event) => deliverLocally(event) })
 * ```
 */
export interface RotationFleetMember {
  /** The router's webhook secrets, window and clock: relays and records are checked with them. */
  readonly prepared: PreparedKeyRotation
  /** The verifiers a revocation applies to. */
  readonly verifiers: readonly TokenVerifier[]
  /** Processes a verified, relayed event locally (revoke, refresh), never publishing it again. */
  apply(event: KeyRotationEvent): Promise<unknown>
}

/**
 * A fleet the key-rotation router can share its deliveries with (`createKeyRotationRouter({ fleet })`).
 *
 * @example
 * ```ts
 * import { createRedisFleet } from 'passport-agentpress-partner/redis'
 *
 * const fleet: RotationFleet = createRedisFleet({ url: 'redis://127.0.0.1:6379' })
 * app.use('/webhooks/agentpress/key-rotation', createKeyRotationRouter({ webhookSecret, strategy, fleet }))
 * ```
 */
export interface RotationFleet {
  /** Called once by the router at construction. */
  join(member: RotationFleetMember): void
  /** Whether another instance already processed and published event `id`; rejects on an outage. */
  wasProcessed(id: string): Promise<boolean>
  /**
   * Shares a delivery this instance verified and applied: the relay, the "processed" marker and,
   * for an emergency, the stored revocation. Rejects when the fleet cannot have it (503). With
   * `processed: false` (an emergency whose local refresh failed), no marker is written: the
   * revocation spreads at once, and AgentPress's retry is still processed in full wherever it lands.
   * With `relayed: true` the relay (and record) of this delivery already went out through an
   * earlier `publish(…, { processed: false })`: only the marker is left to write (a fleet that
   * ignores the flag relays twice, which receivers acknowledge as a duplicate).
   */
  publish(
    delivery: SignedDelivery,
    event: KeyRotationEvent,
    options?: { readonly processed?: boolean; readonly relayed?: boolean },
  ): Promise<void>
}

/**
 * A stored emergency revocation: the retired `kid` of `issuer` (`''` when the event named no
 * issuer: every verifier) is refused until `expiresAtMs`; `mac` authenticates the three.
 *
 * @internal
 */
export interface RevocationRecord {
  readonly issuer: string
  readonly kid: string
  readonly expiresAtMs: number
  readonly mac: string
}

// Domain-separated, length-unambiguous encodings: a MAC of one kind never verifies as another.
const revocationInput = (issuer: string, kid: string, expiresAtMs: number): string =>
  JSON.stringify(['agentpress-partner/revocation/1', issuer, kid, expiresAtMs])
const processedInput = (id: string): string =>
  JSON.stringify(['agentpress-partner/processed/1', id])

const mac = (secret: string, input: string): string =>
  createHmac('sha256', Buffer.from(secret, 'utf8')).update(input, 'utf8').digest('hex')

function macMatches(secrets: readonly string[], input: string, received: unknown): boolean {
  if (typeof received !== 'string' || !/^[0-9a-f]{64}$/.test(received)) return false
  const given = Buffer.from(received, 'hex')
  let matched = false
  for (const secret of secrets) {
    if (timingSafeEqual(given, Buffer.from(mac(secret, input), 'hex'))) matched = true
  }
  return matched
}

/**
 * The record revoking `event.retiredKid`, MAC'd with the first (current) secret.
 *
 * @internal
 */
export function signRevocation(
  secrets: readonly string[],
  event: KeyRotationEvent,
  expiresAtMs: number,
): RevocationRecord {
  const issuer = event.issuer ?? ''
  const kid = event.retiredKid
  return Object.freeze({
    issuer,
    kid,
    expiresAtMs,
    mac: mac(secrets[0]!, revocationInput(issuer, kid, expiresAtMs)),
  })
}

/**
 * Parses a stored record (JSON text) and checks its MAC under any secret; `undefined` when it is
 * malformed, forged or expired.
 *
 * @internal
 */
export function openRevocation(
  secrets: readonly string[],
  text: string,
  nowMs: number,
): RevocationRecord | undefined {
  if (text.length > 4096) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { issuer, kid, expiresAtMs, mac: received } = value as Record<string, unknown>
  if (typeof issuer !== 'string' || typeof kid !== 'string' || kid === '') return undefined
  if (typeof expiresAtMs !== 'number' || !Number.isSafeInteger(expiresAtMs)) return undefined
  if (expiresAtMs <= nowMs) return undefined
  if (!macMatches(secrets, revocationInput(issuer, kid, expiresAtMs), received)) return undefined
  return Object.freeze({ issuer, kid, expiresAtMs, mac: received as string })
}

/** The JSON text a record is stored as. @internal */
export const revocationText = (record: RevocationRecord): string =>
  JSON.stringify({
    issuer: record.issuer,
    kid: record.kid,
    expiresAtMs: record.expiresAtMs,
    mac: record.mac,
  })

/** Revokes the record's kid on every matching verifier. @internal */
export function applyRevocation(
  verifiers: readonly TokenVerifier[],
  record: RevocationRecord,
): void {
  for (const verifier of verifiers) {
    if (record.issuer !== '' && verifier.issuer !== undefined && verifier.issuer !== record.issuer)
      continue
    try {
      verifier.revokeKid?.(record.kid)
    } catch {
      // A foreign verifier's failure must not stop the others from revoking.
    }
  }
}

/** The value of the shared "event `id` was processed" marker. @internal */
export const processedMarker = (secrets: readonly string[], id: string): string =>
  mac(secrets[0]!, processedInput(id))

/** Whether `value` is an authentic marker for `id`. @internal */
export const isProcessedMarker = (
  secrets: readonly string[],
  id: string,
  value: unknown,
): boolean => macMatches(secrets, processedInput(id), value)

/** Validates the router's `fleet` option. @internal */
export function checkFleet(value: unknown, name: string): RotationFleet | undefined {
  if (value === undefined) return undefined
  const fleet = value as Partial<RotationFleet> | null
  if (
    typeof fleet !== 'object' ||
    fleet === null ||
    typeof fleet.join !== 'function' ||
    typeof fleet.wasProcessed !== 'function' ||
    typeof fleet.publish !== 'function'
  ) {
    throw new TypeError(`${name} must be a fleet with join(), wasProcessed() and publish() methods`)
  }
  return fleet as RotationFleet
}

/**
 * The delivery as received, from headers `verifyPrepared` accepted (so both are present).
 *
 * @internal
 */
export function signedDelivery(
  body: Uint8Array,
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
): SignedDelivery {
  const text = (name: string): string => {
    const value = headers[name]
    return typeof value === 'string' ? value : Array.isArray(value) ? value.join(', ') : ''
  }
  return Object.freeze({
    body: Uint8Array.from(body),
    timestamp: text('x-agentpress-timestamp'),
    signature: text('x-agentpress-signature'),
  })
}
