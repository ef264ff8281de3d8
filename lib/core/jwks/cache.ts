/**
 * A per-verifier JWKS cache (§3): single-flight conditional fetches, unknown kids answered
 * only by a fetch that started after they arrived (rate-limited to one per `jwksCooldownMs`),
 * stale-if-error within a bounded window, explicit revocation. Every interval is measured on the
 * monotonic clock; the wall clock is never read here.
 *
 * Outages are not bad tokens: when no cached key can answer because the JWKS cannot be fetched (or
 * the last fetch failed and the next may not start yet), lookups fail with `JwksUnavailableError`
 * (503), never with a `PartnerTokenError` (401).
 */
import type { Ed25519Key } from '../token/ed25519.js'
import { JwksUnavailableError, PartnerTokenError } from '../refusals/errors.js'
import { jwksStatusOf, type JwksStatus } from './readiness.js'
import { JWKS_RETRY_AFTER_SECONDS } from '../refusals/reasons.js'
import {
  buildKeyMap,
  fetchJwks,
  JwksFetchError,
  type JwksOptions,
  type JwksValidators,
  type KeyMap,
} from './fetch.js'
import {
  publishJwksFetchEnd,
  publishJwksFetchStart,
  publishJwksRevocation,
  publishJwksState,
} from '../diagnostics/publish.js'

/**
 * Most revoked kids remembered while the issuer no longer publishes them. A kid the current
 * document still publishes is never forgotten (a JWKS is at most 64 KiB, so it cannot publish
 * more than about 700 keys: there is always an unpublished one to forget first).
 *
 * @internal
 */
export const MAX_REVOKED = 1024

/** The verifier options the cache reads. @internal */
export type JwksCacheOptions = Pick<
  JwksOptions,
  | 'issuer'
  | 'jwksUrl'
  | 'jwksAgent'
  | 'jwksTimeoutMs'
  | 'jwksCacheMaxAgeMs'
  | 'jwksCooldownMs'
  | 'jwksStaleMaxMs'
  | 'onJwksError'
  | 'clock'
  | 'monotonicClock'
  | 'ed25519Backend'
>

const ignore = (): void => {}

/**
 * The cache's whole state, and what each field means (times are monotonic milliseconds):
 *
 * | field | meaning |
 * |---|---|
 * | `#fetches` | what the fetches left: keys, validators, sequence numbers, the running fetch, the last failure (see `JwksFetchState`) |
 * | `#lastKidMissAt` | when an unknown kid last started a fetch (the cooldown window) |
 * | `#queued` | the one follow-up fetch a refresh queues behind a running fetch |
 * | `#slot`, `#held` | the wake-up of lookups waiting for the next allowed unknown-kid fetch, and how many wait |
 * | `#revoked` | kids refused whatever later documents say (bounded, see {@link MAX_REVOKED}) |
 * | `#lastState` | the readiness state last announced (diagnostics) |
 *
 * Fresh (age < max age) with a known kid answers synchronously. An unknown kid is refused only once
 * a fetch that started after the lookup arrived has succeeded without it; until then it waits (at
 * most one cooldown plus two fetch timeouts), or is answered 503 when the last fetch failed.
 *
 * @internal
 */
