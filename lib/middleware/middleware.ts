/**
 * `authenticatePartner`: the strategy without Passport, with a JSON (or JSON-RPC) body on every
 * refusal of §4, and `agentPressErrorHandler`, the same bodies as an error middleware (for
 * `passport.authenticate(…, { failWithError: true })`).
 *
 * Everything here speaks plain Node (`IncomingMessage`, `ServerResponse`, `next(err)`), so it runs
 * unchanged in Express 4, Express 5 and Connect. Headers come only from the error table and the
 * strategy's validated options; bodies only from the fixed descriptions.
 */
import { optionsObject, rejectUnknownKeys } from '../core/validate.js'
import { offerAuditResponse } from '../http/audit.js'
import { authenticate, type AuthActions, type AuthSettings } from '../http/authenticate.js'
import { RESPONSE } from '../http/decision.js'
import { requestDecisionObserved } from '../core/diagnostics/publish.js'
import type { ErrorMiddleware, Middleware, NextFunction } from '../http/connect.js'
import {
  FAILURE_REASON,
  renderRefusal,
  routeState,
  writeRefusal,
  type ErrorBodyFormat,
  type RefusalCarrier,
} from '../http/refusal.js'
import { withRouteScopes } from '../passport/options.js'
import { AgentPressPartnerStrategy, settingsOf } from '../passport/strategy.js'
import { checkScopes } from '../core/token/scope.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * Options of {@link authenticatePartner}.
 *
 * @example
 * ```ts
 * const options: AuthenticatePartnerOptions = { body: 'jsonrpc', scope: ['mcp:read'] }
 * ```
 */
export interface AuthenticatePartnerOptions {
  /** Body of every refusal: `'json'` (default) or `'jsonrpc'`. */
  body?: 'json' | 'jsonrpc' | undefined
  /**
   * Scopes this route needs, besides the strategy's `requiredScopes`: checked (403
   * `insufficient_scope`) and named as `scope="…"` in every 401 challenge (MCP 2025-11-25).
   */
  scope?: readonly string[] | undefined
}

/**
 * Options of {@link agentPressErrorHandler}.
 *
 * @example
 * ```ts
 * app.use(agentPressErrorHandler({ body: 'json' } satisfies ErrorHandlerOptions))
 * ```
 */
export interface ErrorHandlerOptions {
  /** Body of every refusal: `'json'` (default) or `'jsonrpc'`. */
  body?: 'json' | 'jsonrpc' | undefined
}

const AUTHENTICATE_OPTIONS: ReadonlySet<string> = new Set(['body', 'scope'])
const HANDLER_OPTIONS: ReadonlySet<string> = new Set(['body'])

/**
 * The Passport-free middleware: this package's strategy, run directly (without Passport's
 * per-request machinery), with a JSON (or JSON-RPC) body on every refusal of §4, 401s included,
 * and on the `requireScopes` refusals after it. Statuses and headers are exactly those of
 * `passport.authenticate`; `req.user` and `req.authInfo` are set as Passport sets them with
 * `session: false`; errors that are not ours go to `next(err)` untouched.
 *
 * In a Passport app use `passport.authenticate('agentpress-partner', { session: false,
 * failWithError: true })` and {@link agentPressErrorHandler} for the same bodies (a chain of
 * strategies included).
 *
 * @throws {TypeError} at creation: not a strategy, unknown options, a bad `body` or `scope`.
 *
 * @example
 * ```ts
 * const strategy = new AgentPressPartnerStrategy({ partnerMcp }, verify)
 * app.post('/mcp', authenticatePartner(strategy, { body: 'jsonrpc' }), requireScopes('mcp:write'), mcpHandler)
 * ```
 */
