/**
 * A per-verifier JWKS cache (SPEC §3): single-flight conditional fetches, unknown kids answered
 * only by a fetch that started after they arrived (rate-limited to one per `jwksCooldownMs`),
 * stale-if-error within a bounded window, explicit revocation. Every interval is measured on the
 * monotonic clock; the wall clock is never read here.
 *
 * Outages are not bad tokens: when no cached key can answer because the JWKS cannot be fetched (or
 * the last fetch failed and the next may not start yet), lookups fail with `JwksUnavailableError`
 * (503), never with a `PartnerTokenError` (401).
 */
import type { KeyObject } from 'node:crypto'
import { JwksUnavailableError, PartnerTokenError } from './errors.js'
import {
  buildKeyMap,
  fetchJwks,
  JwksFetchError,
  type JwksValidators,
  type KeyMap,
} from './jwks-fetch.js'
import {
  publishJwksFetchEnd,
  publishJwksFetchStart,
  publishJwksRevocation,
  publishJwksState,
} from './diagnostics-publish.js'
import { jwksStatusOf, type JwksStatus } from './readiness.js'
import { JWKS_RETRY_AFTER_SECONDS } from './reasons.js'
import type { NormalizedVerifierOptions } from './verifier-options.js'

/**
 * Most revoked kids remembered while the issuer no longer publishes them. A kid the current
 * document still publishes is never forgotten (a JWKS is at most 64 KiB, so it cannot publish
 * more than about 700 keys: there is always an unpublished one to forget first).
 *
 * @internal
 */
export const MAX_REVOKED = 1024

/**
 * Most unknown-kid lookups that may wait at once for the next allowed refetch. Past it a lookup is
 * answered 503 (`jwks_unavailable`, Retry-After), never 401: it could carry a key rotated in a
 * moment ago.
 *
 * @internal
 */
export const MAX_HELD_LOOKUPS = 10_000

/** The verifier options the cache reads. @internal */
export type JwksCacheOptions = Pick<
  NormalizedVerifierOptions,
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
>

const ignore = (): void => {}

