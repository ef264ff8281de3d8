/**
 * `RedisFleet`: several instances of one MCP server sharing, through Redis, what must not stay on
 * one island — rotation deliveries (relayed as signed, re-verified by every receiver), emergency
 * revocations (stored as MAC'd records, re-read on every (re)connect, republished by running
 * instances after Redis lost them), the ids of processed deliveries (MAC'd markers), and used
 * (`iss`, `jti`) pairs for replay rejection (one `SET … NX PX` per request).
 *
 * Redis is trusted for availability only: a record or message without a valid MAC under the
 * webhook secret changes nothing; an unreachable Redis is an outage (503), never a verdict.
 */
import { randomUUID } from 'node:crypto'
import type { KeyRotationEvent } from '../core/key-rotation/event.js'
import type { ReplayStore } from '../core/verifier/replay.js'
import type { PreparedKeyRotation } from '../core/key-rotation/verify.js'
import {
  isProcessedMarker,
  processedMarker,
  revocationRecords,
  type RevocationRecord,
  type RotationFleet,
  type RotationFleetMember,
  type SignedDelivery,
} from '../core/key-rotation/fleet.js'
import { checkClient, clientFromUrl, printableUrl, send } from './connection.js'
import { FleetConnection } from './fleet-connection.js'
import { FleetRecords } from './fleet-records.js'
import {
  normalizeFleetOptions,
  type RedisFleetOptions,
  type RedisFleetState,
  type RedisFleetStats,
} from './fleet-options.js'
import {
  publishCommand,
  receiveRelay,
  type RelayReceiver,
  type RelayTarget,
} from './fleet-relay.js'

/** Least time between two JWKS refreshes caused by Redis reconnects, in ms. */
const RECONNECT_REFRESH_MS = 30_000

export type { RedisFleetOptions, RedisFleetState, RedisFleetStats } from './fleet-options.js'

/**
 * A fleet of instances sharing rotations, revocations and replay state through Redis. Pass it as
 * `fleet` to `createKeyRotationRouter` and as `replay` to each verifier (or `partnerMcp` entry),
 * then `await fleet.start()` before serving.
 *
 * @example
 * ```ts
 * import { createRedisFleet } from 'passport-agentpress-partner/redis'
 *
 * const fleet = createRedisFleet({ url: process.env.REDIS_URL! })
 * const strategy = new AgentPressPartnerStrategy({ partnerMcp: { ...options, replay: fleet } }, verify)
 * app.use('/webhooks/agentpress/key-rotation', createKeyRotationRouter({ webhookSecret, strategy, fleet }))
 * await fleet.start() // connected, subscribed, stored revocations applied
 * app.listen(3000)
 * ```
 */
export class RedisFleet implements RotationFleet, ReplayStore {
  /** The key and channel prefix. */
  readonly prefix: string
  /** Counters of what this instance received. */
  readonly stats: RedisFleetStats = {
    relaysApplied: 0,
    relaysRefused: 0,
    relaysFailed: 0,
    recordsApplied: 0,
    recordsRefused: 0,
    syncs: 0,
  }
  readonly #connection: FleetConnection
  readonly #timeoutMs: number
  readonly #revocationTtlMs: number
  readonly #onError: ((error: Error) => void) | undefined
  readonly #records: FleetRecords
  readonly #relays: RelayTarget & RelayReceiver
  #member: RotationFleetMember | undefined
  // The refresh after a reconnect, rate-limited: Redis flapping must not become issuer traffic.
  #lastRefreshMs = -Infinity
  #refreshTimer: NodeJS.Timeout | undefined

