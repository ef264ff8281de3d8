/**
 * `requireScopes`: a per-route scope check after the strategy (or `authenticatePartner`).
 */
import { AgentPressHttpError } from '../core/refusals/errors.js'
import { checkScopes } from '../core/token/scope.js'
import type { Middleware } from '../http/connect.js'
import { decideRefused } from '../http/decision.js'
import {
  BODY_FORMAT,
  CHALLENGE_CONTEXT,
  FAILURE_REASON,
  writeRefusal,
  type RefusalCarrier,
} from '../http/refusal.js'

/**
 * Route middleware requiring every one of `scopes` (flat-set membership: `settings:*` does not
 * imply `settings:read`). Reads `req.authInfo.scopes` as set by the strategy (or `req.auth.scopes`)
 * and otherwise answers 403 `insufficient_scope` with `scope="<the scopes this route needs>"`
 * and the realm/resource metadata of the strategy that authenticated the request.
 *
 * The refusal is passed to `next(err)` as an `AgentPressHttpError` carrying `status` and
 * `headers`, so the default error handler of Express and Connect renders it; after
 * `authenticatePartner` (or with `agentPressErrorHandler`) it gets a JSON body.
 *
 * @throws {TypeError} at creation, when no scope is given or one is not an RFC 6749 scope token
 *   (no scope at all is also a compile error in TypeScript).
 *
 * @example
 * ```ts
 * app.post(
 *   '/mcp/admin',
 *   passport.authenticate('agentpress-partner', { session: false }),
 *   requireScopes('mcp:write', 'settings:read'),
 *   handler,
 * )
 * ```
 */
export function requireScopes(...scopes: [string, ...string[]]): Middleware {
  const needed = checkScopes(scopes, 'requireScopes() scopes', false)
  return function requireScopesMiddleware(req, res, next) {
    const request = req as RefusalCarrier
    const granted = grantedScopes(request)
    if (needed.every((scope) => granted.includes(scope))) return next()
    request[FAILURE_REASON] = 'insufficient_scope'
    // Counted as the refusal it is (the strategy's acceptance before it is replaced).
    decideRefused(req, 'insufficient_scope')
    const context = request[CHALLENGE_CONTEXT] ?? {}
    const error = new AgentPressHttpError('insufficient_scope', { ...context, scope: needed })
    const format = request[BODY_FORMAT]
    if (format === undefined || res.headersSent) return next(error)
    writeRefusal(res, error.reason, error.headers, format)
  }
}

function grantedScopes(req: RefusalCarrier): readonly unknown[] {
  for (const holder of [req.authInfo, req.auth]) {
    if (holder !== null && typeof holder === 'object') {
      const scopes = (holder as { scopes?: unknown }).scopes
      if (Array.isArray(scopes)) return scopes
    }
  }
  return []
}