/**
 * The cache's whole state, and what each field means (times are monotonic milliseconds):
 *
 * | field | meaning |
 * |---|---|
 * | `#keys`, `#fetchedAt`, `#validators` | the last good key map, when it was confirmed, its ETag / Last-Modified (`undefined` keys: cold) |
 * | `#started` | how many fetches have started (each fetch's sequence number) |
 * | `#lastKidMissAt` | when an unknown kid last started a fetch (the cooldown window) |
 * | `#inflight` | the one running fetch (single flight) |
 * | `#settledSeq` | the sequence number of the last fetch that finished: its outcome is what `#keys` / `#lastError` say |
 * | `#queued` | the one follow-up fetch a refresh queues behind a running fetch |
 * | `#slot`, `#held` | the wake-up of lookups waiting for the next allowed unknown-kid fetch, and how many wait |
 * | `#failedAt`, `#lastError` | the last fetch, when it failed: pauses automatic fetches, and is the 503's cause |
 * | `#revoked` | kids refused whatever later documents say (bounded, see {@link MAX_REVOKED}) |
 * | `#wall` | the same moments on the wall clock, for the readiness status only |
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
  #keys: KeyMap | undefined
  #fetchedAt = 0
  #validators: JwksValidators | undefined
  #started = 0
  #lastKidMissAt = -Infinity
  #inflight: Promise<void> | undefined
  #settledSeq = 0
  #queued: Promise<void> | undefined
  #slot: { promise: Promise<void>; wake: () => void; timer: NodeJS.Timeout } | undefined
  #held = 0
  #failedAt = -Infinity
  #lastError: JwksFetchError | undefined
  readonly #revoked = new Set<string>()
  readonly #wall = { fetchedAt: 0, lastAttemptAt: undefined as number | undefined, failedAt: 0 }
  #lastState: JwksStatus['state'] = 'cold'

  constructor(options: JwksCacheOptions) {
    this.#options = options
    this.#now = options.monotonicClock
  }

  /** Number of fetches started (diagnostics). */
  get fetchCount(): number {
    return this.#started
  }

  /**
   * The key for `kid`: synchronously on the hot path (fresh cache, known kid), otherwise after at
   * most one fetch that started after this call (or the wait for the next allowed one).
   */
  lookup(kid: string): KeyObject | Promise<KeyObject> {
    if (this.#revoked.has(kid)) throw new PartnerTokenError('kid_missing_or_unknown')
    const keys = this.#keys
    const arrival = this.#started
    if (keys !== undefined && this.#now() - this.#fetchedAt < this.#options.jwksCacheMaxAgeMs) {
      const key = keys.get(kid)
      if (key) return key
      return this.#resolve(kid, arrival)
    }
    // Cold, or past max age: the refresh decides (a withdrawn key must stop working as soon as the
    // issuer says so); cached keys answer only if that refresh fails (SPEC §3 stale-if-error).
    if (this.#inflight === undefined && this.#pauseOver()) this.#fetch().catch(ignore)
    return this.#resolve(kid, arrival)
  }

  /**
   * Refetch now, bypassing the cooldown. The answer always comes from a fetch that started after
   * this call: behind a running fetch, one follow-up is queued and shared by every caller that
   * arrives before it starts.
   */
  refresh(): Promise<void> {
    if (this.#inflight === undefined) return this.#fetch(true)
    this.#queued ??= this.#inflight.catch(ignore).then(() => {
      this.#queued = undefined
      // A fetch that started meanwhile started after this refresh was asked for: it serves it.
      return this.#inflight ?? this.#fetch(true)
    })
    return this.#queued
  }

  /** Refuse `kid` from now on, whatever later JWKS documents say. */
  revoke(kid: string): void {
    if (this.#revoked.has(kid)) return // re-revoking changes nothing, and evicts nothing
    if (this.#revoked.size >= MAX_REVOKED) {
      // Forget the oldest revocation the issuer no longer publishes; never one it still does.
      for (const old of this.#revoked) {
        if (this.#keys?.has(old) !== true) {
          this.#revoked.delete(old)
          break
        }
      }
    }
    this.#revoked.add(kid)
    publishJwksRevocation(this.#options.issuer, this.#revoked.size)
  }

  /** Readiness of this key set now (see `JwksState`); ages on the monotonic clock. */
  status(): JwksStatus {
    const keys = this.#keys
    const usable =
      keys === undefined || this.#revoked.size === 0
        ? keys
        : new Map([...keys].filter(([kid]) => !this.#revoked.has(kid)))
    return jwksStatusOf(this.#options, {
      keys: usable,
      fetchedAt: this.#wall.fetchedAt,
      lastAttemptAt: this.#wall.lastAttemptAt,
      failedAt: this.#wall.failedAt,
      lastError: this.#lastError,
      ageMs: this.#now() - this.#fetchedAt,
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
    return this.#now() - this.#failedAt >= pause
  }

  /** When the next unknown-kid fetch may start (monotonic ms). */
  #nextKidMissAt(): number {
    const pause = Math.min(this.#options.jwksCooldownMs, JWKS_RETRY_AFTER_SECONDS * 1000)
    return Math.max(this.#lastKidMissAt + this.#options.jwksCooldownMs, this.#failedAt + pause)
  }

  /** A cached key that may answer now: fresh, or within the stale window after a failed fetch. */
  #cachedKey(kid: string): KeyObject | undefined {
    const key = this.#keys?.get(kid)
    if (!key) return undefined
    const age = this.#now() - this.#fetchedAt
    const { jwksCacheMaxAgeMs, jwksStaleMaxMs } = this.#options
    if (age < jwksCacheMaxAgeMs) return key
    if (this.#lastError !== undefined && age < jwksCacheMaxAgeMs + jwksStaleMaxMs) return key
    return undefined
  }

  async #resolve(kid: string, arrival: number): Promise<KeyObject> {
    for (;;) {
      if (this.#revoked.has(kid)) throw new PartnerTokenError('kid_missing_or_unknown')
      const key = this.#cachedKey(kid)
      if (key) return key
      if (this.#settledSeq > arrival) {
        // A fetch that started after this lookup arrived has finished: it is authoritative.
        if (this.#lastError === undefined) throw new PartnerTokenError('kid_missing_or_unknown')
        throw new JwksUnavailableError({ cause: this.#lastError })
      }
      if (this.#inflight !== undefined) {
        await this.#inflight.catch(ignore)
        continue
      }
      if (this.#now() >= this.#nextKidMissAt()) {
        this.#kidMissFetch()
        continue
      }
      // The last fetch failed and the next may not start yet: the JWKS is known to be
      // unreachable, which is an outage, not a bad token.
      if (this.#lastError !== undefined || this.#keys === undefined) {
        throw new JwksUnavailableError({ cause: this.#lastError })
      }
      if (this.#held >= MAX_HELD_LOOKUPS) throw new JwksUnavailableError()
      this.#held++
      try {
        await this.#nextSlot()
      } finally {
        this.#held--
      }
    }
  }

  /**
   * Resolves when the next unknown-kid fetch starts: at the time the cooldown allows (a timer), or
   * earlier when any other fetch starts first.
   */
  #nextSlot(): Promise<void> {
    if (this.#slot === undefined) {
      let wake!: () => void
      const promise = new Promise<void>((resolve) => (wake = resolve))
      // At most one cooldown away (a stepped or fake clock cannot make it longer). The timer is
      // not unref'd: a held lookup is a pending verification, which must settle (not let the
      // process exit with its promise unsettled, as a script awaiting verifyToken would).
      const wait = Math.ceil(this.#nextKidMissAt() - this.#now())
      const delay = Math.min(Math.max(0, wait), this.#options.jwksCooldownMs)
      const timer = setTimeout(() => {
        // Real time has passed the cooldown; start the fetch the waiting lookups need.
        if (this.#inflight === undefined) this.#kidMissFetch()
        this.#wakeHeld()
      }, delay)
      this.#slot = { promise, wake, timer }
    }
    return this.#slot.promise
  }

  #kidMissFetch(): void {
    this.#lastKidMissAt = this.#now()
    this.#fetch().catch(ignore)
  }

  #wakeHeld(): void {
    const slot = this.#slot
    if (slot === undefined) return
    this.#slot = undefined
    clearTimeout(slot.timer)
    slot.wake()
  }

  #fetch(forced = false): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight
    const seq = ++this.#started
    const { issuer, jwksUrl, jwksTimeoutMs, jwksAgent } = this.#options
    this.#wall.lastAttemptAt = this.#options.clock()
    const started = publishJwksFetchStart(issuer, jwksUrl, forced)
    const validators = this.#keys === undefined ? undefined : this.#validators
    const run = fetchJwks(jwksUrl, jwksTimeoutMs, validators, jwksAgent).then((result) => {
      if (result.status === 'ok') {
        // Revoked kids stay in the map (lookups check the revocation set first), so the cache
        // knows which revoked kids are still published.
        this.#keys = buildKeyMap(result.document, jwksUrl, new Set())
        this.#validators = result.validators
      }
      this.#fetchedAt = this.#now()
      this.#wall.fetchedAt = this.#options.clock()
      this.#lastError = undefined
      this.#failedAt = -Infinity
      publishJwksFetchEnd(started, issuer, jwksUrl, { keyCount: this.#keys!.size })
      this.#settled()
    })
    const settled = run
      .catch((error: unknown) => {
        const failure =
          error instanceof JwksFetchError
            ? error
            : new JwksFetchError('network', 'JWKS fetch failed', jwksUrl, { cause: error })
        this.#lastError = failure
        this.#failedAt = this.#now()
        this.#wall.failedAt = this.#options.clock()
        publishJwksFetchEnd(started, issuer, jwksUrl, failure)
        this.#settled()
        try {
          this.#options.onJwksError?.(failure)
        } catch {
          // a throwing hook must not turn an outage into a crash
        }
        throw failure
      })
      .finally(() => {
        this.#settledSeq = seq
        if (this.#inflight === settled) this.#inflight = undefined
      })
    this.#inflight = settled
    // Lookups waiting for the next allowed fetch are served by this one.
    this.#wakeHeld()
    return settled
  }
}