export function authenticatePartner(
  strategy: AgentPressPartnerStrategy,
  options: AuthenticatePartnerOptions = {},
): Middleware {
  if (!(strategy instanceof AgentPressPartnerStrategy)) {
    throw new TypeError(
      'authenticatePartner() needs an AgentPressPartnerStrategy as its first argument; in a Passport app use ' +
        "passport.authenticate('agentpress-partner', { session: false, failWithError: true }) and app.use(agentPressErrorHandler())",
    )
  }
  optionsObject(options, 'authenticatePartner() options must be an object')
  rejectUnknownKeys(options, AUTHENTICATE_OPTIONS, 'authenticatePartner')
  const format = checkFormat(options.body, 'authenticatePartner() options.body')
  if (options.scope !== undefined)
    checkScopes(options.scope, 'authenticatePartner() options.scope', false)
  const settings = settingsOf(strategy)
  return direct(
    options.scope === undefined
      ? settings
      : withRouteScopes(settings, options.scope, 'authenticatePartner() options.scope'),
    format,
  )
}

// The decision's three outcomes, answered here: `success` sets what Passport would set with
// `session: false`, `fail` writes the refusal of the reason the decision recorded.
class DirectActions implements AuthActions {
  constructor(
    readonly req: RefusalCarrier,
    readonly res: ServerResponse,
    readonly next: NextFunction,
    readonly format: ErrorBodyFormat,
  ) {}

  success(user: unknown, info?: unknown): void {
    this.req.user = user
    this.req.authInfo = info
    this.next()
  }

  fail(challenge?: string): void {
    if (this.res.headersSent) return
    const reason = this.req[FAILURE_REASON] ?? 'no_credentials'
    const headers = typeof challenge === 'string' ? { 'WWW-Authenticate': challenge } : undefined
    writeRefusal(this.res, reason, headers, this.format)
  }

  error(err: unknown): void {
    if (!renderRefusal(err, this.req, this.res, this.format)) this.next(err)
  }
}

function direct(base: AuthSettings, format: ErrorBodyFormat): Middleware {
  // The route state with this middleware's body format, for requireScopes after it.
  const settings: AuthSettings = Object.freeze({
    ...base,
    route: routeState(base.context, base.implication, format),
  })
  return function authenticatePartnerDirect(req: IncomingMessage, res, next) {
    offerAuditResponse(req, res)
    // Only a decision subscriber needs the response (Express links it as `req.res`, Connect does
    // not). Nothing else is read from or added to the request here: under Express each such
    // access takes V8's slow path (refusal.ts), and the route state (body format) travels apart.
    if (requestDecisionObserved()) {
      const request = req as RefusalCarrier & { [RESPONSE]?: ServerResponse; res?: unknown }
      if (request.res !== res) request[RESPONSE] = res
    }
    authenticate(settings, req, new DirectActions(req as RefusalCarrier, res, next, format))
  }
}

/**
 * Error middleware giving every refusal of this package a JSON (or JSON-RPC) body, with the
 * status and headers it carries. Mount it after your routes; use it with
 * `passport.authenticate('agentpress-partner', { session: false, failWithError: true })` so that
 * 401s reach it too (Passport otherwise answers them itself, with a plain-text body). Errors that
 * are not ours are passed on untouched.
 *
 * @example
 * ```ts
 * app.post('/mcp', passport.authenticate('agentpress-partner', { session: false, failWithError: true }), mcpHandler)
 * app.use(agentPressErrorHandler({ body: 'jsonrpc' }))
 * ```
 */
export function agentPressErrorHandler(options: ErrorHandlerOptions = {}): ErrorMiddleware {
  optionsObject(options, 'agentPressErrorHandler() options must be an object')
  rejectUnknownKeys(options, HANDLER_OPTIONS, 'agentPressErrorHandler')
  const format = checkFormat(options.body, 'agentPressErrorHandler() options.body')
  return function agentPressErrorHandlerMiddleware(err, req, res, next) {
    if (!renderRefusal(err, req as RefusalCarrier, res, format)) next(err)
  }
}

function checkFormat(value: unknown, name: string): ErrorBodyFormat {
  if (value === undefined) return 'json'
  if (value !== 'json' && value !== 'jsonrpc')
    throw new TypeError(`${name} must be 'json' or 'jsonrpc'`)
  return value
}
