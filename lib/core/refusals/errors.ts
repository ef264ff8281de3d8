/**
 * The error classes every adapter throws or renders, built from the table of `reasons.ts`.
 *
 * Every HTTP-facing error carries `status`, `statusCode`, `expose` and ready `headers`, so the
 * default error handler of Express and Connect (`finalhandler`) renders the right status and
 * `WWW-Authenticate` with no custom handler. Descriptions are fixed text: never an internal
 * message, a claim value or a kid. The underlying error, if any, stays in `cause` for logs.
 */
import { challengeFor, type ChallengeContext } from './challenge.js'
import {
  AUTH_ERRORS,
  JWKS_RETRY_AFTER_SECONDS,
  type AuthErrorReason,
  type HttpAuthErrorReason,
  type PartnerTokenErrorReason,
} from './reasons.js'

/** Options of the refusal classes: where the challenge is rendered, and the cause. */
export interface AuthErrorOptions extends ChallengeContext {
  cause?: unknown
  /** For `insufficient_scope`: the scopes the route needs. */
  scope?: string | readonly string[] | undefined
}

/**
 * Base class of every refusal the HTTP layer renders. `status`/`statusCode`, `expose` and
 * `headers` follow the `http-errors` convention that `finalhandler` understands.
 *
 * The stack is reduced to the first line: these are expected outcomes, not bugs, and Express's
 * development-mode error page writes `err.stack` into the response body.
 *
 * @example
 * ```ts
 * import type { IncomingMessage, ServerResponse } from 'node:http'
 *
 * app.use((err: unknown, _req: IncomingMessage, res: ServerResponse, next: (e?: unknown) => void) => {
 *   if (!(err instanceof AgentPressAuthError)) return next(err)
 *   res.writeHead(err.status, err.headers).end(JSON.stringify({ error: err.reason }))
 * })
 * ```
 */
export class AgentPressAuthError extends Error {
  override readonly name: string = 'AgentPressAuthError'
  /** Stable machine-readable reason. */
  readonly reason: AuthErrorReason
  /** HTTP status. */
  readonly status: number
  /** Same as `status`, for handlers that read `statusCode`. */
  readonly statusCode: number
  /** The message is a fixed, public description: safe to expose. */
  readonly expose = true
  /** Response headers: `WWW-Authenticate`, or `Retry-After` for a 503. */
  readonly headers: Readonly<Record<string, string>>

  constructor(reason: AuthErrorReason, options: AuthErrorOptions = {}) {
    const entry = AUTH_ERRORS[reason]
    // Refusals are expected outcomes on a hot path: skip the stack-trace capture (several µs
    // inside async code) that `trimStack` would throw away anyway.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(entry.description, options.cause === undefined ? undefined : { cause: options.cause })
    Error.stackTraceLimit = limit
    this.reason = reason
    this.status = entry.status
    this.statusCode = entry.status
    const challenge = challengeFor(reason, options, options.scope)
    const headers: Record<string, string> =
      challenge === undefined
        ? { 'Retry-After': String(JWKS_RETRY_AFTER_SECONDS) }
        : { 'WWW-Authenticate': challenge }
    this.headers = Object.freeze(headers)
  }

  /** RFC 6750 error code of this refusal, if any. */
  get error(): string | undefined {
    return AUTH_ERRORS[this.reason].error
  }

  /** The fixed description (same as `message`). */
  get description(): string {
    return AUTH_ERRORS[this.reason].description
  }
}

/**
 * Marks an error as an expected outcome: `stack` is kept to its first line (call it after the
 * subclass has fixed `name`), so a development-mode error page never prints library internals.
 *
 * @internal
 */
export function trimStack(error: Error): void {
  error.stack = `${error.name}: ${error.message}`
}

/**
 * A partner token was refused. `reason` is one of the ten stable reasons of §4; the status is
 * always 401 with an `invalid_token` challenge.
 *
 * @example
 * ```ts
 * try {
 *   await verifier.verifyToken(token)
 * } catch (err) {
 *   if (err instanceof PartnerTokenError) console.log(err.reason) // e.g. 'expired'
 * }
 * ```
 */
export class PartnerTokenError extends AgentPressAuthError {
  override readonly name = 'PartnerTokenError'
  declare readonly reason: PartnerTokenErrorReason

  constructor(reason: PartnerTokenErrorReason, options: AuthErrorOptions = {}) {
    super(reason, options)
    trimStack(this)
  }
}

/**
 * Base of the two outage refusals (`jwks_unavailable`, `replay_unavailable`): 503 with
 * `Retry-After` and no challenge; `cause` holds the failure behind it.
 *
 * @internal
 */
export abstract class OutageError extends AgentPressAuthError {
  declare readonly reason: 'jwks_unavailable' | 'replay_unavailable'

  constructor(reason: 'jwks_unavailable' | 'replay_unavailable', options: { cause?: unknown }) {
    super(reason, options)
    // The subclass's `name` field is set only once this constructor returns: the stack header
    // takes the class's own name, which is the same text.
    this.stack = `${new.target.name}: ${this.message}`
  }
}

/**
 * The JWKS could not be fetched and no cached key can answer: an outage, not a bad token.
 * Rendered as 503 with `Retry-After: 5` and no challenge. `cause` holds the fetch failure.
 *
 * @example
 * ```ts
 * const err = new JwksUnavailableError({ cause: new Error('connect ECONNREFUSED') })
 * err.status // 503
 * err.headers // { 'Retry-After': '5' }
 * ```
 */
export class JwksUnavailableError extends OutageError {
  override readonly name = 'JwksUnavailableError'
  declare readonly reason: 'jwks_unavailable'

  constructor(options: { cause?: unknown } = {}) {
    super('jwks_unavailable', options)
  }
}

/**
 * The replay store could not decide (unreachable, timed out, or full): an outage, answered 503 with
 * `Retry-After: 5` and no challenge. `cause` holds the store's failure.
 *
 * @example
 * ```ts
 * const err = new ReplayUnavailableError({ cause: new Error('ECONNREFUSED') })
 * err.status // 503
 * err.headers // { 'Retry-After': '5' }
 * ```
 */
export class ReplayUnavailableError extends OutageError {
  override readonly name = 'ReplayUnavailableError'
  declare readonly reason: 'replay_unavailable'

  constructor(options: { cause?: unknown } = {}) {
    super('replay_unavailable', options)
  }
}

/**
 * A refusal of the HTTP layer that is not a token failure: `invalid_request` (400),
 * `user_not_provisioned` (403), `insufficient_scope` (403) or `no_credentials` (401).
 *
 * @example
 * ```ts
 * const err = new AgentPressHttpError('insufficient_scope', { realm: 'mcp', scope: 'mcp:write' })
 * err.status // 403
 * err.headers['WWW-Authenticate']
 * // 'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope",
 * //  scope="mcp:write"'
 * ```
 */
export class AgentPressHttpError extends AgentPressAuthError {
  override readonly name = 'AgentPressHttpError'
  declare readonly reason: Exclude<HttpAuthErrorReason, 'jwks_unavailable' | 'replay_unavailable'>

  constructor(
    reason: Exclude<HttpAuthErrorReason, 'jwks_unavailable' | 'replay_unavailable'>,
    options: AuthErrorOptions = {},
  ) {
    super(reason, options)
    trimStack(this)
  }
}
