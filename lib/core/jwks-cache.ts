/**
 * A per-verifier JWKS cache (SPEC §3): single-flight fetches, one refetch on an unknown kid
 * (rate-limited by a cooldown), stale-if-error within a bounded window, explicit revocation.
 *
 * Outages are not bad tokens: when no cached key can answer because the JWKS cannot be fetched,
 * lookups fail with `JwksUnavailableError` (503), never with a `PartnerTokenError` (401).
 */
import type { KeyObject } from 'node:crypto'
import { JwksUnavailableError, PartnerTokenError } from './errors.js'
import { buildKeyMap, fetchJwksDocument, JwksFetchError, type KeyMap } from './jwks-fetch.js'
import {
  publishJwksFetchEnd,
  publishJwksFetchStart,
  publishJwksRevocation,
  publishJwksState,
} from './diagnostics-publish.js'
import { jwksStatusOf, type JwksStatus } from './readiness.js'
import { JWKS_RETRY_AFTER_SECONDS } from './reasons.js'
import type { NormalizedVerifierOptions } from './verifier-options.js'

/** Most kids remembered as revoked; older revocations are forgotten first. */
const MAX_REVOKED = 1024

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
>

/**
 * The cache's whole state, and what each field means:
 *
 * | field | meaning |
 * |---|---|
 * | `#keys`, `#fetchedAt` | the last good key map and when it arrived (`undefined`: cold) |
 * | `#inflight`, `#inflightForced` | the one running fetch (single flight), and whether a webhook forced it |
 * | `#queued` | the one follow-up fetch a refresh queues behind an unforced running fetch |
 * | `#lastKidMissFetchAt` | when an unknown kid last caused a fetch (cooldown window) |
 * | `#failedAt`, `#lastError` | the last failed fetch: pauses automatic fetches, and is the 503's cause |
 * | `#revoked` | kids refused whatever later documents say (bounded, oldest forgotten first) |
 *
 * Fresh (age < max age) with a known kid answers synchronously; everything else goes through at
 * most one fetch.
 *
 * @internal
 */
export class JwksCache {
  readonly #options: JwksCacheOptions
  #keys: KeyMap | undefined
  #fetchedAt = 0
  #inflight: Promise<void> | undefined
  #inflightForced = false
  #queued: Promise<void> | undefined
  #lastKidMissFetchAt = -Infinity
  #failedAt = -Infinity
  #lastError: JwksFetchError | undefined
  readonly #revoked = new Set<string>()
  #lastAttemptAt: number | undefined
  #lastState: JwksStatus['state'] = 'cold'
  /** Number of fetches started (diagnostics). */
  fetchCount = 0

  constructor(options: JwksCacheOptions) {
    this.#options = options
  }

