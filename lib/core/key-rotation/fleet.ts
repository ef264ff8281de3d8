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
import { secretMatchOf, type PreparedKeyRotation, type SecretMatch } from './verify.js'
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
  /**
   * Processes a verified, relayed event locally (revoke, refresh), never publishing it again.
   * Never rejects: resolves `{ applied: false, reason }` when the event could not be applied in full
   * (the refresh failed; an emergency's revocation is in force all the same).
   */
  apply(event: KeyRotationEvent): Promise<RelayedEventResult>
}

/** What applying a relayed event did on this instance (see {@link RotationFleetMember.apply}). */
export interface RelayedEventResult {
  /** Done in full: revoked (an emergency) and refreshed, or nothing to do here. */
  readonly applied: boolean
  /** Why not, when `applied` is false: the refusal reason (`jwks_unavailable`). */
  readonly reason?: string
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
  /**
   * Whether another instance already processed and published event `id` (`event`, when given,
   * decides which secrets' markers count); rejects on an outage.
   */
  wasProcessed(id: string, event?: KeyRotationEvent): Promise<boolean>
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
 * A stored emergency revocation: the retired `kid` of `issuer` is refused until `expiresAtMs`;
 * `mac` authenticates the three under the webhook secret that verified the delivery. `issuer` is
 * `''` (every verifier) only for a secret bound to no issuer; a bound secret's delivery is stored
 * as one record per issuer it acts on.
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

// For each secret, whether `received` is the MAC of `input` under it (every secret is computed:
// timing says nothing about which one matched).
function macMatches(secrets: readonly string[], input: string, received: unknown): boolean[] {
  if (typeof received !== 'string' || !/^[0-9a-f]{64}$/.test(received)) {
    return secrets.map(() => false)
  }
  const given = Buffer.from(received, 'hex')
  return secrets.map((secret) => timingSafeEqual(given, Buffer.from(mac(secret, input), 'hex')))
}

// The configured secret that verified `event` (the router's events always carry it).
function matchOf(prepared: PreparedKeyRotation, event: KeyRotationEvent): SecretMatch {
  const match = secretMatchOf(event)
  if (match !== undefined) return match
  const first = prepared.bindings[0]!
  if (prepared.bindings.length === 1 && first.issuers === undefined) {
    return { index: 0, label: first.label, issuers: undefined }
  }
  // With several secrets (or one bound) the secret decides what the event may act on: an event
  // that did not come from this router's verification has none, so it is never shared.
  throw new TypeError('the event was not verified by this key-rotation router')
}

/**
 * The issuers an event acts on as its secret allows (§5): the event's issuer, else every issuer
 * its secret is bound to, else `['']` (every verifier) for an unbound secret.
 */
const issuersOf = (event: KeyRotationEvent, match: SecretMatch): readonly string[] =>
  event.issuer !== undefined
    ? [event.issuer]
    : match.issuers !== undefined
      ? [...match.issuers].sort()
      : ['']

/**
 * One record revoking `kid` of `issuer` until `expiresAtMs`, MAC'd under `secret`.
 *
 * @internal
 */
export function signRevocation(
  secret: string,
  issuer: string,
  kid: string,
  expiresAtMs: number,
): RevocationRecord {
  return Object.freeze({
    issuer,
    kid,
    expiresAtMs,
    mac: mac(secret, revocationInput(issuer, kid, expiresAtMs)),
  })
}

/**
 * The records an emergency `event` is stored and relayed as: one per issuer it acts on (the issuer
 * it names, else every issuer its secret is bound to; `''` only for an unbound secret), each MAC'd
 * under the secret that verified the delivery. A receiver applies a record only to an issuer that
 * secret is bound to there, so no record can carry one org's secret to another org.
 *
 * @internal
 */
export function revocationRecords(
  prepared: PreparedKeyRotation,
  event: KeyRotationEvent,
  expiresAtMs: number,
): readonly RevocationRecord[] {
  const match = matchOf(prepared, event)
  const secret = prepared.secrets[match.index]!
  return Object.freeze(
    issuersOf(event, match).map((issuer) =>
      signRevocation(secret, issuer, event.retiredKid, expiresAtMs),
    ),
  )
}

/** A stored or relayed record, opened: the record, or why it changes nothing. @internal */
export type OpenedRevocation =
  | { readonly record: RevocationRecord; readonly refused?: undefined }
  | { readonly refused: string; readonly record?: undefined }

const DOES_NOT_VERIFY = Object.freeze({ refused: 'it does not verify' })

/**
 * Parses a stored or relayed record (JSON text) and decides what it may act on here: it must be
 * MAC'd under a configured secret that may act on its issuer — an unbound secret on any (`''`:
 * every verifier), a bound secret on its own issuers only. A record MAC'd under one org's secret
 * that names another org, or (written by an older version) names no issuer, is refused, saying so.
 *
 * @internal
 */
export function openRevocation(
  prepared: Pick<PreparedKeyRotation, 'secrets' | 'bindings'>,
  text: string,
  nowMs: number,
): OpenedRevocation {
  if (text.length > 4096) return DOES_NOT_VERIFY
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return DOES_NOT_VERIFY
  }
  if (typeof value !== 'object' || value === null) return DOES_NOT_VERIFY
  const { issuer, kid, expiresAtMs, mac: received } = value as Record<string, unknown>
  if (typeof issuer !== 'string' || typeof kid !== 'string' || kid === '') return DOES_NOT_VERIFY
  if (typeof expiresAtMs !== 'number' || !Number.isSafeInteger(expiresAtMs)) {
    return DOES_NOT_VERIFY
  }
  if (expiresAtMs <= nowMs) return { refused: 'it has expired' }
  const verified = macMatches(prepared.secrets, revocationInput(issuer, kid, expiresAtMs), received)
  const by = verified.indexOf(true)
  if (by === -1) return DOES_NOT_VERIFY
  const allowed = verified.some((ok, index) => {
    const bound = prepared.bindings[index]!.issuers
    return ok && (bound === undefined || (issuer !== '' && bound.has(issuer)))
  })
  if (!allowed) {
    const { label } = prepared.bindings[by]!
    const secret = label === null ? `secret #${by}` : `secret ${JSON.stringify(label)}`
    return {
      refused:
        issuer === ''
          ? `it names no issuer, but ${secret} that MACs it is bound to issuers, so it cannot ` +
            'say which org it is for (written by an older version; the relayed delivery itself ' +
            'still revokes, and a resent rotation writes records naming their issuer)'
          : `it names an issuer ${secret} that MACs it is not bound to`,
    }
  }
  return { record: Object.freeze({ issuer, kid, expiresAtMs, mac: received as string }) }
}

