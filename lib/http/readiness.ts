/**
 * A readiness endpoint over the key sets' status: 200 while every issuer can answer requests
 * (fresh keys, or stale keys still serving), 503 otherwise. A plain `(req, res, next)` function,
 * so it runs under Express 4, Express 5, Connect and a bare `node:http` server.
 */
import type { ServerResponse } from 'node:http'
import {
  canServe,
  statusesOf,
  type JwksStatus,
  type ReadinessSource,
} from '../core/jwks/readiness.js'
import { JWKS_RETRY_AFTER_SECONDS } from '../core/refusals/reasons.js'
import { sendJson, type Middleware } from './connect.js'

/** What {@link readinessHandler} reads: a strategy (its `verifiers`), or verifiers. */
export type ReadinessTarget =
  { readonly verifiers: readonly ReadinessSource[] } | readonly ReadinessSource[] | ReadinessSource

/**
 * The readiness body: `ready`, and each issuer's {@link JwksStatus} with times as ISO 8601
 * strings (`null` when it never happened).
 */
export interface ReadinessBody {
  readonly ready: boolean
  readonly issuers: readonly {
    readonly issuer: string
    readonly state: JwksStatus['state']
    readonly keyCount: number
    readonly lastFetchAt: string | null
    readonly lastSuccessAt: string | null
    readonly lastFailureAt: string | null
    readonly lastFailureReason: JwksStatus['lastFailureReason']
  }[]
}

function sourcesOf(target: ReadinessTarget): readonly ReadinessSource[] {
  if (Array.isArray(target)) return target as readonly ReadinessSource[]
  const verifiers = (target as { verifiers?: unknown }).verifiers
  if (Array.isArray(verifiers)) return verifiers as readonly ReadinessSource[]
  return [target as ReadinessSource]
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

/** The readiness answer now. @internal */
export function readinessBody(sources: readonly ReadinessSource[]): ReadinessBody {
  const issuers = statusesOf(sources).map((status) => ({
    issuer: status.issuer,
    state: status.state,
    keyCount: status.keyCount,
    lastFetchAt: iso(status.lastFetchAt),
    lastSuccessAt: iso(status.lastSuccessAt),
    lastFailureAt: iso(status.lastFailureAt),
    lastFailureReason: status.lastFailureReason,
  }))
  return { ready: issuers.every((status) => canServe(status.state)), issuers }
}

/**
 * A readiness probe for load balancers and orchestrators. `GET`/`HEAD` answer 200
 * `{"ready":true,"issuers":[…]}` while every issuer is `fresh` or `stale` (stale keys still answer
 * requests), else 503 `{"ready":false,…}` with `Retry-After: 5`; always `Cache-Control: no-store`.
 * Other methods: 405 with `Allow: GET, HEAD`. It reads state only: it never triggers a fetch (call
 * `warmUp()` at boot for that), so a probe can never load the issuer.
 *
 * @throws {TypeError} when the target holds no verifier that reports a status.
 *
 * @example
 * ```ts
 * await strategy.warmUp()
 * app.get('/readyz', readinessHandler(strategy))
 * ```
 */
export function readinessHandler(target: ReadinessTarget): Middleware {
  if (target === null || typeof target !== 'object') {
    throw new TypeError('readinessHandler: pass a strategy, a verifier or an array of verifiers')
  }
  const sources = sourcesOf(target)
  if (!sources.some((source) => typeof source?.jwksStatus === 'function')) {
    throw new TypeError('readinessHandler: no verifier reports a status (jwksStatus())')
  }
  return function readiness(req, res: ServerResponse) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(
        res,
        405,
        JSON.stringify({ error: 'method_not_allowed' }),
        { Allow: 'GET, HEAD' },
        true,
      )
      return
    }
    const body = readinessBody(sources)
    const headers: Record<string, string> = body.ready
      ? {}
      : { 'Retry-After': String(JWKS_RETRY_AFTER_SECONDS) }
    sendJson(res, body.ready ? 200 : 503, JSON.stringify(body), headers, true)
  }
}