  constructor(options: RedisFleetOptions) {
    const settings = normalizeFleetOptions(options)
    this.prefix = settings.prefix
    this.#timeoutMs = settings.commandTimeoutMs
    this.#revocationTtlMs = settings.revocationTtlMs
    this.#onError = settings.onError
    const commands =
      settings.url !== undefined
        ? clientFromUrl(settings.url, Math.max(this.#timeoutMs, 1000))
        : checkClient(settings.client)
    const channel = `${this.prefix}:rotations`
    const revocationsKey = `${this.prefix}:revocations`
    const report = (error: Error): void => this.#report(error)
    this.#connection = new FleetConnection(commands, settings.url !== undefined, {
      channel,
      sync: (refresh) => this.#sync(refresh),
      synced: () => this.stats.syncs++,
      message: (message) => this.#onMessage(message),
      report,
      onStateChange: settings.onStateChange,
      where: settings.url !== undefined ? printableUrl(settings.url) : "the application's client",
      startTimeoutMs: settings.startTimeoutMs,
      syncIntervalMs: settings.syncIntervalMs,
    })
    this.#records = new FleetRecords({
      key: revocationsKey,
      send: (args) => this.#send(args),
      stats: this.stats,
      report,
    })
    this.#relays = {
      origin: randomUUID(),
      channel,
      revocationsKey,
      records: this.#records,
      stats: this.stats,
      report,
    }
  }

  /** The connection state (see {@link RedisFleetState}). */
  get state(): RedisFleetState {
    return this.#connection.state
  }

  /**
   * Why the fleet is not `ready`, for logs and readiness bodies: the damage of the shared data, or
   * the last connection error (never a credential); `null` while ready.
   */
  get problem(): string | null {
    return this.#connection.problem
  }

  /**
   * Connects (the application's client too, if it is not open yet), subscribes and applies the
   * stored revocations; resolves once the fleet is `ready`. Rejects within `startTimeoutMs`
   * (default 10 s) with a `RedisUnavailableError` naming the URL (without credentials) and the
   * cause, or at once with a `RedisFleetDamagedError` when the shared data is damaged; the fleet
   * is then closed (create a new one to try again). Calling it again returns the same promise.
   */
  start(): Promise<void> {
    return this.#connection.start()
  }

  /** Unsubscribes and closes the connections the fleet opened (not the application's client). */
  async close(): Promise<void> {
    clearTimeout(this.#refreshTimer)
    this.#connection.close()
  }

  // ---- RotationFleet (used by createKeyRotationRouter) ----

  /** @internal Called by the router at construction; one router per fleet. */
  join(member: RotationFleetMember): void {
    if (this.#member !== undefined) {
      throw new TypeError('this fleet already serves a key-rotation router; create one per router')
    }
    this.#member = member
    // Stored records may have been read before the router existed: read them again with its secret.
    const state = this.#connection.state
    if (state === 'ready' || state === 'reconnecting') this.#connection.resync()
  }

  /** @internal Without the event, no secret can be told to count: not processed (safe). */
  async wasProcessed(id: string, event?: KeyRotationEvent): Promise<boolean> {
    const prepared = this.#prepared()
    if (event === undefined || event.id !== id) return false
    const value = await this.#send(['GET', this.#processedKey(id)])
    return isProcessedMarker(prepared, event, value)
  }

  /** @internal */
  async publish(
    delivery: SignedDelivery,
    event: KeyRotationEvent,
    options: { readonly processed?: boolean; readonly relayed?: boolean } = {},
  ): Promise<void> {
    const prepared = this.#prepared()
    const now = Date.now()
    const relayed = options.relayed === true
    // One record per issuer the delivery's secret acts on, MAC'd under that secret (§5).
    const records: readonly RevocationRecord[] =
      event.emergency === true && !relayed
        ? revocationRecords(prepared, event, now + this.#revocationTtlMs)
        : []
    const marker = options.processed === false ? '' : processedMarker(prepared, event)
    const processedKey = this.#processedKey(event.id)
    const command = publishCommand(
      this.#relays,
      processedKey,
      marker,
      relayed ? undefined : delivery,
      records,
      now,
    )
    const reply = await this.#send(command)
    for (const record of records) this.#records.hold(record)
    // The set of records was damaged (the relay and the marker went out all the same).
    const damage = this.#records.damage(Array.isArray(reply) ? reply[1] : undefined)
    if (damage !== undefined) this.#connection.damaged(damage)
  }

  // ---- ReplayStore (the verifiers' `replay` option) ----

  /**
   * One atomic `SET <prefix>:replay:<issuer>:<jti> 1 NX PX <ms>`: `true` for the first use.
   * Rejects while Redis is unreachable (the request is answered 503).
   */
  claim(issuer: string, jti: string, expiresAtMs: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(expiresAtMs - Date.now()))
    const key = `${this.prefix}:replay:${encodeURIComponent(issuer)}:${jti}`
    return this.#send(['SET', key, '1', 'NX', 'PX', String(ttl)]).then((reply) => reply === 'OK')
  }

  // ---- internals ----

  #processedKey(id: string): string {
    return `${this.prefix}:processed:${id}`
  }

  #prepared(): PreparedKeyRotation {
    const member = this.#member
    if (member === undefined) {
      throw new TypeError(
        'no key-rotation router uses this fleet (createKeyRotationRouter({ fleet }))',
      )
    }
    return member.prepared
  }

  #report(error: Error): void {
    try {
      this.#onError?.(error)
    } catch {
      // a throwing hook must not turn a Redis hiccup into a crash
    }
  }

  #send(args: string[]): Promise<unknown> {
    return send(this.#connection.commands, args, this.#timeoutMs)
  }

  async #sync(refresh: boolean): Promise<void> {
    const now = Date.now()
    await this.#records.republish(now)
    const member = this.#member
    if (member === undefined) return
    await this.#records.readStored(member, now)
    if (refresh) await this.#refreshAfterReconnect(member)
  }

  // A relay may have been missed while disconnected: refresh the verifiers, at most once per
  // RECONNECT_REFRESH_MS (a later reconnect inside it schedules one refresh at its end).
  async #refreshAfterReconnect(member: RotationFleetMember): Promise<void> {
    const wait = this.#lastRefreshMs + RECONNECT_REFRESH_MS - Date.now()
    const run = async (): Promise<void> => {
      this.#lastRefreshMs = Date.now()
      await Promise.allSettled(member.verifiers.map((verifier) => verifier.refreshJwks?.()))
    }
    if (wait <= 0) return run()
    if (this.#refreshTimer !== undefined) return
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined
      if (this.state !== 'closed') void run()
    }, wait)
    this.#refreshTimer.unref()
  }

  #onMessage(message: string): void {
    const member = this.#member
    if (member === undefined) return
    receiveRelay(this.#relays, member, message)
  }
}

/**
 * Creates a {@link RedisFleet}; call `start()` before serving.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { createRedisFleet } from 'passport-agentpress-partner/redis'
 *
 * const fleet = createRedisFleet({ client: createClient({ url: process.env.REDIS_URL }) })
 * ```
 */
export function createRedisFleet(options: RedisFleetOptions): RedisFleet {
  return new RedisFleet(options)
}