/** The JSON text a record is stored as. @internal */
export const revocationText = (record: RevocationRecord): string =>
  JSON.stringify({
    issuer: record.issuer,
    kid: record.kid,
    expiresAtMs: record.expiresAtMs,
    mac: record.mac,
  })

/** Revokes the record's kid on every verifier of its issuer (`''`: every verifier). @internal */
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

/**
 * The value of the shared "event `id` was processed" marker, MAC'd under the secret that verified
 * `event`.
 *
 * @internal
 */
export const processedMarker = (prepared: PreparedKeyRotation, event: KeyRotationEvent): string =>
  mac(prepared.secrets[matchOf(prepared, event).index]!, processedInput(event.id))

/**
 * Whether `value` is an authentic marker for `event`: MAC'd under a secret that may act on every
 * issuer `event` acts on (so one org's secret cannot mark another org's delivery as done).
 *
 * @internal
 */
export function isProcessedMarker(
  prepared: PreparedKeyRotation,
  event: KeyRotationEvent,
  value: unknown,
): boolean {
  const targets = issuersOf(event, matchOf(prepared, event))
  return macMatches(prepared.secrets, processedInput(event.id), value).some((ok, index) => {
    const bound = prepared.bindings[index]!.issuers
    return ok && (bound === undefined || targets.every((issuer) => bound.has(issuer)))
  })
}

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
