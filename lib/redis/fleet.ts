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
import { publishFleetConnection } from '../core/diagnostics-publish.js'
import type { FleetConnectionState } from '../core/diagnostics.js'
import type { KeyRotationEvent } from '../core/key-rotation-event.js'
import type { ReplayStore } from '../core/replay.js'
import {
  applyRevocation,
  isProcessedMarker,
  openRevocation,
  processedMarker,
  revocationText,
  signRevocation,
  type RevocationRecord,
  type RotationFleet,
  type RotationFleetMember,
  type SignedDelivery,
} from '../core/rotation-fleet.js'
import {
  checkClient,
  clientFromUrl,
  RedisUnavailableError,
  send,
  type RedisClientLike,
  type RedisListener,
} from './connection.js'
import {
  normalizeFleetOptions,
  type RedisFleetOptions,
  type RedisFleetState,
} from './fleet-options.js'
import {
  MAX_RECORDS,
  openRelay,
  PROCESSED_TTL_MS,
  PUBLISH_SCRIPT,
  relayMessage,
  REPUBLISH_SCRIPT,
} from './fleet-protocol.js'

export type { RedisFleetOptions, RedisFleetState } from './fleet-options.js'

/** Counters of what the fleet received (diagnostics and tests). */
export interface RedisFleetStats {
  /** Relayed deliveries that verified and were applied here (revocation and refresh done). */
  relaysApplied: number
  /** Relayed messages refused: not an envelope, or a delivery that does not verify here. */
  relaysRefused: number
  /** Distinct revocation records applied (read on start or reconnect, or carried by a relay). */
  recordsApplied: number
  /** Records refused (malformed, forged or expired), counted each time one is read. */
  recordsRefused: number
  /** Completed (re)connect synchronisations. */
  syncs: number
}

