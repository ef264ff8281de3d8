/**
 * The refusal a request carries, and its rendering as a JSON or JSON-RPC body.
 *
 * A Passport `fail` reaches an error handler only as a bare `AuthenticationError`, and
 * `requireScopes` runs after the strategy in another middleware: what they need to know travels
 * with the request — the route state (see `RouteState`) on the objects an acceptance hangs on it,
 * or beside a refused one in a WeakMap shared by every copy of this package, the rest under
 * `Symbol.for` keys only set when needed (a refusal, `implies`).
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
 * The route state of a strategy's decision (its challenge context and scope implication, and from
 * `authenticatePartner` its body format): built once per route, never per request. It travels
 * with an accepted request on the objects we hang on it (`req.authInfo`, `req.auth`, as a private
 * field: see {@link markGranted}) and with a refused one in a WeakMap beside the request. Neither
 * goes on the request itself: under Express every request object has a hidden class of its own
 * (it is re-parented onto `app.request`), so every property added to it takes V8's slow path —
 * about 10–15 µs of CPU each, measured paired over HTTP. The map and the field's class are shared
 * by every copy of this package in the process (found on `globalThis`), and a request carrying the
 * `Symbol.for` properties an older copy set is still read.
 *
 * @internal
 */
export interface RouteState {
  readonly context: ChallengeContext | undefined
  readonly format: ErrorBodyFormat | undefined
  /** The strategy's `implies`; the key is there (maybe `undefined`) in every state this version built. */
  readonly implication?: Implication | undefined
}

/** The route state of one route, frozen (built at construction). @internal */
export function routeState(
  context: ChallengeContext | undefined,
  implication: Implication | undefined,
  format?: ErrorBodyFormat,
): RouteState {
  return Object.freeze({ context, format, implication })
}

const routeStates = processShared(
  'routeStates',
  (found) => found instanceof WeakMap,
  () => new WeakMap<object, RouteState>(),
)

/** Records the route state of the strategy that refused `req` (for the renderers after it). @internal */
export function recordRoute(req: object, route: RouteState): void {
  routeStates.set(req, route)
}

/** Puts a route state on an object built elsewhere, and reads it back. */
interface RouteStamp {
  readonly mark: (holder: object, route: RouteState) => void
  readonly read: (holder: object) => RouteState | undefined
}

// The route state as a private field added to an object built elsewhere: the base constructor
// returns the object it is given, so the derived constructor adds its field to that object. A
// private field is no property: JSON, spread, Object.getOwnPropertySymbols, `deepStrictEqual` and
// chai's deep equality see the object as before, and the prototype is unchanged. Adding it is an
// inline-cached store; the `Object.defineProperty` of a non-enumerable key it replaces is a
// runtime call, and the two of them cost +8.1 µs [+3.2, +23.2] per request over HTTP (paired, 16
// rounds; the private field −5.6 [−11.2, +5.2], nothing measurable; bench/RESULTS.md).
function createRouteStamp(): RouteStamp {
  class Holder {
    constructor(holder: object) {
      return holder as Holder
    }
  }
  class Stamped extends Holder {
    #route: RouteState
    constructor(holder: object, route: RouteState) {
      super(holder)
      this.#route = route
    }
    static mark(holder: object, route: RouteState): void {
      if (!(#route in holder)) new Stamped(holder, route)
    }
    static read(holder: object): RouteState | undefined {
      return #route in holder ? (holder as Stamped).#route : undefined
    }
  }
  return Object.freeze({ mark: Stamped.mark, read: Stamped.read })
}

const routeStamp = processShared(
  'routeStamp',
  (found): found is RouteStamp =>
    typeof (found as RouteStamp | undefined)?.mark === 'function' &&
    typeof (found as RouteStamp | undefined)?.read === 'function',
  createRouteStamp,
)

/**
 * Marks an object this package built for an accepted request (`authInfo`, `auth`) with the route
 * state of the strategy that accepted it, for `requireScopes` and the MCP tool gate after it. An
 * object already marked keeps its state.
 *
 * @internal
 */
export function markGranted<T extends object>(holder: T, route: RouteState): T {
  routeStamp.mark(holder, route)
  return holder
}

/** The route state {@link markGranted} put on `holder`, if any. */
function routeIn(holder: unknown): RouteState | undefined {
  if (holder === null || typeof holder !== 'object') return undefined
  return routeStamp.read(holder)
}

/**
 * The route state of the strategy that accepted `req`, for the checks after it: on its
 * `authInfo` (given: the caller has read it already), else on `req.auth` (Passport's
 * `authInfo: false`), else the one recorded for the request. @internal
 */
function grantedRouteOf(req: RefusalCarrier, authInfo: unknown): RouteState | undefined {
  return routeIn(authInfo) ?? routeIn(req.auth) ?? routeStates.get(req)
}

/**
 * The scope implication of the strategy that accepted `req`: from its route state, or the request
 * property an older copy of this package set (read only then: a missing property read on an
 * Express request takes V8's slow path). @internal
 */
export function scopeImplicationOf(
  req: RefusalCarrier,
  authInfo: unknown = req.authInfo,
): Implication | undefined {
  const route = grantedRouteOf(req, authInfo)
  if (route !== undefined && 'implication' in route) return route.implication
  return req[SCOPE_IMPLICATION]
}

/**
 * The challenge context of the strategy that decided `req`: the one that refused it, else the one
 * that accepted it, else what an older copy set on the request. @internal
 */
export function challengeContextOf(req: object): ChallengeContext | undefined {
  const request = req as RefusalCarrier
  return (
    (routeStates.get(req) ?? grantedRouteOf(request, request.authInfo))?.context ??
    request[CHALLENGE_CONTEXT]
  )
}

/**
 * The challenge context and body format for a refusal after the strategy accepted `req`
 * (`requireScopes`, the MCP tool gate): the accepting strategy's, else as
 * {@link challengeContextOf}. @internal
 */
export function grantedRefusalRoute(
  req: RefusalCarrier,
  authInfo: unknown,
): { context: ChallengeContext | undefined; format: ErrorBodyFormat | undefined } {
  const route = grantedRouteOf(req, authInfo)
  return {
    context: route?.context ?? req[CHALLENGE_CONTEXT],
    format: route?.format ?? req[BODY_FORMAT],
  }
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
