/**
 * The two Redis connections of a fleet instance (commands, and the subscriber a subscription
 * needs) and their lifecycle: connect, subscribe, follow every (re)connect with a sync, announce
 * the state (diagnostics channel, `onStateChange`), close.
 */
import { publishFleetConnection } from '../core/diagnostics/publish.js'
import type { FleetConnectionState } from '../core/diagnostics/channels.js'
import { RedisUnavailableError, type RedisClientLike, type RedisListener } from './connection.js'
import type { RedisFleetState } from './fleet-options.js'

// The fleet's states as the diagnostics channel names them (`idle` is never published).
const CONNECTION_STATES: Partial<Record<RedisFleetState, FleetConnectionState>> = {
  connecting: 'connecting',
  ready: 'connected',
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

  /** Connects, subscribes and syncs; resolves once `ready`. Calling it again returns the same promise. */
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
      this.#hooks.report(error)
    }
    this.#listen(this.commands, 'error', onError)
    this.#listen(this.#subscriber, 'error', onError)
    for (const client of [this.commands, this.#subscriber]) {
      this.#listen(client, 'ready', () => this.resync())
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
      if (!this.commands.isOpen) await this.commands.connect()
      await this.#subscriber.connect()
      await this.#subscriber.subscribe(this.#hooks.channel, (message) =>
        this.#hooks.message(message),
      )
      this.#subscribed = true
      this.resync()
    })()
    connected.catch(() => {})
    // A close() while connecting settles `ready` (rejected) even if a connect never does.
    await Promise.race([connected, ready])
    await ready
  }

  /** Unsubscribes and closes the connections the fleet opened (not the application's client). */
  close(): void {
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
      this.#hooks.onStateChange?.(state)
    } catch {
      // ignored, as for onError
    }
  }

  #updateState(): void {
    if (this.#state === 'closed' || this.#state === 'idle') return
    const up = this.commands.isReady && this.#subscriber.isReady && this.#synced
    if (up) this.#everReady = true
    this.#setState(up ? 'ready' : this.#everReady ? 'reconnecting' : 'connecting')
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
    if (!this.#subscribed || !this.commands.isReady || !this.#subscriber.isReady) return
    const refresh = this.#missedRelays
    this.#missedRelays = false
    this.#syncing = this.#hooks.sync(refresh).then(
      () => {
        this.#syncing = undefined
        this.#synced = true
        this.#hooks.synced()
        this.#updateState()
      },
      (error: unknown) => {
        this.#syncing = undefined
        if (refresh) this.#missedRelays = true
        this.#hooks.report(error instanceof Error ? error : new Error(String(error)))
        // Still connected but the sync failed (e.g. a deadline): try again shortly.
        clearTimeout(this.#resyncTimer)
        this.#resyncTimer = setTimeout(() => this.resync(), 500)
        this.#resyncTimer.unref()
      },
    )
  }
}
