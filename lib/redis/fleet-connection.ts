/**
 * The two Redis connections of a fleet instance (commands, and the subscriber a subscription
 * needs) and their lifecycle: connect (within the start bound), subscribe, follow every
 * (re)connect with a sync and sync again on a timer (stored records missed in between are picked
 * up without a restart), report damage of the shared data (`degraded`), announce the state
 * (diagnostics channel, `onStateChange`), close.
 */
import { publishFleetConnection } from '../core/diagnostics/publish.js'
import type { FleetConnectionState } from '../core/diagnostics/channels.js'
import {
  RedisFleetDamagedError,
  RedisUnavailableError,
  type RedisClientLike,
  type RedisListener,
} from './connection.js'
import type { RedisFleetState } from './fleet-options.js'

// The fleet's states as the diagnostics channel names them (`idle` is never published).
const CONNECTION_STATES: Partial<Record<RedisFleetState, FleetConnectionState>> = {
  connecting: 'connecting',
  ready: 'connected',
  degraded: 'degraded',
  reconnecting: 'reconnecting',
  closed: 'disconnected',
}

/** What the connections need from their fleet. @internal */
export interface FleetConnectionHooks {
  /** The channel relays are published on. */
  readonly channel: string
  /** The synchronisation after a (re)connect; `refresh` when relays may have been missed. */
  readonly sync: (refresh: boolean) => Promise<void>
  /** Called after each completed sync. */
  readonly synced: () => void
  readonly message: (message: string) => void
  /** Reports an error to the application's `onError` (never throws). */
  readonly report: (error: Error) => void
  readonly onStateChange: ((state: RedisFleetState) => void) | undefined
  /** Where Redis is, for messages: a URL without credentials, or "the application's client". */
  readonly where: string
  /** Bound of `start()`, in ms. */
  readonly startTimeoutMs: number
  /** Period of the sync that runs while connected, in ms. */
  readonly syncIntervalMs: number
}

/** @internal */
export class FleetConnection {
  /** The client commands are sent on. */
  readonly commands: RedisClientLike
  readonly #subscriber: RedisClientLike
  readonly #ownsCommands: boolean
  readonly #hooks: FleetConnectionHooks
  #state: RedisFleetState = 'idle'
  // For the diagnostics channel: the last connection error's code and reconnect attempts so far.
  #lastErrorCode: string | null = null
  #lastError: Error | undefined
  // The shared data's damage met by the last sync or publish (cleared by a sync that succeeds).
  #damage: RedisFleetDamagedError | undefined
  #attempts = 0
  #everReady = false
  // A connection was lost after the fleet had been ready: relays may have been missed.
  #missedRelays = false
  #synced = false
  // Set once the channel is subscribed: a sync before that could miss a relay in between.
  #subscribed = false
  #syncing: Promise<void> | undefined
  #resyncTimer: NodeJS.Timeout | undefined
  #syncTimer: NodeJS.Timeout | undefined
  #started: Promise<void> | undefined
  readonly #listeners: [RedisClientLike, string, RedisListener][] = []
  readonly #waiters = new Set<(state: RedisFleetState) => void>()

  constructor(commands: RedisClientLike, ownsCommands: boolean, hooks: FleetConnectionHooks) {
    this.#ownsCommands = ownsCommands
    this.commands = commands
    this.#subscriber = commands.duplicate()
    this.#hooks = hooks
  }

  get state(): RedisFleetState {
    return this.#state
  }

