/**
 * The conditional JWKS fetches of one cache and what they leave behind: single flight, the
 * sequence number of each fetch, the last good key map with its ETag / Last-Modified, and the last
 * failure (which pauses automatic fetches and is the 503's cause). Intervals are monotonic; the
 * wall-clock moments are kept for the readiness status only.
 */
import {
  buildKeyMap,
  fetchJwks,
  JwksFetchError,
  type JwksValidators,
  type KeyMap,
} from './fetch.js'
import { publishJwksFetchEnd, publishJwksFetchStart } from '../diagnostics/publish.js'
import type { NormalizedVerifierOptions } from '../verifier/options.js'

/** The verifier options a fetch reads. @internal */
export type JwksFetchOptions = Pick<
  NormalizedVerifierOptions,
  'issuer' | 'jwksUrl' | 'jwksAgent' | 'jwksTimeoutMs' | 'onJwksError' | 'clock'
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
  const { issuer, jwksUrl, jwksTimeoutMs, jwksAgent } = options
  state.wall.lastAttemptAt = options.clock()
  const started = publishJwksFetchStart(issuer, jwksUrl, forced)
  const validators = state.keys === undefined ? undefined : state.validators
  const run = fetchJwks(jwksUrl, jwksTimeoutMs, validators, jwksAgent).then((result) => {
    if (result.status === 'ok') {
      // Revoked kids stay in the map (lookups check the revocation set first), so the cache
      // knows which revoked kids are still published.
      state.keys = buildKeyMap(result.document, jwksUrl, new Set())
      state.validators = result.validators
    }
    state.fetchedAt = hooks.now()
    state.wall.fetchedAt = options.clock()
    state.lastError = undefined
    state.failedAt = -Infinity
    publishJwksFetchEnd(started, issuer, jwksUrl, { keyCount: state.keys!.size })
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