export class JwksCache {
  readonly #options: JwksCacheOptions
  readonly #now: () => number
  readonly #fetches: JwksFetchState = coldFetchState()
  readonly #fetchHooks: JwksFetchHooks = {
    now: () => this.#now(),
    started: () => this.#slot.wake(),
    settled: () => this.#settled(),
    usableKeyCount: (keys) => this.#usableKeyCount(keys),
  }
  #lastKidMissAt = -Infinity
  #queued: Promise<void> | undefined
  readonly #slot = new NextFetchSlot()
  #held = 0
  readonly #revoked = new Set<string>()
  #lastState: JwksStatus['state'] = 'cold'

  constructor(options: JwksCacheOptions) {
    this.#options = options
    this.#now = options.monotonicClock
  }

  /** Number of fetches started (diagnostics). */
  get fetchCount(): number {
    return this.#fetches.started
  }

  /**
   * The key for `kid`: synchronously on the hot path (fresh cache, known kid), otherwise after at
   * most one fetch that started after this call (or the wait for the next allowed one).
   */
  lookup(kid: string): Ed25519Key | Promise<Ed25519Key> {
    const fetches = this.#fetches
    if (this.#revoked.has(kid)) throw new PartnerTokenError('kid_missing_or_unknown')
    const keys = fetches.keys
    const arrival = fetches.started
    if (keys !== undefined && this.#now() - fetches.fetchedAt < this.#options.jwksCacheMaxAgeMs) {
      const key = keys.get(kid)
      if (key) return key
      return this.#resolve(kid, arrival)
    }
    // Cold, or past max age: the refresh decides (a withdrawn key must stop working as soon as the
    // issuer says so); cached keys answer only if that refresh fails (§3 stale-if-error).
    if (fetches.inflight === undefined && this.#pauseOver()) this.#fetch().catch(ignore)
    return this.#resolve(kid, arrival)
  }

  /**
   * Refetch now, bypassing the cooldown. The answer always comes from a fetch that started after
   * this call: behind a running fetch, one follow-up is queued and shared by every caller that
   * arrives before it starts.
   */
  refresh(): Promise<void> {
    if (this.#fetches.inflight === undefined) return this.#fetch(true)
    this.#queued ??= this.#fetches.inflight.catch(ignore).then(() => {
      this.#queued = undefined
      // A fetch that started meanwhile started after this refresh was asked for: it serves it.
      return this.#fetches.inflight ?? this.#fetch(true)
    })
    return this.#queued
  }

  /** Refuse `kid` from now on, whatever later JWKS documents say. */
  revoke(kid: string): void {
    if (this.#revoked.has(kid)) return // re-revoking changes nothing, and evicts nothing
    if (this.#revoked.size >= MAX_REVOKED) {
      // Forget the oldest revocation the issuer no longer publishes; never one it still does.
      for (const old of this.#revoked) {
        if (this.#fetches.keys?.has(old) !== true) {
          this.#revoked.delete(old)
          break
        }
      }
    }
    this.#revoked.add(kid)
    publishJwksRevocation(this.#options.issuer, this.#revoked.size)
    // Revoking the last usable key changes readiness at once (fresh → cold, stale → unavailable).
    this.#settled()
  }

  #usableKeyCount(keys: KeyMap): number {
    let count = 0
    for (const [kid, key] of keys) if (key !== null && !this.#revoked.has(kid)) count++
    return count
  }

  /** Readiness of this key set now (see `JwksState`); ages on the monotonic clock. */
  status(): JwksStatus {
    const fetches = this.#fetches
    const keys = fetches.keys
    return jwksStatusOf(this.#options, {
      keys,
      usableKeyCount: keys === undefined ? 0 : this.#usableKeyCount(keys),
      fetchedAt: fetches.wall.fetchedAt,
      lastAttemptAt: fetches.wall.lastAttemptAt,
      failedAt: fetches.wall.failedAt,
      lastError: fetches.lastError,
      ageMs: this.#now() - fetches.fetchedAt,
    })
  }

  // Announces a state change caused by a settled fetch (time alone moves fresh → stale silently).
  #settled(): void {
    const previous = this.#lastState
    this.#lastState = this.status().state
    publishJwksState(this.#options.issuer, previous, this.#lastState)
  }

  // After a failed fetch, automatic (non-forced) fetches pause briefly so that an issuer outage
  // is not multiplied by the request rate; the pause is the Retry-After we send (5 s), or the
  // cooldown if that is shorter.
  #pauseOver(): boolean {
    const pause = Math.min(this.#options.jwksCooldownMs, JWKS_RETRY_AFTER_SECONDS * 1000)
    return this.#now() - this.#fetches.failedAt >= pause
  }

  /** When the next unknown-kid fetch may start (monotonic ms). */
  #nextKidMissAt(): number {
    const pause = Math.min(this.#options.jwksCooldownMs, JWKS_RETRY_AFTER_SECONDS * 1000)
    return Math.max(
      this.#lastKidMissAt + this.#options.jwksCooldownMs,
      this.#fetches.failedAt + pause,
    )
  }

  /** A cached key that may answer now: fresh, or within the stale window after a failed fetch. */
  #cachedKey(kid: string): Ed25519Key | undefined {
    const fetches = this.#fetches
    const key = fetches.keys?.get(kid)
    if (!key) return undefined
    const age = this.#now() - fetches.fetchedAt
    const { jwksCacheMaxAgeMs, jwksStaleMaxMs } = this.#options
    if (age < jwksCacheMaxAgeMs) return key
    if (fetches.lastError !== undefined && age < jwksCacheMaxAgeMs + jwksStaleMaxMs) return key
    return undefined
  }

  async #resolve(kid: string, arrival: number): Promise<Ed25519Key> {
    const fetches = this.#fetches
    for (;;) {
      if (this.#revoked.has(kid)) throw new PartnerTokenError('kid_missing_or_unknown')
      const key = this.#cachedKey(kid)
      if (key) return key
      if (fetches.settledSeq > arrival) {
        // A fetch that started after this lookup arrived has finished: it is authoritative.
        if (fetches.lastError === undefined) throw new PartnerTokenError('kid_missing_or_unknown')
        throw new JwksUnavailableError({ cause: fetches.lastError })
      }
      if (fetches.inflight !== undefined) {
        await fetches.inflight.catch(ignore)
        continue
      }
      if (this.#now() >= this.#nextKidMissAt()) {
        this.#kidMissFetch()
        continue
      }
      // The last fetch failed and the next may not start yet: the JWKS is known to be
      // unreachable, which is an outage, not a bad token.
      if (fetches.lastError !== undefined || fetches.keys === undefined) {
        throw new JwksUnavailableError({ cause: fetches.lastError })
      }
      if (this.#held >= MAX_HELD_LOOKUPS) throw new JwksUnavailableError()
      this.#held++
      try {
        await this.#slot.next(
          // At most one cooldown away: a stepped or fake clock cannot make it longer.
          () =>
            Math.min(
              Math.max(0, Math.ceil(this.#nextKidMissAt() - this.#now())),
              this.#options.jwksCooldownMs,
            ),
          () => {
            // Real time has passed the cooldown; start the fetch the waiting lookups need.
            if (fetches.inflight === undefined) this.#kidMissFetch()
          },
        )
      } finally {
        this.#held--
      }
    }
  }

  #kidMissFetch(): void {
    this.#lastKidMissAt = this.#now()
    this.#fetch().catch(ignore)
  }

  #fetch(forced = false): Promise<void> {
    return startFetch(this.#fetches, this.#options, forced, this.#fetchHooks)
  }
}

// ---------------------------------------------------------------------------------------------
// The conditional JWKS fetches of one cache and what they leave behind: single flight, the
// sequence number of each fetch, the last good key map with its ETag / Last-Modified, and the last
// failure (which pauses automatic fetches and is the 503's cause). Intervals are monotonic; the
// wall-clock moments are kept for the readiness status only.

/** The verifier options a fetch reads. @internal */
export type JwksFetchOptions = Pick<
  JwksOptions,
  'issuer' | 'jwksUrl' | 'jwksAgent' | 'jwksTimeoutMs' | 'onJwksError' | 'clock' | 'ed25519Backend'
>

/**
 * What the fetches of one cache left (times are monotonic milliseconds).
 *
 * @internal
 */
export interface JwksFetchState {
  /** The last good key map (`undefined`: cold). */
  keys: KeyMap | undefined
  /** When `keys` was last confirmed. */
  fetchedAt: number
  /** Its ETag / Last-Modified, for the next conditional fetch. */
  validators: JwksValidators | undefined
  /** How many fetches have started (each fetch's sequence number). */
  started: number
  /** The one running fetch (single flight). */
  inflight: Promise<void> | undefined
  /** The sequence number of the last fetch that finished: its outcome is what `keys` / `lastError` say. */
  settledSeq: number
  /** The last fetch, when it failed: when, and why. */
  failedAt: number
  lastError: JwksFetchError | undefined
  /** The same moments on the wall clock, for the readiness status only. */
  readonly wall: { fetchedAt: number; lastAttemptAt: number | undefined; failedAt: number }
}

/** A cold cache's state. @internal */
export function coldFetchState(): JwksFetchState {
  return {
    keys: undefined,
    fetchedAt: 0,
    validators: undefined,
    started: 0,
    inflight: undefined,
    settledSeq: 0,
    failedAt: -Infinity,
    lastError: undefined,
    wall: { fetchedAt: 0, lastAttemptAt: undefined, failedAt: 0 },
  }
}

/** What a fetch tells its cache. @internal */
export interface JwksFetchHooks {
  /** The monotonic clock. */
  readonly now: () => number
  /** A fetch has started (and is `inflight`). */
  readonly started: () => void
  /** A fetch has settled, and the state says how. */
  readonly settled: () => void
  /** The kids of `keys` that can verify a token: neither shared by several keys nor revoked. */
  readonly usableKeyCount: (keys: KeyMap) => number
}

/**
 * Starts a fetch, or returns the running one. A failure rejects with a `JwksFetchError` (after
 * `onJwksError`); the state is updated before the promise settles.
 *
 * @internal
 */
export function startFetch(
  state: JwksFetchState,
  options: JwksFetchOptions,
  forced: boolean,
  hooks: JwksFetchHooks,
): Promise<void> {
  if (state.inflight !== undefined) return state.inflight
  const seq = ++state.started
  const { issuer, jwksUrl, jwksTimeoutMs, jwksAgent, ed25519Backend } = options
  state.wall.lastAttemptAt = options.clock()
  const started = publishJwksFetchStart(issuer, jwksUrl, forced)
  const validators = state.keys === undefined ? undefined : state.validators
  const run = fetchJwks(jwksUrl, jwksTimeoutMs, validators, jwksAgent).then((result) => {
    if (result.status === 'ok') {
      // Revoked kids stay in the map (lookups check the revocation set first), so the cache
      // knows which revoked kids are still published.
      state.keys = buildKeyMap(result.document, jwksUrl, new Set(), ed25519Backend)
      state.validators = result.validators
    }
    state.fetchedAt = hooks.now()
    state.wall.fetchedAt = options.clock()
    state.lastError = undefined
    state.failedAt = -Infinity
    publishJwksFetchEnd(started, issuer, jwksUrl, {
      keyCount: hooks.usableKeyCount(state.keys!),
    })
    hooks.settled()
  })
  const settled = run
    .catch((error: unknown) => {
      const failure =
        error instanceof JwksFetchError
          ? error
          : new JwksFetchError('network', 'JWKS fetch failed', jwksUrl, { cause: error })
      state.lastError = failure
      state.failedAt = hooks.now()
      state.wall.failedAt = options.clock()
      publishJwksFetchEnd(started, issuer, jwksUrl, failure)
      hooks.settled()
      try {
        options.onJwksError?.(failure)
      } catch {
        // a throwing hook must not turn an outage into a crash
      }
      throw failure
    })
    .finally(() => {
      state.settledSeq = seq
      if (state.inflight === settled) state.inflight = undefined
    })
  state.inflight = settled
  hooks.started()
  return settled
}

// ---------------------------------------------------------------------------------------------
// Unknown-kid lookups held back until the next allowed fetch: an unknown kid is answered only by
// a fetch that started after the lookup arrived, so when the cooldown forbids one now the lookup
// waits for it (bounded in number, see {@link MAX_HELD_LOOKUPS}).

/**
 * Most unknown-kid lookups that may wait at once for the next allowed refetch. Past it a lookup is
 * answered 503 (`jwks_unavailable`, Retry-After), never 401: it could carry a key rotated in a
 * moment ago.
 *
 * @internal
 */
export const MAX_HELD_LOOKUPS = 10_000

/**
 * The one wake-up every held lookup waits on.
 *
 * @internal
 */
export class NextFetchSlot {
  #slot: { promise: Promise<void>; wake: () => void; timer: NodeJS.Timeout } | undefined

  /**
   * Resolves when the next unknown-kid fetch starts: after `delayMs` (the time the cooldown
   * allows; `due` runs first, to start that fetch), or earlier on {@link wake}, when any other
   * fetch starts first. Every lookup held meanwhile shares the one timer.
   */
  next(delayMs: () => number, due: () => void): Promise<void> {
    if (this.#slot === undefined) {
      let wake!: () => void
      const promise = new Promise<void>((resolve) => (wake = resolve))
      const timer = setTimeout(() => {
        due()
        this.wake()
      }, delayMs())
      // Not unref'd: a held lookup is a pending verification, which must settle rather than let
      // the process exit with its promise unsettled (as a script awaiting verifyToken would).
      this.#slot = { promise, wake, timer }
    }
    return this.#slot.promise
  }

  /** Releases the held lookups: a fetch has started that serves them. */
  wake(): void {
    const slot = this.#slot
    if (slot === undefined) return
    this.#slot = undefined
    clearTimeout(slot.timer)
    slot.wake()
  }
}