  /** Why the fleet is not `ready` (the damage, or the last connection error), else `null`. */
  get problem(): string | null {
    if (this.#state === 'ready' || this.#state === 'idle') return null
    if (this.#damage !== undefined) return this.#damage.message
    if (this.#state === 'closed') return 'closed'
    return this.#lastError === undefined
      ? null
      : `Redis at ${this.#hooks.where}: ${describe(this.#lastError)}`
  }

  /**
   * Connects, subscribes and syncs; resolves once `ready`, or rejects (and closes) within
   * `startTimeoutMs`: Redis not reachable, or its shared data damaged. Calling it again returns
   * the same promise.
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
      this.#lastError = error
      this.#hooks.report(error)
    }
    this.#listen(this.commands, 'error', onError)
    this.#listen(this.#subscriber, 'error', onError)
    for (const client of [this.commands, this.#subscriber]) {
      this.#listen(client, 'ready', () => this.resync())
      this.#listen(client, 'reconnecting', () => this.#lost())
      this.#listen(client, 'end', () => this.#lost())
    }
    const { where, startTimeoutMs } = this.#hooks
    let timer: NodeJS.Timeout | undefined
    const outcome = new Promise<void>((resolve, reject) => {
      const check = (state: RedisFleetState): void => {
        if (state === 'ready') resolve()
        else if (state === 'closed') reject(new RedisUnavailableError('fleet closed'))
        else if (state === 'degraded') reject(this.#damage)
        else return
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
      timer = setTimeout(() => {
        const cause = this.#lastError
        const why = cause === undefined ? 'no answer' : describe(cause)
        const error = new RedisUnavailableError(
          `cannot start the fleet: Redis at ${where} not ready within ${startTimeoutMs} ms (${why})`,
          cause === undefined ? undefined : { cause },
        )
        reject(error)
      }, startTimeoutMs)
    })
    void (async () => {
      if (!this.commands.isOpen) await this.commands.connect()
      await this.#subscriber.connect()
      await this.#subscriber.subscribe(this.#hooks.channel, (message) =>
        this.#hooks.message(message),
      )
      this.#subscribed = true
      this.resync()
    })().catch((error: unknown) => {
      // connect() refused for good (not a transient outage that the client retries itself).
      if (error instanceof Error) this.#lastError = error
    })
    this.#syncTimer = setInterval(() => this.#periodicSync(), this.#hooks.syncIntervalMs)
    this.#syncTimer.unref()
    try {
      await outcome
    } catch (error) {
      this.close()
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  /** The shared data was found damaged (by a publish): not `ready` until a sync succeeds. */
  damaged(error: RedisFleetDamagedError): void {
    if (this.#state === 'closed') return
    this.#noteDamage(error)
  }

  /** Unsubscribes and closes the connections the fleet opened (not the application's client). */
  close(): void {
    if (this.#state === 'closed') return
    this.#setState('closed')
    clearTimeout(this.#resyncTimer)
    clearInterval(this.#syncTimer)
    for (const [client, event, listener] of this.#listeners) client.off(event, listener)
    this.#listeners.length = 0
    // Errors of a connection being torn down are of no interest any more.
    const quiet = (): void => {}
    this.#subscriber.on('error', quiet)
    this.#subscriber.destroy()
    if (this.#ownsCommands) {
      this.commands.on('error', quiet)
      this.commands.destroy()
    }
  }

  #listen(client: RedisClientLike, event: string, listener: RedisListener): void {
    client.on(event, listener)
    this.#listeners.push([client, event, listener])
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
        reason:
          state === 'degraded'
            ? (this.#damage?.reason ?? null)
            : state === 'ready' || state === 'connecting'
              ? null
              : this.#lastErrorCode,
        attempt: state === 'reconnecting' ? this.#attempts : 0,
      })
    }
    if (state === 'ready') {
      this.#attempts = 0
      this.#lastErrorCode = null
      this.#lastError = undefined
    }
    for (const waiter of [...this.#waiters]) waiter(state)
    try {
      this.#hooks.onStateChange?.(state)
    } catch {
      // ignored, as for onError
    }
  }

  #updateState(): void {
    if (this.#state === 'closed' || this.#state === 'idle') return
    const connected = this.commands.isReady && this.#subscriber.isReady
    if (connected && this.#synced) this.#everReady = true
    this.#setState(
      connected && this.#synced
        ? 'ready'
        : connected && this.#damage !== undefined
          ? 'degraded'
          : this.#everReady
            ? 'reconnecting'
            : 'connecting',
    )
  }

  #lost(): void {
    if (this.#everReady) this.#missedRelays = true
    this.#synced = false
    this.#updateState()
  }

  /**
   * After every (re)connect: the fleet's sync (republish what this instance holds, re-read every
   * stored record and, after a reconnect, refresh the verifiers: a relay may have been missed while
   * disconnected).
   */
  resync(): void {
    if (this.#state === 'closed' || this.#state === 'idle') return
    this.#synced = false
    this.#updateState()
    if (this.#syncing !== undefined) {
      this.#syncing.finally(() => this.resync()).catch(() => {})
      return
    }
    this.#runSync()
  }

  // While connected, a sync every `syncIntervalMs` (state unchanged while it runs): stored records
  // a relay did not bring are applied without a restart, and repaired damage is noticed.
  #periodicSync(): void {
    if (this.#state === 'closed' || this.#syncing !== undefined) return
    this.#runSync()
  }

  #runSync(): void {
    if (!this.#subscribed || !this.commands.isReady || !this.#subscriber.isReady) return
    const refresh = this.#missedRelays
    this.#missedRelays = false
    this.#syncing = this.#hooks.sync(refresh).then(
      () => {
        this.#syncing = undefined
        this.#synced = true
        this.#damage = undefined
        this.#hooks.synced()
        this.#updateState()
      },
      (error: unknown) => {
        this.#syncing = undefined
        if (refresh) this.#missedRelays = true
        if (error instanceof RedisFleetDamagedError) {
          this.#noteDamage(error)
          return // the periodic sync looks again
        }
        this.#hooks.report(error instanceof Error ? error : new Error(String(error)))
        if (this.#synced) return // a periodic sync: the next one tries again
        // Still connected but the sync failed (e.g. a deadline): try again shortly.
        clearTimeout(this.#resyncTimer)
        this.#resyncTimer = setTimeout(() => this.resync(), 500)
        this.#resyncTimer.unref()
      },
    )
  }

  #noteDamage(error: RedisFleetDamagedError): void {
    // Reported once per kind of damage, not on every sync that meets it again.
    if (this.#damage?.message !== error.message) this.#hooks.report(error)
    this.#damage = error
    this.#synced = false
    this.#updateState()
  }
}

function describe(error: Error): string {
  const code = (error as { code?: unknown }).code
  const text = error.message === '' ? error.name : error.message
  return typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text
}
