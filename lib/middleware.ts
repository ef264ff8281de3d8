/**
 * Express/Connect middleware around the strategy: per-route scope checks and JSON / JSON-RPC
 * bodies for every refusal of SPEC §4.
 *
 * Everything here speaks plain Node (`IncomingMessage`, `ServerResponse`, `next(err)`), so it runs
 * unchanged in Express 4, Express 5 and Connect. Headers come only from the error table and the
 * strategy's validated options; bodies only from the fixed descriptions.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

import { challengeFor, type ChallengeContext } from './core/challenge.js'
import { AgentPressAuthError, AgentPressHttpError } from './core/errors.js'
import { AUTH_ERRORS, type AuthErrorReason } from './core/reasons.js'
import { checkScopes } from './core/scope.js'
import { rejectUnknownKeys } from './core/validate.js'
import { sendJson, type ErrorMiddleware, type Middleware } from './http/connect.js'
import {
  AgentPressPartnerStrategy,
  CHALLENGE_CONTEXT,
  FAILURE_REASON,
  STRATEGY_NAME,
} from './strategy.js'

/**
 * Response body of a refusal: `'json'` → `{"error","error_description"}` (`error` is the RFC 6750
 * code, or the reason where there is none: `no_credentials`, `jwks_unavailable`); `'jsonrpc'` →
 * the JSON-RPC error of SPEC §4 (`code` -32001, `data.reason`), for MCP clients.
 *
 * @example
 * ```ts
 * const body: ErrorBodyFormat = 'jsonrpc'
 * ```
 */
export type ErrorBodyFormat = 'json' | 'jsonrpc'

/**
 * The part of a Passport instance {@link authenticatePartner} uses.
 *
 * @example
 * ```ts
 * import passport from 'passport'
 * const instance: PassportLike = passport
 * ```
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

/**
 * JSON-RPC error code of every refusal (implementation-defined server error range).
 *
 * @example
 * ```ts
 * if (response.error?.code === JSONRPC_AUTH_ERROR_CODE) console.log(response.error.data.reason)
 * ```
 */
export const JSONRPC_AUTH_ERROR_CODE = -32001

const AUTHENTICATE_OPTIONS: ReadonlySet<string> = new Set(['body', 'strategy'])
const HANDLER_OPTIONS: ReadonlySet<string> = new Set(['body'])

// Set by `authenticatePartner` so a later `requireScopes` answers with the same body format.
const BODY_FORMAT: unique symbol = Symbol.for('passport-agentpress-partner.body')

type StatefulRequest = IncomingMessage & {
  [FAILURE_REASON]?: AuthErrorReason
  [CHALLENGE_CONTEXT]?: ChallengeContext
  [BODY_FORMAT]?: ErrorBodyFormat
  authInfo?: unknown
  auth?: unknown
}

