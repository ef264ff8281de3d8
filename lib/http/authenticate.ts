/**
 * The one request decision, framework-free: read the token, verify it, check the required scopes,
 * resolve the user through the application's `verify` callback, and report exactly one of
 * `success`, `fail` or `error`. The Passport strategy passes its per-request actions; the
 * Passport-free middleware passes its own.
 *
 * The table of `core/reasons.ts` decides every refusal: a 401 row is `fail(challenge, 401)` (so a
 * Passport chain goes on to the next strategy, and Passport sets `WWW-Authenticate`, which it does
 * only for a 401); any other row is `error(err)` with an `AgentPressAuthError` whose `status` and
 * `headers` the default error handler of Express and Connect renders as is. Every header value
 * comes from the table and the validated options, never from the request.
 *
 * The hot path (a cached key, a `verify` that calls `done` synchronously) runs to `success`
 * without a promise: our verifiers answer synchronously when they can.
 */
import type { IncomingMessage } from 'node:http'
import { readBearerToken, readBearerTokenUnscanned } from '../core/token/bearer.js'
import { verifyObserved } from '../core/diagnostics/verify.js'
import type { ChallengeContext } from '../core/refusals/challenge.js'
import type { PartnerTokenClaims } from '../core/token/claims.js'
import { JwksUnavailableError, ReplayUnavailableError } from '../core/refusals/errors.js'
import { refusalError, verifierRefusal } from '../core/refusals/refusal-errors.js'
import { AUTH_ERRORS, type AuthErrorReason } from '../core/refusals/reasons.js'
import { hasScopes, parseScope, type Implication } from '../core/token/scope.js'
import { auditClaims, auditDecision, auditing, beginAudit } from './audit.js'
import { authInfoOf, mcpAuthInfoOf, type AgentPressAuthInfo } from './auth-info.js'
import {
  FAILURE_REASON,
  markGranted,
  recordRoute,
  SCOPE_IMPLICATION,
  type RefusalCarrier,
  type RouteState,
} from './refusal.js'
import { decideAccepted, decideRefused, decideServerError } from './decision.js'
import {
  callVerify,
  isThenable,
  type VerifyFunction,
  type VerifyFunctionWithRequest,
} from './verify-callback.js'

export type { AgentPressAuthInfo, McpAuthInfo } from './auth-info.js'
export type { VerifyDone, VerifyFunction, VerifyFunctionWithRequest } from './verify-callback.js'

/** The three outcomes of a request (Passport's per-request actions). @internal */
export interface AuthActions {
  success(user: unknown, info?: unknown): void
  fail(challenge?: string): void
  error(err: unknown): void
}

/** Everything the decision needs, prepared once at construction. @internal */
export interface AuthSettings {
  readonly context: ChallengeContext
  readonly requiredScopes: readonly string[]
  /** The opt-in scope hierarchy (`implies`); `undefined`: flat sets. */
  readonly implication: Implication | undefined
  readonly passReqToCallback: boolean
  readonly tokenFromRequest: ((req: IncomingMessage) => string | null | undefined) | undefined
  readonly verify: VerifyFunction | VerifyFunctionWithRequest
  /** Verifies a token: the claims at once when the key is cached, else a promise; may throw. */
  readonly verifyToken: (token: string) => PartnerTokenClaims | PromiseLike<PartnerTokenClaims>
  /**
   * Whether `verifyToken` refuses as `malformed`, before any other check, every token that is not
   * base64url segments joined by dots (ours do): the header's character scan can then wait for a
   * refusal (see `readBearerTokenUnscanned`).
   */
  readonly parsesFirst: boolean
  /** The resource a token of `iss` was verified for, when its audience is a URL. */
  readonly resourceOf: (claims: PartnerTokenClaims) => URL | undefined
  /** The challenge of each reason, rendered once. */
  readonly challenges: Readonly<Record<AuthErrorReason, string | undefined>>
  /**
   * What `requireScopes` and the renderers after this decision need (challenge context, scope
   * implication, body format), built once: hung on `req.authInfo` and `req.auth` on acceptance,
   * recorded beside the request on refusal.
   */
  readonly route: RouteState
}

/**
 * Decides one request. Never throws and never rejects: every outcome becomes exactly one action,
 * and an action that throws (Passport, or a challenge of another strategy that `setHeader`
 * refuses) is reported as an error instead of crashing.
 *
 * @internal
 */
export function authenticate(
  settings: AuthSettings,
  req: IncomingMessage,
  actions: AuthActions,
): void {
  const request = req as RefusalCarrier
  // For an older copy's requireScopes, which reads the request (set only with `implies`).
  if (settings.implication !== undefined) request[SCOPE_IMPLICATION] = settings.implication
  // The audit trail (opt-in): one boolean read when nobody subscribes.
  if (auditing()) beginAudit(request)
  // The hot path: our verifier parses first, so the token's character scan waits for a refusal
  // (unless someone observes verifications: they would see a token the strict read refuses).
  if (settings.parsesFirst && settings.tokenFromRequest === undefined && !verifyObserved()) {
    const unscanned = readBearerTokenUnscanned(req)
    if (unscanned !== undefined)
      return verifyThenAccept(settings, request, actions, unscanned, true)
  }
  let token: string | { readonly reason: AuthErrorReason }
  try {
    token = extract(settings, req)
  } catch (err) {
    return serverError(request, actions, err)
  }
  if (typeof token !== 'string') return refuse(settings, request, actions, token.reason)
  verifyThenAccept(settings, request, actions, token, false)
}

