/**
 * `requireScopes`: a per-route scope check after the strategy (or `authenticatePartner`).
 */
import { AgentPressHttpError } from '../core/refusals/errors.js'
import {
  checkImplication,
  checkScopes,
  hasScopes,
  type Implication,
  type ScopeImplication,
} from '../core/token/scope.js'
import { rejectUnknownKeys } from '../core/validate.js'
import type { Middleware } from '../http/connect.js'
import { decideRefused } from '../http/decision.js'
import {
  FAILURE_REASON,
  grantedRefusalRoute,
  scopeImplicationOf,
  writeRefusal,
  type RefusalCarrier,
} from '../http/refusal.js'

/**
 * Options of {@link requireScopes}, given after the scopes.
 *
 * @example
 * ```ts
 * const options: RequireScopesOptions = { implies: { 'notes:write': ['notes:read'] } }
 * ```
 */
export interface RequireScopesOptions {
  /**
   * Opt-in scope hierarchy (`{ 'notes:write': ['notes:read'] }`: a `notes:write` token passes a
   * `notes:read` route). Default: the strategy's `implies` that authenticated the request, if it
   * had one; else flat sets (§2). `{}` forces flat sets.
   */
  implies?: ScopeImplication | undefined
}

const OPTIONS: ReadonlySet<string> = new Set(['implies'])

/**
 * Route middleware requiring every one of `scopes` (flat-set membership: `settings:*` does not
 * imply `settings:read`; an implication only when declared: `implies` here or on the strategy).
 * Reads `req.authInfo.scopes` as set by the strategy (or `req.auth.scopes`) and otherwise answers
 * 403 `insufficient_scope` with `scope="<the scopes this route needs>"` and the realm/resource
 * metadata of the strategy that authenticated the request.
 *
 * The refusal is passed to `next(err)` as an `AgentPressHttpError` carrying `status` and
 * `headers`, so the default error handler of Express and Connect renders it; after
 * `authenticatePartner` (or with `agentPressErrorHandler`) it gets a JSON body.
 *
 * @throws {TypeError} at creation, when no scope is given or one is not an RFC 6749 scope token
 *   (no scope at all is also a compile error in TypeScript), or on a bad option.
 *
 * @example
 * ```ts
 * app.post(
 *   '/mcp/admin',
 *   passport.authenticate('agentpress-partner', { session: false }),
 *   requireScopes('mcp:write', 'settings:read'),
 *   handler,
 * )
 * app.get('/notes', authenticatePartner(strategy), requireScopes('notes:read', { implies }), list)
 * ```
 */
export function requireScopes(...scopes: [string, ...string[]]): Middleware
export function requireScopes(
  ...scopesThenOptions: [string, ...string[], RequireScopesOptions]
): Middleware
export function requireScopes(...args: unknown[]): Middleware {
  const last = args[args.length - 1]
  const hasOptions = last !== null && typeof last === 'object' && !Array.isArray(last)
  const options = (hasOptions ? last : {}) as RequireScopesOptions
  if (hasOptions) rejectUnknownKeys(options, OPTIONS, 'requireScopes()')
  const needed = checkScopes(hasOptions ? args.slice(0, -1) : args, 'requireScopes() scopes', false)
  const own = checkImplication(options.implies, 'requireScopes() options.implies')
  return scopeCheck(needed, own)
}

/**
 * The check itself, for `needed` already validated: `implication` (the option) or the one the
 * strategy recorded on the request. @internal
 */
export function scopeCheck(needed: readonly string[], implication?: Implication): Middleware {
  return function requireScopesMiddleware(req, res, next) {
    const request = req as RefusalCarrier
    // Read once: each read of an Express request property takes V8's slow path.
    const authInfo = request.authInfo
    const granted = grantedScopes(request, authInfo)
    if (hasScopes(granted, needed, implication ?? scopeImplicationOf(request, authInfo))) {
      return next()
    }
    refuseScopes(request, res, next, needed, authInfo)
  }
}

/**
 * Answers 403 `insufficient_scope` naming `needed` (none: no `scope=`), as `requireScopes` does.
 * @internal
 */
export function refuseScopes(
  request: RefusalCarrier,
  res: Parameters<Middleware>[1],
  next: Parameters<Middleware>[2],
  needed: readonly string[],
  authInfo: unknown = request.authInfo,
): void {
  // The accepting strategy's route state, read before this refusal records anything.
  const { context, format } = grantedRefusalRoute(request, authInfo)
  request[FAILURE_REASON] = 'insufficient_scope'
  // Counted as the refusal it is (the strategy's acceptance before it is replaced).
  decideRefused(request, 'insufficient_scope')
  const error = new AgentPressHttpError('insufficient_scope', { ...context, scope: needed })
  if (format === undefined || res.headersSent) return next(error)
  writeRefusal(res, error.reason, error.headers, format)
}

/**
 * The scopes the request's token was granted (`req.authInfo`, else `req.auth`); `authInfo`: the
 * value of `req.authInfo` when the caller has read it. @internal
 */
export function grantedScopes(
  req: RefusalCarrier,
  authInfo: unknown = req.authInfo,
): readonly unknown[] {
  // `req.auth` is read only when `req.authInfo` has none (each read of a request property costs).
  return scopesIn(authInfo) ?? scopesIn(req.auth) ?? []
}

function scopesIn(holder: unknown): readonly unknown[] | undefined {
  if (holder === null || typeof holder !== 'object') return undefined
  const scopes = (holder as { scopes?: unknown }).scopes
  return Array.isArray(scopes) ? scopes : undefined
}
