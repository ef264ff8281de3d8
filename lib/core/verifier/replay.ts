/**
 * Replay rejection (§4 `token_replayed`, ours): with the verifier's `replay` option, a token's
 * (`iss`, `jti`) pair is accepted once; a second use before `exp` + clock tolerance is refused.
 *
 * The check runs after the signature and every claim check, so a forged or refused token never
 * touches the store. A store that cannot answer is an outage (503 `replay_unavailable` with
 * `Retry-After`), never an unchecked acceptance and never a 401.
 */
import type { PartnerTokenClaims } from '../token/claims.js'
import { PartnerTokenError, ReplayUnavailableError } from '../refusals/errors.js'
import { optionsObject, rejectUnknownKeys } from '../validate.js'

/**
 * Where used (`iss`, `jti`) pairs are remembered: {@link MemoryReplayStore} for one process, the
 * Redis fleet (`passport-agentpress-partner/redis`) for several.
 *
 * @example
 * ```ts
 * // A store over any shared map with an atomic "set if absent, with expiry".
 * const store: ReplayStore = {
 *   claim: (issuer, jti, expiresAtMs) =>
 *     db.insertIfAbsent(`${issuer} ${jti}`, { expiresAt: expiresAtMs }), // true when inserted
 * }
 * new PartnerTokenVerifier({ ...options, replay: store })
 * ```
 */
export interface ReplayStore {
  /**
   * Records the first use of (`issuer`, `jti`), remembered until `expiresAtMs` (ms since the
   * epoch). Returns or resolves `true` for the first use and `false` for a replay; throws or
   * rejects when it cannot decide (the request is then answered 503).
   */
  claim(issuer: string, jti: string, expiresAtMs: number): boolean | Promise<boolean>
}

/** Validates the `replay` verifier option. @internal */
export function checkReplayStore(value: unknown, name: string): ReplayStore | undefined {
  if (value === undefined) return undefined
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { claim?: unknown }).claim !== 'function'
  ) {
    throw new TypeError(
      `${name} must be a replay store with a claim(issuer, jti, expiresAtMs) method`,
    )
  }
  return value as ReplayStore
}

const replayed = (): PartnerTokenError => new PartnerTokenError('token_replayed')

function settle(claims: PartnerTokenClaims, first: unknown): PartnerTokenClaims {
  if (first === true) return claims
  if (first === false) throw replayed()
  // Anything but a boolean is a broken store: never read it as "first use".
  throw new ReplayUnavailableError({ cause: new TypeError('replay store answered a non-boolean') })
}

/**
 * Claims the token's (`iss`, `jti`) in `store`; synchronous when the store is. Called only with
 * claims that passed every check (`jti` is then a non-empty string).
 *
 * @internal
 */
export function checkReplay(
  store: ReplayStore,
  claims: PartnerTokenClaims,
  clockToleranceSec: number,
): PartnerTokenClaims | Promise<PartnerTokenClaims> {
  // The verifier accepts while floor(now in s) < exp + tolerance, i.e. up to the instant before
  // ceil(exp + tolerance) s: remembered until that whole second, never an early fraction of it.
  const expiresAtMs = Math.ceil(claims.exp + clockToleranceSec) * 1000
  let first: boolean | Promise<boolean>
  try {
    first = store.claim(claims.iss, claims.jti, expiresAtMs)
  } catch (error) {
    throw new ReplayUnavailableError({ cause: error })
  }
  if (!(first instanceof Promise)) return settle(claims, first)
  return first.then(
    (answer) => settle(claims, answer),
    (error: unknown) => {
      throw new ReplayUnavailableError({ cause: error })
    },
  )
}

/**
 * Options of {@link MemoryReplayStore}.
 *
 * @example
 * ```ts
 * const options: MemoryReplayStoreOptions = { maxEntries: 50_000 }
 * ```
 */
export interface MemoryReplayStoreOptions {
  /** Most pairs remembered at once; when all are still live, new tokens get 503. Default 100,000. */
  maxEntries?: number
  /** Clock in milliseconds since the epoch; default `Date.now`. For tests. */
  clock?: () => number
}

/** The store is full of live entries: evicting one would re-open its replay. @internal */
export class ReplayStoreFullError extends Error {
  override readonly name = 'ReplayStoreFullError'
}

/**
 * A replay store for a single process: a bounded map of (`iss`, `jti`) → expiry. Expired entries
 * are dropped as new ones arrive; when every entry is still live and the map is full, `claim`
 * throws (503) instead of evicting a live entry.
 *
 * At 60 s tokens and a 30 s tolerance, the default 100,000 entries cover about 1,100 requests per
 * second sustained.
 *
 * @example
 * ```ts
 * import { MemoryReplayStore, PartnerTokenVerifier } from 'passport-agentpress-partner'
 *
 * const verifier = new PartnerTokenVerifier({ ...options, replay: new MemoryReplayStore() })
 * ```
 */
export class MemoryReplayStore implements ReplayStore {
  readonly maxEntries: number
  readonly #clock: () => number
  // key → expiry (ms). Insertion order is close to expiry order (tokens are used as soon as they
  // are minted), so expired entries are found at the front.
  readonly #entries = new Map<string, number>()
  #lastSweep = -Infinity

  constructor(options: MemoryReplayStoreOptions = {}) {
    optionsObject(options, 'MemoryReplayStore options must be an object')
    rejectUnknownKeys(options, new Set(['maxEntries', 'clock']), 'MemoryReplayStore')
    const max = options.maxEntries ?? 100_000
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new TypeError(`options.maxEntries must be a positive integer, got ${String(max)}`)
    }
    const clock = options.clock ?? Date.now
    if (typeof clock !== 'function') {
      throw new TypeError('options.clock must be a function returning milliseconds')
    }
    this.maxEntries = max
    this.#clock = clock
  }

  /** How many pairs are remembered now (expired ones may still count until swept). */
  get size(): number {
    return this.#entries.size
  }

  claim(issuer: string, jti: string, expiresAtMs: number): boolean {
    const now = this.#clock()
    const key = `${issuer.length}:${issuer}${jti}`
    const entries = this.#entries
    const known = entries.get(key)
    if (known !== undefined) {
      if (known > now) return false
      entries.delete(key)
    }
    this.#dropExpiredFront(now)
    if (entries.size >= this.maxEntries) {
      this.#sweep(now)
      if (entries.size >= this.maxEntries) {
        throw new ReplayStoreFullError(`replay store full (${this.maxEntries} live entries)`)
      }
    }
    entries.set(key, expiresAtMs)
    return true
  }

  #dropExpiredFront(now: number): void {
    let dropped = 0
    // A few per call keeps each claim O(1) while the map drains as fast as it fills.
    for (const [key, expires] of this.#entries) {
      if (expires > now || dropped === 8) return
      this.#entries.delete(key)
      dropped++
    }
  }

  // A full scan, at most once a second: entries out of insertion order (a longer-lived token
  // before a shorter one) are found here.
  #sweep(now: number): void {
    if (now - this.#lastSweep < 1000) return
    this.#lastSweep = now
    for (const [key, expires] of this.#entries) if (expires <= now) this.#entries.delete(key)
  }
}