function verifyThenAccept(
  settings: AuthSettings,
  request: RefusalCarrier,
  actions: AuthActions,
  token: string,
  unscanned: boolean,
): void {
  let found: PartnerTokenClaims | PromiseLike<PartnerTokenClaims>
  try {
    found = settings.verifyToken(token)
  } catch (err) {
    return afterVerifyError(settings, request, actions, err, unscanned ? token : undefined)
  }
  if (!isThenable(found)) return accept(settings, request, actions, token, found)
  const failed = (err: unknown): void =>
    afterVerifyError(settings, request, actions, err, unscanned ? token : undefined)
  try {
    found.then((claims) => accept(settings, request, actions, token, claims), failed)
  } catch (err) {
    failed(err) // a foreign thenable whose `then` throws
  }
}

const NO_CREDENTIALS = Object.freeze({ reason: 'no_credentials' as const })

// The token, or the reason when the request carries none or a malformed header.
function extract(
  settings: AuthSettings,
  req: IncomingMessage,
): string | { readonly reason: AuthErrorReason } {
  const custom = settings.tokenFromRequest
  if (custom === undefined) {
    const bearer = readBearerToken(req)
    return 'token' in bearer ? bearer.token : bearer
  }
  const value = custom(req)
  if (value === undefined || value === null || value === '') return NO_CREDENTIALS
  if (typeof value !== 'string') {
    throw new TypeError('options.tokenFromRequest must return a string, null or undefined')
  }
  return value
}

// `unscanned`: the token, when it was read without the character scan. A `malformed` one is then
// read again strictly, and the strict answer decides: its reason (`invalid_request`), or the token
// it finds (blanks around it) verified again; the same token is refused as it was.
function afterVerifyError(
  settings: AuthSettings,
  req: RefusalCarrier,
  actions: AuthActions,
  err: unknown,
  unscanned?: string,
): void {
  const reason = verifierRefusal(err)
  if (reason === undefined) return serverError(req, actions, err)
  if (reason === 'malformed' && unscanned !== undefined) {
    const strict = readBearerToken(req)
    if ('reason' in strict) return refuse(settings, req, actions, strict.reason)
    if (strict.token !== unscanned) {
      return verifyThenAccept(settings, req, actions, strict.token, false)
    }
  }
  refuse(settings, req, actions, reason, err)
}

function accept(
  settings: AuthSettings,
  req: RefusalCarrier,
  actions: AuthActions,
  token: string,
  claims: PartnerTokenClaims,
): void {
  auditClaims(req, claims)
  let scopes: string[]
  try {
    scopes = parseScope(typeof claims.scope === 'string' ? claims.scope : '')
  } catch (err) {
    // A foreign verifier may resolve anything; claims that are no object are a server error.
    return serverError(req, actions, err)
  }
  // Checked before the user lookup: a token that cannot be used costs no database call.
  if (!hasScopes(scopes, settings.requiredScopes, settings.implication)) {
    return refuse(settings, req, actions, 'insufficient_scope')
  }
  const { verify, passReqToCallback } = settings
  callVerify(verify, passReqToCallback, req, claims, (err, user, info) => {
    if (err !== undefined) return serverError(req, actions, err)
    if (user === false || user === null || user === undefined) {
      return refuse(settings, req, actions, 'user_not_provisioned')
    }
    let authInfo: AgentPressAuthInfo
    try {
      // Both carry the route state (hidden), so requireScopes after Passport's `authInfo: false`
      // still finds it.
      authInfo = markGranted(authInfoOf(claims, scopes, info), settings.route)
      // Passport sets only req.user and req.authInfo; the MCP SDK's transports read req.auth.
      req.auth = markGranted(
        mcpAuthInfoOf(token, claims, scopes, user, settings.resourceOf(claims)),
        settings.route,
      )
    } catch (err) {
      return serverError(req, actions, err)
    }
    decideAccepted(req)
    auditDecision(req, 'accepted')
    deliver(actions, 'success', user, authInfo)
  })
}

// A refusal, as its table row says: 401 is a Passport failure (no status given, so a chain's
// other strategies keep theirs), anything else an error. An outage keeps the error the verifier
// threw, with its cause, when it is ours; anything else it threw becomes the cause.
function refuse(
  settings: AuthSettings,
  req: RefusalCarrier,
  actions: AuthActions,
  reason: AuthErrorReason,
  thrown?: unknown,
): void {
  req[FAILURE_REASON] = reason
  recordRoute(req, settings.route)
  decideRefused(req, reason)
  auditDecision(req, 'refused')
  if (AUTH_ERRORS[reason].status === 401) {
    return deliver(actions, 'fail', settings.challenges[reason])
  }
  const error =
    thrown instanceof JwksUnavailableError || thrown instanceof ReplayUnavailableError
      ? thrown
      : refusalError(reason, {
          ...settings.context,
          scope: settings.requiredScopes,
          cause: thrown,
        })
  deliver(actions, 'error', error)
}

function deliver(
  actions: AuthActions,
  action: 'success' | 'fail' | 'error',
  first: unknown,
  info?: unknown,
): void {
  try {
    if (action === 'success') actions.success(first, info)
    else if (action === 'fail') actions.fail(first as string | undefined)
    else actions.error(first)
  } catch (err) {
    // Thrown by Passport or by what it called (e.g. a challenge of another strategy that
    // setHeader refuses): report it like any other server error instead of crashing.
    actions.error(err)
  }
}

function serverError(req: RefusalCarrier, actions: AuthActions, err: unknown): void {
  decideServerError(req)
  auditDecision(req, 'error')
  deliver(actions, 'error', asError(err))
}

// A falsy error passed to Passport's `error()` would reach `next(undefined)` and let the request
// through unauthenticated; anything we pass on is therefore a real value.
function asError(err: unknown): unknown {
  if (err) return err
  return new Error('AgentPressPartnerStrategy: verify callback failed without an error value')
}
