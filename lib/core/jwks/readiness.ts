/**
 * Readiness of the key sets: the per-issuer status a readiness probe serves, and the warm-up that
 * fetches every configured JWKS at boot. Framework-free; the HTTP handler is `readinessHandler`.
 */
import type { JwksState } from '../diagnostics/channels.js'
import type { JwksFetchError, JwksFetchErrorReason, JwksOptions, KeyMap } from './fetch.js'

/**
 * One issuer's key set, as a readiness endpoint reports it. Times are ms since the epoch (the
 * verifier's clock), `null` when it never happened.
 *
 * @example
 * ```ts
 * const status: JwksStatus = verifier.jwksStatus()
 * // { issuer: 'https://api.agent.press/orgs/acme-org', state: 'fresh', keyCount: 2,
 * //   lastFetchAt: 1767225600000, lastSuccessAt: 1767225600000, lastFailureAt: null,
 * //   lastFailureReason: null }
 * ```
 */
export interface JwksStatus {
  readonly issuer: string
  readonly state: JwksState
  /**
   * Usable kids in the cached set: kids whose key can verify a token — an Ed25519 key of §3, its
   * kid not shared by another key, not revoked. 0 unless `fresh` or `stale`. The same count as
   * `keyCount` on `jwks:fetch:end` (which counts at the fetch; a later revocation lowers this one).
   */
  readonly keyCount: number
  /** When the last fetch started. */
  readonly lastFetchAt: number | null
  /** When the cached key set arrived. */
  readonly lastSuccessAt: number | null
  /** When the last fetch failed, if the most recent fetch failed. */
  readonly lastFailureAt: number | null
  /** Why the most recent fetch failed, if it did. */
  readonly lastFailureReason: JwksFetchErrorReason | null
}

/**
 * What `warmUp()` resolves with: `ready` is `true` when every issuer can answer (fresh, or stale
 * keys serving); `issuers` holds each issuer's status after its fetch.
 */
export interface WarmUpResult {
  readonly ready: boolean
  readonly issuers: readonly JwksStatus[]
}

/** A verifier that can report and warm its key set (our `PartnerTokenVerifier`). */
export interface ReadinessSource {
  readonly issuer?: string | undefined
  jwksStatus?(): JwksStatus
  warmUp?(): Promise<WarmUpResult>
}

/** Whether a key set in `state` can answer requests. */
export function canServe(state: JwksState): boolean {
  return state === 'fresh' || state === 'stale'
}

/** The cache fields the status is computed from. @internal */
export interface CacheSnapshot {
  readonly keys: KeyMap | undefined
  /** The kids of `keys` that can verify a token (not shared, not revoked). */
  readonly usableKeyCount: number
  readonly fetchedAt: number
  readonly lastAttemptAt: number | undefined
  readonly failedAt: number
  readonly lastError: JwksFetchError | undefined
  /** The key set's age, when the cache measures it on its own (monotonic) clock. */
  readonly ageMs?: number
}

/** @internal */
export function jwksStatusOf(
  options: Pick<JwksOptions, 'issuer' | 'clock' | 'jwksCacheMaxAgeMs' | 'jwksStaleMaxMs'>,
  cache: CacheSnapshot,
): JwksStatus {
  const keyCount = cache.usableKeyCount
  const age = cache.ageMs ?? options.clock() - cache.fetchedAt
  const failed = cache.lastError !== undefined
  let state: JwksState
  // No usable key (none published in a usable form, or the only one revoked) verifies no token:
  // that is not ready, whatever the age of the document says.
  if (cache.keys === undefined || keyCount === 0) state = failed ? 'unavailable' : 'cold'
  else if (age < options.jwksCacheMaxAgeMs) state = 'fresh'
  else if (age < options.jwksCacheMaxAgeMs + options.jwksStaleMaxMs) state = 'stale'
  else state = failed ? 'unavailable' : 'cold'
  return Object.freeze({
    issuer: options.issuer,
    state,
    keyCount: state === 'cold' || state === 'unavailable' ? 0 : keyCount,
    lastFetchAt: cache.lastAttemptAt ?? null,
    lastSuccessAt: cache.keys === undefined ? null : cache.fetchedAt,
    lastFailureAt: failed ? cache.failedAt : null,
    lastFailureReason: cache.lastError?.reason ?? null,
  })
}

/** The status of every verifier that reports one, in order. @internal */
export function statusesOf(verifiers: readonly ReadinessSource[]): JwksStatus[] {
  const out: JwksStatus[] = []
  for (const verifier of verifiers) {
    if (typeof verifier.jwksStatus === 'function') out.push(verifier.jwksStatus())
  }
  return out
}

/**
 * Warms every verifier that can (in parallel); never rejects. Verifiers that cannot report a
 * status (foreign adapters) are left out.
 *
 * @internal
 */
export async function warmUpAll(verifiers: readonly ReadinessSource[]): Promise<WarmUpResult> {
  const results = await Promise.all(
    verifiers.map(async (verifier): Promise<readonly JwksStatus[]> => {
      if (typeof verifier.warmUp !== 'function') return []
      try {
        return (await verifier.warmUp()).issuers
      } catch {
        // A foreign warmUp that rejects: report what its status says, if anything.
        return statusesOf([verifier])
      }
    }),
  )
  const issuers = results.flat()
  return Object.freeze({
    ready: issuers.every((status) => canServe(status.state)),
    issuers: Object.freeze(issuers),
  })
}