/**
 * Route middleware requiring every one of `scopes` (flat-set membership: `settings:*` does not
 * imply `settings:read`). Reads `req.authInfo.scopes` as set by the strategy (or `req.auth.scopes`)
 * and otherwise answers 403 `insufficient_scope` with `scope="<the scopes this route needs>"`
 * and the realm/resource metadata of the strategy that authenticated the request.
 *
 * The refusal is passed to `next(err)` as an `AgentPressHttpError` carrying `status` and
 * `headers`, so the default error handler of Express and Connect renders it; after
 * {@link authenticatePartner} (or with {@link agentPressErrorHandler}) it gets a JSON body.
 *
 * @throws {TypeError} at creation, when no scope is given or one is not an RFC 6749 scope token.
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
export function requireScopes(...scopes: string[]): Middleware {
  const needed = checkScopes(scopes, 'requireScopes() scopes', false)
  return function requireScopesMiddleware(req, res, next) {
    const request = req as StatefulRequest
    const granted = grantedScopes(request)
    if (needed.every((scope) => granted.includes(scope))) return next()
    request[FAILURE_REASON] = 'insufficient_scope'
    const context = request[CHALLENGE_CONTEXT] ?? {}
    const error = new AgentPressHttpError('insufficient_scope', { ...context, scope: needed })
    const format = request[BODY_FORMAT]
    if (format === undefined || res.headersSent) return next(error)
    writeRefusal(res, error.status, error.reason, error.headers, format)
  }
}

/**
 * This package's strategy with a JSON (or JSON-RPC) body on every refusal of SPEC §4, 401s
 * included, and on the `requireScopes` refusals after it: the one line of setup for full bodies.
 * Statuses and headers are exactly those of plain `passport.authenticate`; errors that are not
 * ours go to `next(err)` untouched.
 *
 * - Given the **passport instance**, it runs `passport.authenticate(strategy, { session: false,
 *   failWithError: true })` and renders what that reports, so a chain with other strategies
 *   (`strategy: ['agentpress-partner', 'bearer']`) works as with Passport alone.
 * - Given an **`AgentPressPartnerStrategy` instance**, it drives that strategy directly, without
 *   Passport's per-request machinery (measurably faster: see bench/RESULTS.md). `req.user` and
 *   `req.authInfo` are set as Passport would set them with `session: false`; there is no chain.
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
  if (options === null || typeof options !== 'object') {
    throw new TypeError('authenticatePartner() options must be an object')
  }
  rejectUnknownKeys(options, AUTHENTICATE_OPTIONS, 'authenticatePartner')
  const format = checkFormat(options.body, 'authenticatePartner() options.body')
  if (passportOrStrategy instanceof AgentPressPartnerStrategy) {
    if (options.strategy !== undefined) {
      throw new TypeError(
        'authenticatePartner() options.strategy names Passport strategies; omit it when passing a strategy instance',
      )
    }
    return direct(passportOrStrategy, format)
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
  const authenticate = passport.authenticate(strategy, { session: false, failWithError: true })
  if (typeof authenticate !== 'function') {
    throw new TypeError('passport.authenticate() did not return a middleware')
  }
  const handler = authenticate as Middleware
  return function authenticatePartnerMiddleware(req, res, next) {
    ;(req as StatefulRequest)[BODY_FORMAT] = format
    handler(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next()
      if (!render(err, req as StatefulRequest, res, format)) next(err)
    })
  }
}

// The strategy's three Passport actions, answered here: the strategy decides exactly once, so
// each request gets one of them.
function direct(strategy: AgentPressPartnerStrategy, format: ErrorBodyFormat): Middleware {
  return function authenticatePartnerDirect(req, res, next) {
    const request = req as StatefulRequest & { user?: unknown }
    request[BODY_FORMAT] = format
    const run = Object.create(strategy) as AgentPressPartnerStrategy & {
      success(user: unknown, info?: unknown): void
      fail(challenge?: string): void
      error(err: unknown): void
    }
    run.success = (user, info) => {
      request.user = user
      request.authInfo = info
      next()
    }
    run.fail = (challenge) => {
      if (res.headersSent) return
      const reason = request[FAILURE_REASON] ?? 'no_credentials'
      const headers: Record<string, string> =
        typeof challenge === 'string' ? { 'WWW-Authenticate': challenge } : {}
      writeRefusal(res, 401, reason, headers, format)
    }
    run.error = (err) => {
      if (!render(err, request, res, format)) next(err)
    }
    run.authenticate(req)
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
  if (options === null || typeof options !== 'object') {
    throw new TypeError('agentPressErrorHandler() options must be an object')
  }
  rejectUnknownKeys(options, HANDLER_OPTIONS, 'agentPressErrorHandler')
  const format = checkFormat(options.body, 'agentPressErrorHandler() options.body')
  return function agentPressErrorHandlerMiddleware(err, req, res, next) {
    if (!render(err, req as StatefulRequest, res, format)) next(err)
  }
}

/**
 * The body of a refusal, as {@link authenticatePartner} and {@link agentPressErrorHandler} write
 * it. Only fixed text: the error code (or, where RFC 6750 has none, the reason) and description.
 *
 * @example
 * ```ts
 * refusalBody('expired', 'json') // '{"error":"invalid_token","error_description":"Token expired"}'
 * ```
 */
export function refusalBody(reason: AuthErrorReason, format: ErrorBodyFormat): string {
  const entry = AUTH_ERRORS[reason]
  if (format === 'jsonrpc') {
    return JSON.stringify({
      jsonrpc: '2.0',
      id: null,
      error: { code: JSONRPC_AUTH_ERROR_CODE, message: entry.description, data: { reason } },
    })
  }
  return JSON.stringify({ error: entry.error ?? reason, error_description: entry.description })
}

// Renders `err` when it is one of our refusals; returns false to let the caller pass it on.
function render(
  err: unknown,
  req: StatefulRequest,
  res: ServerResponse,
  format: ErrorBodyFormat,
): boolean {
  if (res.headersSent) return false
  if (isAuthError(err)) {
    writeRefusal(res, err.status, err.reason, err.headers, format)
    return true
  }
  // Passport's `failWithError`: it has set the 401 and every strategy's WWW-Authenticate already;
  // only the reason our strategy recorded tells what to describe.
  const reason = req[FAILURE_REASON]
  if (
    err instanceof Error &&
    err.name === 'AuthenticationError' &&
    reason !== undefined &&
    AUTH_ERRORS[reason].status === 401 &&
    res.statusCode === 401
  ) {
    if (!res.hasHeader('WWW-Authenticate')) {
      res.setHeader('WWW-Authenticate', challengeFor(reason, req[CHALLENGE_CONTEXT]) ?? 'Bearer')
    }
    writeRefusal(res, 401, reason, {}, format)
    return true
  }
  return false
}

function isAuthError(err: unknown): err is AgentPressAuthError {
  return (
    err instanceof AgentPressAuthError &&
    Object.prototype.hasOwnProperty.call(AUTH_ERRORS, err.reason) &&
    err.status === AUTH_ERRORS[err.reason].status
  )
}

function writeRefusal(
  res: ServerResponse,
  status: number,
  reason: AuthErrorReason,
  headers: Readonly<Record<string, string>>,
  format: ErrorBodyFormat,
): void {
  sendJson(res, status, refusalBody(reason, format), headers)
}

function grantedScopes(req: StatefulRequest): readonly unknown[] {
  for (const holder of [req.authInfo, req.auth]) {
    if (holder !== null && typeof holder === 'object') {
      const scopes = (holder as { scopes?: unknown }).scopes
      if (Array.isArray(scopes)) return scopes
    }
  }
  return []
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