// The fleet's states as the diagnostics channel names them (`idle` is never published).
const CONNECTION_STATES: Partial<Record<RedisFleetState, FleetConnectionState>> = {
  connecting: 'connecting',
  ready: 'connected',
  reconnecting: 'reconnecting',
  closed: 'disconnected',
}

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
    recordsApplied: 0,
    recordsRefused: 0,
    syncs: 0,
  }
  readonly #commands: RedisClientLike
  readonly #subscriber: RedisClientLike
  readonly #ownsCommands: boolean
  readonly #timeoutMs: number
  readonly #revocationTtlMs: number
  readonly #onError: ((error: Error) => void) | undefined
  readonly #onStateChange: ((state: RedisFleetState) => void) | undefined
  readonly #origin = randomUUID()
  readonly #channel: string
  readonly #revocationsKey: string
  // Records this instance holds (verified), keyed by issuer + kid: republished after every
  // reconnect, so a Redis restarted empty gets them back.
  readonly #held = new Map<string, RevocationRecord>()
  #member: RotationFleetMember | undefined
  #state: RedisFleetState = 'idle'
  // For the diagnostics channel: the last connection error's code and reconnect attempts so far.
  #lastErrorCode: string | null = null
  #attempts = 0
  #everReady = false
  // A connection was lost after the fleet had been ready: relays may have been missed.
  #missedRelays = false
  #synced = false
  // Set once the channel is subscribed: a sync before that could miss a relay in between.
  #subscribed = false
  #syncing: Promise<void> | undefined
  #resyncTimer: NodeJS.Timeout | undefined
  #started: Promise<void> | undefined
  readonly #listeners: [RedisClientLike, string, RedisListener][] = []

  constructor(options: RedisFleetOptions) {
    const settings = normalizeFleetOptions(options)
    this.prefix = settings.prefix
    this.#timeoutMs = settings.commandTimeoutMs
    this.#revocationTtlMs = settings.revocationTtlMs
    this.#onError = settings.onError
    this.#onStateChange = settings.onStateChange
    this.#ownsCommands = settings.url !== undefined
    this.#commands =
      settings.url !== undefined
        ? clientFromUrl(settings.url, Math.max(this.#timeoutMs, 1000))
        : checkClient(settings.client)
    this.#subscriber = this.#commands.duplicate()
    this.#channel = `${this.prefix}:rotations`
    this.#revocationsKey = `${this.prefix}:revocations`
  }

  /** The connection state (see {@link RedisFleetState}). */
  get state(): RedisFleetState {
    return this.#state
  }

  /**
   * Connects (the application's client too, if it is not open yet), subscribes and applies the
   * stored revocations; resolves once the fleet is `ready`. Calling it again returns the same
   * promise.
   */
  start(): Promise<void> {
    this.#started ??= this.#start()
    return this.#started
  }

  async #start(): Promise<void> {
    if (this.#state === 'closed') throw new RedisUnavailableError('fleet closed')
    this.#setState('connecting')
    const onError = (error: Error): void => {
      const code = (error as { code?: unknown }).code
      this.#lastErrorCode = typeof code === 'string' ? code : error.name
      this.#report(error)
    }
    this.#listen(this.#commands, 'error', onError)
    this.#listen(this.#subscriber, 'error', onError)
    for (const client of [this.#commands, this.#subscriber]) {
      this.#listen(client, 'ready', () => this.#resync())
      this.#listen(client, 'reconnecting', () => this.#lost())
      this.#listen(client, 'end', () => this.#lost())
    }
    const ready = new Promise<void>((resolve, reject) => {
      const check = (state: RedisFleetState): void => {
        if (state === 'ready') resolve()
        else if (state === 'closed') reject(new RedisUnavailableError('fleet closed'))
        else return
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
    })
    // Observed below; a close() before then must not leave an unhandled rejection behind.
    ready.catch(() => {})
    const connected = (async () => {
      if (!this.#commands.isOpen) await this.#commands.connect()
      await this.#subscriber.connect()
      await this.#subscriber.subscribe(this.#channel, (message) => this.#onMessage(message))
      this.#subscribed = true
      this.#resync()
    })()
    connected.catch(() => {})
    // A close() while connecting settles `ready` (rejected) even if a connect never does.
    await Promise.race([connected, ready])
    await ready
  }

  readonly #waiters = new Set<(state: RedisFleetState) => void>()

  /** Unsubscribes and closes the connections the fleet opened (not the application's client). */
  async close(): Promise<void> {
    if (this.#state === 'closed') return
    this.#setState('closed')
    clearTimeout(this.#resyncTimer)
    for (const [client, event, listener] of this.#listeners) client.off(event, listener)
    this.#listeners.length = 0
    // Errors of a connection being torn down are of no interest any more.
    const quiet = (): void => {}
    this.#subscriber.on('error', quiet)
    this.#subscriber.destroy()
    if (this.#ownsCommands) {
      this.#commands.on('error', quiet)
      this.#commands.destroy()
    }
  }

  // ---- RotationFleet (used by createKeyRotationRouter) ----

  /** @internal Called by the router at construction; one router per fleet. */
  join(member: RotationFleetMember): void {
    if (this.#member !== undefined) {
      throw new TypeError('this fleet already serves a key-rotation router; create one per router')
    }
    this.#member = member
    // Stored records may have been read before the router existed: read them again with its secret.
    if (this.#state === 'ready' || this.#state === 'reconnecting') this.#resync()
  }

  /** @internal */
  async wasProcessed(id: string): Promise<boolean> {
    const value = await send(this.#commands, ['GET', this.#processedKey(id)], this.#timeoutMs)
    return isProcessedMarker(this.#secrets(), id, value)
  }

  /** @internal */
  async publish(
    delivery: SignedDelivery,
    event: KeyRotationEvent,
    options: { readonly processed?: boolean } = {},
  ): Promise<void> {
    const secrets = this.#secrets()
    const now = Date.now()
    let record: RevocationRecord | undefined
    if (event.emergency === true) {
      record = signRevocation(secrets, event, now + this.#revocationTtlMs)
    }
    const message = relayMessage(
      this.#origin,
      delivery,
      record === undefined ? undefined : revocationText(record),
    )
    await send(
      this.#commands,
      [
        'EVAL',
        PUBLISH_SCRIPT,
        '2',
        this.#processedKey(event.id),
        this.#revocationsKey,
        String(now),
        options.processed === false ? '' : processedMarker(secrets, event.id),
        String(PROCESSED_TTL_MS),
        this.#channel,
        message,
        record === undefined ? '' : String(record.expiresAtMs),
        record === undefined ? '' : revocationText(record),
      ],
      this.#timeoutMs,
    )
    if (record !== undefined) this.#hold(record)
  }

  // ---- ReplayStore (the verifiers' `replay` option) ----

  /**
   * One atomic `SET <prefix>:replay:<issuer>:<jti> 1 NX PX <ms>`: `true` for the first use.
   * Rejects while Redis is unreachable (the request is answered 503).
   */
  claim(issuer: string, jti: string, expiresAtMs: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(expiresAtMs - Date.now()))
    const key = `${this.prefix}:replay:${encodeURIComponent(issuer)}:${jti}`
    return send(this.#commands, ['SET', key, '1', 'NX', 'PX', String(ttl)], this.#timeoutMs).then(
      (reply) => reply === 'OK',
    )
  }

  // ---- internals ----

  #processedKey(id: string): string {
    return `${this.prefix}:processed:${id}`
  }

  #secrets(): readonly string[] {
    const member = this.#member
    if (member === undefined) {
      throw new TypeError(
        'no key-rotation router uses this fleet (createKeyRotationRouter({ fleet }))',
      )
    }
    return member.prepared.secrets
  }

  #listen(client: RedisClientLike, event: string, listener: RedisListener): void {
    client.on(event, listener)
    this.#listeners.push([client, event, listener])
  }

  #report(error: Error): void {
    try {
      this.#onError?.(error)
    } catch {
      // a throwing hook must not turn a Redis hiccup into a crash
    }
  }

  #setState(state: RedisFleetState): void {
    if (this.#state === state) return
    this.#state = state
    if (state === 'reconnecting') this.#attempts++
    const connection = CONNECTION_STATES[state]
    if (connection !== undefined) {
      publishFleetConnection({
        backend: 'redis',
        state: connection,
        reason: state === 'ready' || state === 'connecting' ? null : this.#lastErrorCode,
        attempt: state === 'reconnecting' ? this.#attempts : 0,
      })
    }
    if (state === 'ready') {
      this.#attempts = 0
      this.#lastErrorCode = null
    }
    for (const waiter of [...this.#waiters]) waiter(state)
    try {
      this.#onStateChange?.(state)
    } catch {
      // ignored, as for onError
    }
  }

  #updateState(): void {
    if (this.#state === 'closed' || this.#state === 'idle') return
    const up = this.#commands.isReady && this.#subscriber.isReady && this.#synced
    if (up) this.#everReady = true
    this.#setState(up ? 'ready' : this.#everReady ? 'reconnecting' : 'connecting')
  }

  #lost(): void {
    if (this.#everReady) this.#missedRelays = true
    this.#synced = false
    this.#updateState()
  }

  // After every (re)connect: republish what this instance holds, re-read every stored record and,
  // after a reconnect, refresh the verifiers (a relay may have been missed while disconnected).
  #resync(): void {
    if (this.#state === 'closed' || this.#state === 'idle') return
    this.#synced = false
    this.#updateState()
    if (this.#syncing !== undefined) {
      this.#syncing.finally(() => this.#resync()).catch(() => {})
      return
    }
    if (!this.#subscribed || !this.#commands.isReady || !this.#subscriber.isReady) return
    const refresh = this.#missedRelays
    this.#missedRelays = false
    this.#syncing = this.#sync(refresh).then(
      () => {
        this.#syncing = undefined
        this.#synced = true
        this.stats.syncs++
        this.#updateState()
      },
      (error: unknown) => {
        this.#syncing = undefined
        if (refresh) this.#missedRelays = true
        this.#report(error instanceof Error ? error : new Error(String(error)))
        // Still connected but the sync failed (e.g. a deadline): try again shortly.
        clearTimeout(this.#resyncTimer)
        this.#resyncTimer = setTimeout(() => this.#resync(), 500)
        this.#resyncTimer.unref()
      },
    )
  }

  async #sync(refresh: boolean): Promise<void> {
    const now = Date.now()
    const republish: string[] = []
    for (const [key, record] of this.#held) {
      if (record.expiresAtMs <= now) this.#held.delete(key)
      else republish.push(String(record.expiresAtMs), revocationText(record))
    }
    if (republish.length > 0) {
      await send(
        this.#commands,
        [
          'EVAL',
          REPUBLISH_SCRIPT,
          '2',
          this.#revocationsKey,
          this.#revocationsKey,
          String(now),
          ...republish,
        ],
        this.#timeoutMs,
      )
    }
    const member = this.#member
    if (member === undefined) return
    const texts = await send(
      this.#commands,
      ['ZRANGEBYSCORE', this.#revocationsKey, `(${now}`, '+inf', 'LIMIT', '0', String(MAX_RECORDS)],
      this.#timeoutMs,
    )
    for (const text of Array.isArray(texts) ? texts : []) {
      this.#applyRecordText(member, String(text))
    }
    if (refresh) {
      await Promise.allSettled(member.verifiers.map((verifier) => verifier.refreshJwks?.()))
    }
  }

  #applyRecordText(member: RotationFleetMember, text: string): boolean {
    const record = openRevocation(member.prepared.secrets, text, Date.now())
    if (record === undefined) {
      this.stats.recordsRefused++
      this.#report(new Error('refused a stored revocation that does not verify'))
      return false
    }
    applyRevocation(member.verifiers, record)
    if (this.#hold(record)) this.stats.recordsApplied++
    return true
  }

  // Returns whether the record is new to this instance.
  #hold(record: RevocationRecord): boolean {
    const key = `${record.issuer}\n${record.kid}`
    const known = this.#held.get(key)
    if (known === undefined || known.expiresAtMs < record.expiresAtMs) this.#held.set(key, record)
    return known === undefined
  }

  #onMessage(message: string): void {
    const member = this.#member
    if (member === undefined) return
    const relay = openRelay(message, this.#origin, member.prepared)
    if (relay.kind === 'own') return
    if (relay.kind === 'refused') {
      this.stats.relaysRefused++
      this.#report(new Error(`refused a relayed delivery: ${relay.why}`))
      return
    }
    if (relay.revocation !== undefined) this.#applyRecordText(member, relay.revocation)
    // Revoked at once (inside apply, before any await); counted once the refresh settled too.
    member.apply(relay.event).then(
      () => this.stats.relaysApplied++,
      (error: unknown) => this.#report(error instanceof Error ? error : new Error(String(error))),
    )
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