  /**
   * The key for `kid`: synchronously on the hot path (fresh cache, known kid), otherwise after at
   * most one fetch.
   */
  lookup(kid: string): KeyObject | Promise<KeyObject> {
    if (this.#revoked.has(kid)) throw new PartnerTokenError('kid_missing_or_unknown')
    const keys = this.#keys
    if (keys !== undefined) {
      const key = keys.get(kid)
      const age = this.#options.clock() - this.#fetchedAt
      if (age < this.#options.jwksCacheMaxAgeMs) {
        return key ?? this.#afterKidMiss(kid)
      }
    }
    // Cold, or past max age: the refresh decides (a withdrawn key must stop working as soon as the
    // issuer says so); cached keys answer only if that refresh fails (SPEC §3 stale-if-error).
    return this.#fetchThenLookup(kid)
  }

  /** Refetch now, bypassing the cooldown; concurrent callers share one fetch. */
  refresh(): Promise<void> {
    if (this.#inflight === undefined) return this.#fetch(true)
    if (this.#inflightForced) return this.#inflight
    // The running fetch may have started before the rotation we were told about: queue exactly
    // one follow-up, shared by every caller that arrives meanwhile.
    this.#queued ??= this.#inflight
      .catch(() => {})
      .then(() => {
        this.#queued = undefined
        return this.#inflight ?? this.#fetch(true)
      })
    return this.#queued
  }

  /** Refuse `kid` from now on, whatever later JWKS documents say. */
  revoke(kid: string): void {
    if (this.#revoked.size >= MAX_REVOKED) {
      this.#revoked.delete(this.#revoked.values().next().value as string)
    }
    this.#revoked.add(kid)
    this.#keys?.delete(kid)
    publishJwksRevocation(this.#options.issuer, this.#revoked.size)
  }

  /** Readiness of this key set now (see `JwksState`). */
  status(): JwksStatus {
    return jwksStatusOf(this.#options, {
      keys: this.#keys,
      fetchedAt: this.#fetchedAt,
      lastAttemptAt: this.#lastAttemptAt,
      failedAt: this.#failedAt,
      lastError: this.#lastError,
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
  #mayFetch(): boolean {
    if (this.#inflight !== undefined) return true
    const pause = Math.min(this.#options.jwksCooldownMs, JWKS_RETRY_AFTER_SECONDS * 1000)
    return this.#options.clock() - this.#failedAt >= pause
  }

  async #afterKidMiss(kid: string): Promise<KeyObject> {
    const now = this.#options.clock()
    // Only refetches caused by unknown kids are rate-limited, so a freshly rotated key is fetched
    // on its first use, while random kids cost at most one fetch per cooldown window.
    if (this.#inflight === undefined) {
      if (now - this.#lastKidMissFetchAt < this.#options.jwksCooldownMs || !this.#mayFetch()) {
        throw new PartnerTokenError('kid_missing_or_unknown')
      }
      this.#lastKidMissFetchAt = now
    }
    return this.#fetchThenLookup(kid)
  }

  async #fetchThenLookup(kid: string): Promise<KeyObject> {
    const stale = this.#keys
    if (this.#inflight !== undefined || this.#mayFetch()) {
      try {
        await this.#fetch()
      } catch {
        // fall through: answered below from what is cached, or as an outage
      }
    }
    if (this.#revoked.has(kid)) throw new PartnerTokenError('kid_missing_or_unknown')
    if (this.#keys !== undefined && this.#lastError === undefined) {
      // A successful fetch is authoritative.
      const key = this.#keys.get(kid)
      if (key) return key
      throw new PartnerTokenError('kid_missing_or_unknown')
    }
    const age = this.#options.clock() - this.#fetchedAt
    const key = stale?.get(kid)
    if (key && age < this.#options.jwksCacheMaxAgeMs + this.#options.jwksStaleMaxMs) return key
    throw new JwksUnavailableError({ cause: this.#lastError })
  }

  #fetch(forced = false): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight
    this.fetchCount++
    const { issuer, jwksUrl } = this.#options
    this.#lastAttemptAt = this.#options.clock()
    const started = publishJwksFetchStart(issuer, jwksUrl, forced)
    const run = fetchJwksDocument(
      jwksUrl,
      this.#options.jwksTimeoutMs,
      this.#options.jwksAgent,
    ).then((document) => {
      this.#keys = buildKeyMap(document, jwksUrl, this.#revoked)
      this.#fetchedAt = this.#options.clock()
      this.#lastError = undefined
      this.#failedAt = -Infinity
      publishJwksFetchEnd(started, issuer, jwksUrl, { keyCount: this.#keys.size })
      this.#settled()
    })
    const settled = run
      .catch((error: unknown) => {
        const failure =
          error instanceof JwksFetchError
            ? error
            : new JwksFetchError('network', 'JWKS fetch failed', this.#options.jwksUrl, {
                cause: error,
              })
        this.#lastError = failure
        this.#failedAt = this.#options.clock()
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
        if (this.#inflight === settled) this.#inflight = undefined
      })
    this.#inflight = settled
    this.#inflightForced = forced
    return settled
  }
}
