/**
 * Options of the Redis fleet, validated once at construction with exact `TypeError`s, and the
 * types of what it reports (its state, its counters).
 */
import type { RedisClientLike } from './connection.js'
import {
  MAX_TIMER_MS,
  optionalFunction,
  optionsObject,
  rejectUnknownKeys,
} from '../core/validate.js'

/**
 * The fleet's connection state, for a readiness check: `ready` means both connections are up and
 * the stored revocations were re-read since the last (re)connect. `degraded`: connected, but the
 * shared data is damaged (a key of the wrong type, or more stored records than can be checked; see
 * `fleet.problem`): relays and replay checks go on, stored revocations cannot be trusted to be
 * complete, so it is not ready.
 *
 * @example
 * ```ts
 * app.get('/readyz', (_req, res) => res.status(fleet.state === 'ready' ? 200 : 503).end())
 * ```
 */
export type RedisFleetState =
  'idle' | 'connecting' | 'ready' | 'degraded' | 'reconnecting' | 'closed'

/** Counters of what the fleet received (diagnostics and tests). */
export interface RedisFleetStats {
  /** Relayed deliveries that verified and were applied here (revocation and refresh done). */
  relaysApplied: number
  /** Relayed messages refused: not an envelope, or a delivery that does not verify here. */
  relaysRefused: number
  /**
   * Relayed deliveries that verified here but whose JWKS refresh failed: the revocation they carry
   * is applied, the new keys are not fetched yet (reported through `onError`; the next refresh or
   * a token of an unknown kid fetches them).
   */
  relaysFailed: number
  /** Distinct revocation records applied (read on start or reconnect, or carried by a relay). */
  recordsApplied: number
  /** Records refused (malformed, forged or expired), counted each time one is read. */
  recordsRefused: number
  /** Completed (re)connect synchronisations. */
  syncs: number
}

/**
 * Options of {@link createRedisFleet}: exactly one of `url` or `client`.
 *
 * @example
 * ```ts
 * const options: RedisFleetOptions = { url: 'redis://127.0.0.1:6379', prefix: 'mcp-prod' }
 * ```
 */
export interface RedisFleetOptions {
  /** A `redis:` or `rediss:` URL: the fleet creates, owns and closes its client. */
  url?: string
  /** The application's own `redis` client; the fleet duplicates it for the subscription only. */
  client?: RedisClientLike
  /** Prefix of every key and channel, so several deployments can share a server. Default `agentpress`. */
  prefix?: string
  /** How long a stored emergency revocation is kept, in ms. Default 90,000,000 (25 h). */
  revocationTtlMs?: number
  /** Deadline of one Redis command, in ms; past it, the request is answered 503. Default 1,000. */
  commandTimeoutMs?: number
  /**
   * Bound of `start()`, in ms: by then it resolved (`ready`) or rejected, naming the URL (without
   * credentials) and the last error, and closed the fleet. Default 10,000.
   */
  startTimeoutMs?: number
  /**
   * While connected, stored revocations are re-read (and this instance's republished) every
   * `syncIntervalMs`, so a record whose relay was missed is applied without a restart. Default 5,000.
   */
  syncIntervalMs?: number
  /** Called with each Redis error and each refused relay or record (never throws through). */
  onError?: (error: Error) => void
  /** Called with each new state (never throws through). */
  onStateChange?: (state: RedisFleetState) => void
}

const KNOWN = new Set([
  'url',
  'client',
  'prefix',
  'revocationTtlMs',
  'commandTimeoutMs',
  'startTimeoutMs',
  'syncIntervalMs',
  'onError',
  'onStateChange',
])

function positiveInteger(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new TypeError(`options.${name} must be an integer from 1 to ${max}, got ${String(value)}`)
  }
  return value as number
}

function checkPrefix(value: unknown): string {
  if (value === undefined) return 'agentpress'
  if (typeof value !== 'string' || !/^[A-Za-z0-9._:{}-]{1,64}$/.test(value)) {
    throw new TypeError(
      'options.prefix must be 1 to 64 characters of letters, digits and . _ : { } -',
    )
  }
  return value
}

/** The options after validation, with defaults applied. @internal */
export interface NormalizedFleetOptions {
  readonly url: string | undefined
  readonly client: unknown
  readonly prefix: string
  readonly commandTimeoutMs: number
  readonly startTimeoutMs: number
  readonly syncIntervalMs: number
  readonly revocationTtlMs: number
  readonly onError: ((error: Error) => void) | undefined
  readonly onStateChange: ((state: RedisFleetState) => void) | undefined
}

/** Validates {@link RedisFleetOptions}. @internal */
export function normalizeFleetOptions(input: unknown): NormalizedFleetOptions {
  const options = optionsObject(input, 'createRedisFleet: options must be an object')
  rejectUnknownKeys(options, KNOWN, 'createRedisFleet')
  if ((options.url === undefined) === (options.client === undefined)) {
    throw new TypeError('createRedisFleet needs exactly one of options.url or options.client')
  }
  return Object.freeze({
    url: options.url as string | undefined,
    client: options.client,
    prefix: checkPrefix(options.prefix),
    commandTimeoutMs: positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', 1000, 60_000),
    startTimeoutMs: positiveInteger(options.startTimeoutMs, 'startTimeoutMs', 10_000, MAX_TIMER_MS),
    syncIntervalMs: positiveInteger(options.syncIntervalMs, 'syncIntervalMs', 5000, MAX_TIMER_MS),
    revocationTtlMs: positiveInteger(
      options.revocationTtlMs,
      'revocationTtlMs',
      25 * 60 * 60 * 1000,
      MAX_TIMER_MS,
    ),
    onError: optionalFunction(
      options.onError as ((error: Error) => void) | undefined,
      'options.onError must be a function',
    ),
    onStateChange: optionalFunction(
      options.onStateChange as ((state: RedisFleetState) => void) | undefined,
      'options.onStateChange must be a function',
    ),
  })
}
