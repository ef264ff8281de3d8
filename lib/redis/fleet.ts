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
import type { KeyRotationEvent } from '../core/key-rotation-event.js'
import { verifyPrepared } from '../core/key-rotation.js'
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
  MAX_TIMER_MS,
  optionalFunction,
  optionsObject,
  rejectUnknownKeys,
} from '../core/validate.js'
import {
  checkClient,
  clientFromUrl,
  RedisUnavailableError,
  send,
  type RedisClientLike,
  type RedisListener,
} from './connection.js'

/**
 * The fleet's connection state, for a readiness check: `ready` means both connections are up and
 * the stored revocations were re-read since the last (re)connect.
 *
 * @example
 * ```ts
 * app.get('/readyz', (_req, res) => res.status(fleet.state === 'ready' ? 200 : 503).end())
 * ```
 */
export type RedisFleetState = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed'

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
  /** Called with each Redis error and each refused relay or record (never throws through). */
  onError?: (error: Error) => void
  /** Called with each new state (never throws through). */
  onStateChange?: (state: RedisFleetState) => void
}

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

const KNOWN = new Set([
  'url',
  'client',
  'prefix',
  'revocationTtlMs',
  'commandTimeoutMs',
  'onError',
  'onStateChange',
])

/** How long a processed-delivery marker is kept: the router's own memory, 24 h. */
const PROCESSED_TTL_MS = 24 * 60 * 60 * 1000
/** Most stored records read per sync. */
const MAX_RECORDS = 1000
/** Largest relayed message accepted: an 8 KB body in base64 plus the headers. */
const MAX_MESSAGE_CHARS = 16_384

// Drops expired records and keeps the set's own expiry at its latest record.
const TRIM = `redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[2], last[2]) end`

// KEYS: processed marker, revocation set. ARGV: now, marker, marker ttl, channel, message,
// record expiry, record text (both '' when not an emergency). One atomic step: the marker, the
// record and the relay exist together or not at all.
const PUBLISH_SCRIPT = `if ARGV[7] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7]) end
${TRIM}
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return redis.call('PUBLISH', ARGV[4], ARGV[5])`

// KEYS: unused, revocation set. ARGV: now, then (expiry, text) pairs.
const REPUBLISH_SCRIPT = `for i = 2, #ARGV, 2 do redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
${TRIM}
return 1`

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
    optionsObject(options, 'createRedisFleet: options must be an object')
    rejectUnknownKeys(options, KNOWN, 'createRedisFleet')
    if ((options.url === undefined) === (options.client === undefined)) {
      throw new TypeError('createRedisFleet needs exactly one of options.url or options.client')
    }
    this.prefix = checkPrefix(options.prefix)
    this.#timeoutMs = positiveInteger(options.commandTimeoutMs, 'commandTimeoutMs', 1000, 60_000)
    this.#revocationTtlMs = positiveInteger(
      options.revocationTtlMs,
      'revocationTtlMs',
      25 * 60 * 60 * 1000,
      MAX_TIMER_MS,
    )
    this.#onError = optionalFunction(options.onError, 'options.onError must be a function')
    this.#onStateChange = optionalFunction(
      options.onStateChange,
      'options.onStateChange must be a function',
    )
    this.#ownsCommands = options.url !== undefined
    this.#commands =
      options.url !== undefined
        ? clientFromUrl(options.url, Math.max(this.#timeoutMs, 1000))
        : checkClient(options.client)
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
    this.#listen(this.#commands, 'error', (error: Error) => this.#report(error))
    this.#listen(this.#subscriber, 'error', (error: Error) => this.#report(error))
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
  async publish(delivery: SignedDelivery, event: KeyRotationEvent): Promise<void> {
    const secrets = this.#secrets()
    const now = Date.now()
    let record: RevocationRecord | undefined
    if (event.emergency === true) {
      record = signRevocation(secrets, event, now + this.#revocationTtlMs)
    }
    const message = JSON.stringify({
      origin: this.#origin,
      body: Buffer.from(delivery.body).toString('base64'),
      timestamp: delivery.timestamp,
      signature: delivery.signature,
      revocation: record === undefined ? undefined : revocationText(record),
    })
    await send(
      this.#commands,
      [
        'EVAL',
        PUBLISH_SCRIPT,
        '2',
        this.#processedKey(event.id),
        this.#revocationsKey,
        String(now),
        processedMarker(secrets, event.id),
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
    const refuse = (why: string): void => {
      this.stats.relaysRefused++
      this.#report(new Error(`refused a relayed delivery: ${why}`))
    }
    if (message.length > MAX_MESSAGE_CHARS) return refuse('too large')
    let envelope: Record<string, unknown>
    try {
      envelope = JSON.parse(message) as Record<string, unknown>
    } catch {
      return refuse('not JSON')
    }
    if (typeof envelope !== 'object' || envelope === null) return refuse('not an object')
    const { origin, body, timestamp, signature, revocation } = envelope
    if (origin === this.#origin) return // our own publish, applied before it was sent
    if (
      typeof body !== 'string' ||
      typeof timestamp !== 'string' ||
      typeof signature !== 'string'
    ) {
      return refuse('fields missing')
    }
    let event: KeyRotationEvent
    try {
      // The delivery as AgentPress signed it, checked with this instance's own secret and window.
      event = verifyPrepared(member.prepared, Buffer.from(body, 'base64'), {
        'x-agentpress-timestamp': timestamp,
        'x-agentpress-signature': signature,
      })
    } catch (error) {
      return refuse(error instanceof Error ? error.message : 'does not verify')
    }
    if (typeof revocation === 'string') this.#applyRecordText(member, revocation)
    // Revoked at once (inside apply, before any await); counted once the refresh settled too.
    member.apply(event).then(
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
