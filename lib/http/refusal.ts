/**
 * The refusal a request carries, and its rendering as a JSON or JSON-RPC body.
 *
 * A Passport `fail` reaches an error handler only as a bare `AuthenticationError`, and
 * `requireScopes` runs after the strategy in another middleware: what they need to know travels
 * with the request — the route state in a WeakMap shared by every copy of this package (see
 * `routeStates`), the rest under `Symbol.for` keys only set when needed (a refusal, `implies`).
 * The keys are spelled exactly so (a contract across copies of this package), and only this file
 * reads or writes them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { challengeFor, type ChallengeContext } from '../core/refusals/challenge.js'
import { renderableRefusal } from '../core/refusals/refusal-errors.js'
import { AUTH_ERRORS, type AuthErrorReason } from '../core/refusals/reasons.js'
import type { Implication } from '../core/token/scope.js'
import { sendJson } from './connect.js'
import { processShared } from './process-shared.js'

/** Why the strategy refused the request (for the renderers of a Passport `fail`). @internal */
export const FAILURE_REASON: unique symbol = Symbol.for('passport-agentpress-partner.failure')

/** The realm and resource metadata URL of the strategy that ran (for `requireScopes`). @internal */
export const CHALLENGE_CONTEXT: unique symbol = Symbol.for('passport-agentpress-partner.context')

/** The body format `authenticatePartner` was given (so `requireScopes` answers alike). @internal */
export const BODY_FORMAT: unique symbol = Symbol.for('passport-agentpress-partner.body')

/**
 * The scope implication the strategy that authenticated the request was given (`implies`), so
 * `requireScopes` and the MCP scope gate after it honour the same hierarchy. @internal
 */
export const SCOPE_IMPLICATION: unique symbol = Symbol.for('passport-agentpress-partner.implies')

/**
 * Response body of a refusal: `'json'` → `{"error","error_description"}` (`error` is the RFC 6750
 * code, or the reason where there is none: `no_credentials`, `jwks_unavailable`); `'jsonrpc'` →
 * the JSON-RPC error of §4 (`code` -32001, `data.reason`), for MCP clients.
 *
 * @example
 * ```ts
 * const body: ErrorBodyFormat = 'jsonrpc'
 * ```
 */
export type ErrorBodyFormat = 'json' | 'jsonrpc'

/**
 * The route state of a request (the challenge context of the strategy that ran, the body format of
 * `authenticatePartner`), kept beside the request rather than on it. Under Express every request
 * object has a hidden class of its own (it is re-parented onto `app.request`), so every property
 * added to it takes V8's slow path — about 10–15 µs of CPU each, measured paired over HTTP — where
 * a WeakMap entry costs a fraction of a µs. The map is shared by every copy of this package in the
 * process (found on `globalThis` under a `Symbol.for` key, as the request keys above are), and a
 * request carrying the `Symbol.for` properties (set by an older copy) is still read.
 */
interface RouteState {
  context: ChallengeContext | undefined
  format: ErrorBodyFormat | undefined
  /** The strategy's `implies`; the key is there (maybe `undefined`) once this version recorded it. */
  implication?: Implication | undefined
}

const routeStates = processShared(
  'routeStates',
  (found) => found instanceof WeakMap,
  () => new WeakMap<object, RouteState>(),
)

function routeStateOf(req: object): RouteState {
  let state = routeStates.get(req)
  if (state === undefined) {
    state = { context: undefined, format: undefined, implication: undefined }
    routeStates.set(req, state)
  }
  return state
}

/**
 * Records the route state of the strategy deciding `req`, in one map entry: its challenge context
 * and scope implication, and from `authenticatePartner` its body format. @internal
 */
export function recordRoute(
  req: object,
  context: ChallengeContext,
  implication: Implication | undefined,
  format?: ErrorBodyFormat,
): void {
  const state = routeStateOf(req)
  state.context = context
  state.implication = implication
  if (format !== undefined) state.format = format
}

/**
 * The scope implication of the strategy that decided `req`: from its route state, or the request
 * property an older copy of this package set (read only then: a missing property read on an
 * Express request takes V8's slow path). @internal
 */
export function scopeImplicationOf(req: object): Implication | undefined {
  const state = routeStates.get(req)
  if (state !== undefined && 'implication' in state) return state.implication
  return (req as RefusalCarrier)[SCOPE_IMPLICATION]
}

/** The challenge context recorded for `req`, if any. @internal */
export function challengeContextOf(req: object): ChallengeContext | undefined {
  return routeStates.get(req)?.context ?? (req as RefusalCarrier)[CHALLENGE_CONTEXT]
}

/** The body format recorded for `req`, if any. @internal */
export function bodyFormatOf(req: object): ErrorBodyFormat | undefined {
  return routeStates.get(req)?.format ?? (req as RefusalCarrier)[BODY_FORMAT]
}

/** A request with the refusal state of this package. @internal */
export type RefusalCarrier = IncomingMessage & {
  [FAILURE_REASON]?: AuthErrorReason
  [CHALLENGE_CONTEXT]?: ChallengeContext
  [BODY_FORMAT]?: ErrorBodyFormat
  [SCOPE_IMPLICATION]?: Implication
  user?: unknown
  authInfo?: unknown
  auth?: unknown
}

/** JSON-RPC error code of every refusal (implementation-defined server error range). @internal */
export const JSONRPC_AUTH_ERROR_CODE = -32001

/**
 * The body of a refusal: only fixed text, the error code (or, where RFC 6750 has none, the
 * reason) and the description.
 *
 * @internal
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

/** Writes a refusal with the status of its table row. @internal */
export function writeRefusal(
  res: ServerResponse,
  reason: AuthErrorReason,
  headers: Readonly<Record<string, string>> | undefined,
  format: ErrorBodyFormat,
): void {
  sendJson(res, AUTH_ERRORS[reason].status, refusalBody(reason, format), headers)
}

/**
 * Renders `err` when it is one of our refusals; returns `false` to let the caller pass it on.
 *
 * @internal
 */
export function renderRefusal(
  err: unknown,
  req: RefusalCarrier,
  res: ServerResponse,
  format: ErrorBodyFormat,
): boolean {
  if (res.headersSent) return false
  const refusal = renderableRefusal(err)
  if (refusal !== undefined) {
    writeRefusal(res, refusal.reason, refusal.headers, format)
    return true
  }
  // Passport's `failWithError`: it has set the status and every strategy's WWW-Authenticate
  // already; only the reason our strategy recorded tells what to describe.
  const reason = req[FAILURE_REASON]
  if (
    err instanceof Error &&
    err.name === 'AuthenticationError' &&
    reason !== undefined &&
    AUTH_ERRORS[reason].status === res.statusCode
  ) {
    if (!res.hasHeader('WWW-Authenticate')) {
      res.setHeader('WWW-Authenticate', challengeFor(reason, challengeContextOf(req)) ?? 'Bearer')
    }
    writeRefusal(res, reason, undefined, format)
    return true
  }
  return false
}
