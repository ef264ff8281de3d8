/**
 * `refusalOf(req, err)`: why this package refused a request, for application code that renders
 * refusals itself — a Passport custom callback, or an error handler after `failWithError`.
 *
 * Passport hands such code only part of the story: a 401 is a `fail`, which reaches a custom
 * callback as the bare challenge string and an error handler as Passport's generic
 * `AuthenticationError`; the strategy's 400, 403 and 503 (and `requireScopes`' 403) are errors of
 * ours. This reads both: our error when `err` is one, else the reason the strategy recorded on the
 * request for its 401.
 */
import type { IncomingMessage } from 'node:http'
import {
  AgentPressHttpError,
  PartnerTokenError,
  type AgentPressAuthError,
} from '../core/refusals/errors.js'
import { renderableRefusal } from '../core/refusals/refusal-errors.js'
import { AUTH_ERRORS, type PartnerTokenErrorReason } from '../core/refusals/reasons.js'
import { challengeContextOf, FAILURE_REASON, type RefusalCarrier } from './refusal.js'

/**
 * The refusal behind a request's failed authentication, as the error this package renders it
 * with: `reason`, `status`, `description`, `error` (the RFC 6750 code, if any) and `headers`
 * (`WWW-Authenticate` with the strategy's realm and resource metadata URL, or `Retry-After` for a
 * 503). `undefined` when this package refused nothing: a success, or an error not ours (pass it
 * on).
 *
 * Give it the `err` your code received (`null`/`undefined` in a custom callback's 401).
 *
 * @example
 * ```ts
 * app.post('/mcp', (req, res, next) => {
 *   passport.authenticate('agentpress-partner', { session: false }, (err: unknown, user: unknown) => {
 *     const refusal = refusalOf(req, err)
 *     if (refusal !== undefined) {
 *       return res.status(refusal.status).set(refusal.headers).json({ error: refusal.reason })
 *     }
 *     if (err) return next(err)
 *     res.json({ user })
 *   })(req, res, next)
 * })
 * ```
 */
export function refusalOf(req: IncomingMessage, err?: unknown): AgentPressAuthError | undefined {
  const ours = renderableRefusal(err)
  if (ours !== undefined) return ours
  const reason = (req as RefusalCarrier)[FAILURE_REASON]
  // Only a 401 travels without an error of ours; a recorded 400/403/503 with some other error
  // means that error is what happened last.
  if (reason === undefined || AUTH_ERRORS[reason].status !== 401) return undefined
  if (err !== undefined && err !== null && !isAuthenticationError(err)) return undefined
  const context = challengeContextOf(req) ?? {}
  return reason === 'no_credentials'
    ? new AgentPressHttpError('no_credentials', context)
    : new PartnerTokenError(reason as PartnerTokenErrorReason, context)
}

// Passport's failWithError error (passport/lib/errors/authenticationerror.js).
function isAuthenticationError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AuthenticationError'
}
