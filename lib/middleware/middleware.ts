/**
 * `authenticatePartner`: the strategy with a JSON (or JSON-RPC) body on every refusal of §4,
 * through Passport or without it, and `agentPressErrorHandler`, the same bodies as an error
 * middleware.
 *
 * Everything here speaks plain Node (`IncomingMessage`, `ServerResponse`, `next(err)`), so it runs
 * unchanged in Express 4, Express 5 and Connect. Headers come only from the error table and the
 * strategy's validated options; bodies only from the fixed descriptions.
 */
import { optionsObject, rejectUnknownKeys } from '../core/validate.js'
import { authenticate, type AuthActions, type AuthSettings } from '../http/authenticate.js'
import type { ErrorMiddleware, Middleware, NextFunction } from '../http/connect.js'
import { RESPONSE } from '../http/decision.js'
import {
  BODY_FORMAT,
  FAILURE_REASON,
  renderRefusal,
  writeRefusal,
  type ErrorBodyFormat,
  type RefusalCarrier,
} from '../http/refusal.js'
import { STRATEGY_NAME, withRouteScopes } from '../passport/options.js'
import { AgentPressPartnerStrategy, settingsOf } from '../passport/strategy.js'
import { checkScopes } from '../core/token/scope.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

export type { ErrorBodyFormat } from '../http/refusal.js'

/**
 * The part of a Passport instance {@link authenticatePartner} uses.
 */
export interface PassportLike {
  authenticate(strategy: string | string[], options: object): unknown
}

/**
 * Options of {@link authenticatePartner}.
 *
 * @example
 * ```ts
 * const options: AuthenticatePartnerOptions = { body: 'jsonrpc', strategy: ['agentpress-partner', 'bearer'] }
 * ```
 */
export interface AuthenticatePartnerOptions {
  /** Body of every refusal. Default `'json'`. */
  body?: ErrorBodyFormat | undefined
  /** Strategy name, or a chain of names. Default `'agentpress-partner'`. */
  strategy?: string | readonly string[] | undefined
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
  /** Body of every refusal. Default `'json'`. */
  body?: ErrorBodyFormat | undefined
}

const AUTHENTICATE_OPTIONS: ReadonlySet<string> = new Set(['body', 'strategy', 'scope'])
const HANDLER_OPTIONS: ReadonlySet<string> = new Set(['body'])

/**
 * This package's strategy with a JSON (or JSON-RPC) body on every refusal of §4, 401s
 * included, and on the `requireScopes` refusals after it: the one line of setup for full bodies.
 * Statuses and headers are exactly those of plain `passport.authenticate`; errors that are not
 * ours go to `next(err)` untouched.
 *
 * - Given the **passport instance**, it runs `passport.authenticate(strategy, { session: false,
 *   failWithError: true })` and renders what that reports, so a chain with other strategies
 *   (`strategy: ['agentpress-partner', 'bearer']`) works as with Passport alone.
 * - Given an **`AgentPressPartnerStrategy` instance**, it runs the strategy's decision directly,
 *   without Passport's per-request machinery (measurably faster: see bench/RESULTS.md). `req.user`
 *   and `req.authInfo` are set as Passport would set them with `session: false`; there is no chain.
 *
 * @example
 * ```ts
 * app.post('/mcp', authenticatePartner(passport, { body: 'jsonrpc' }), requireScopes('mcp:write'), mcpHandler)
 * // or, without Passport:
 * const strategy = new AgentPressPartnerStrategy({ partnerMcp }, verify)
 * app.post('/mcp', authenticatePartner(strategy, { body: 'jsonrpc' }), mcpHandler)
 * ```
 */
export function authenticatePartner(
  passportOrStrategy: PassportLike | AgentPressPartnerStrategy,
  options: AuthenticatePartnerOptions = {},
): Middleware {
  optionsObject(options, 'authenticatePartner() options must be an object')
  rejectUnknownKeys(options, AUTHENTICATE_OPTIONS, 'authenticatePartner')
  const format = checkFormat(options.body, 'authenticatePartner() options.body')
  if (options.scope !== undefined)
    checkScopes(options.scope, 'authenticatePartner() options.scope', false)
  if (passportOrStrategy instanceof AgentPressPartnerStrategy) {
    if (options.strategy !== undefined) {
      throw new TypeError(
        'authenticatePartner() options.strategy names Passport strategies; omit it when passing a strategy instance',
      )
    }
    const settings = settingsOf(passportOrStrategy)
    return direct(
      options.scope === undefined
        ? settings
        : withRouteScopes(settings, options.scope, 'authenticatePartner() options.scope'),
      format,
    )
  }
  const passport = passportOrStrategy
  if (
    passport === null ||
    typeof passport !== 'object' ||
    typeof passport.authenticate !== 'function'
  ) {
    throw new TypeError(
      'authenticatePartner() needs the passport instance or an AgentPressPartnerStrategy as its first argument',
    )
  }
  const strategy = checkStrategy(options.strategy)
  const scope = options.scope === undefined ? {} : { scope: [...options.scope] }
  const authenticate = passport.authenticate(strategy, {
    session: false,
    failWithError: true,
    ...scope,
  })
  if (typeof authenticate !== 'function') {
    throw new TypeError('passport.authenticate() did not return a middleware')
  }
  const handler = authenticate as Middleware
  return function authenticatePartnerMiddleware(req, res, next) {
    ;(req as RefusalCarrier)[BODY_FORMAT] = format
    ;(req as IncomingMessage & { [RESPONSE]?: ServerResponse })[RESPONSE] = res
    handler(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next()
      if (!renderRefusal(err, req as RefusalCarrier, res, format)) next(err)
    })
  }
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

function direct(settings: AuthSettings, format: ErrorBodyFormat): Middleware {
  return function authenticatePartnerDirect(req: IncomingMessage, res, next) {
    const request = req as RefusalCarrier & { [RESPONSE]?: ServerResponse }
    request[BODY_FORMAT] = format
    request[RESPONSE] = res
    authenticate(settings, req, new DirectActions(request, res, next, format))
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

function checkStrategy(value: unknown): string | string[] {
  if (value === undefined) return STRATEGY_NAME
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0 || !list.every((name) => typeof name === 'string' && name !== '')) {
    throw new TypeError(
      'authenticatePartner() options.strategy must be a non-empty string or array of them',
    )
  }
  return Array.isArray(value) ? [...(value as string[])] : (value as string)
}
