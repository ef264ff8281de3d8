/**
 * The error model: one table of reasons → HTTP status, RFC 6750 error code and fixed description,
 * and the error classes every adapter throws or renders.
 *
 * Every HTTP-facing error carries `status`, `statusCode`, `expose` and ready `headers`, so the
 * default error handler of Express and Connect (`finalhandler`) renders the right status and
 * `WWW-Authenticate` with no custom handler. Descriptions are fixed text: never an internal
 * message, a claim value or a kid. The underlying error, if any, stays in `cause` for logs.
 */
import { buildChallenge, type ChallengeParams } from './challenge.js'

/**
 * The ten stable reasons a partner token is refused with (SPEC §4).
 *
 * @example
 * ```ts
 * const reason: PartnerTokenErrorReason = 'expired'
 * AUTH_ERRORS[reason].description // 'Token expired'
 * ```
 */
export type PartnerTokenErrorReason =
  | 'malformed'
  | 'alg_not_allowed'
  | 'kid_missing_or_unknown'
  | 'signature_invalid'
  | 'issuer_mismatch'
  | 'audience_mismatch'
  | 'expired'
  | 'not_yet_valid'
  | 'missing_claim'
  | 'ext_provider_mismatch'

/**
 * Outcomes of the HTTP layer that are not token failures (SPEC §4, second table).
 *
 * @example
 * ```ts
 * const reason: HttpAuthErrorReason = 'insufficient_scope'
 * AUTH_ERRORS[reason].status // 403
 * ```
 */
export type HttpAuthErrorReason =
  | 'no_credentials'
  | 'invalid_request'
  | 'user_not_provisioned'
  | 'insufficient_scope'
  | 'jwks_unavailable'

/**
 * Every reason the HTTP layer answers with.
 *
 * @example
 * ```ts
 * function statusOf(reason: AuthErrorReason): number {
 *   return AUTH_ERRORS[reason].status
 * }
 * statusOf('jwks_unavailable') // 503
 * ```
 */
export type AuthErrorReason = PartnerTokenErrorReason | HttpAuthErrorReason

/**
 * One row of {@link AUTH_ERRORS}.
 *
 * @example
 * ```ts
 * const entry: AuthErrorEntry = AUTH_ERRORS.user_not_provisioned
 * // { status: 403, error: 'user_not_provisioned', description: 'User not provisioned',
 * //   origin: 'public' }
 * ```
 */
export interface AuthErrorEntry {
  /** HTTP status of the response. */
  readonly status: 400 | 401 | 403 | 503
  /** RFC 6750 `error` code in the challenge; `undefined` when the challenge carries none. */
  readonly error:
    'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'user_not_provisioned' | undefined
  /** The fixed `error_description` (also the message of the error object). */
  readonly description: string
  /** `public`: AgentPress's documented name; `ours`: defined by this package (SPEC.md). */
  readonly origin: 'public' | 'ours'
}

const row = (
  status: AuthErrorEntry['status'],
  error: AuthErrorEntry['error'],
  description: string,
  origin: AuthErrorEntry['origin'],
): AuthErrorEntry => Object.freeze({ status, error, description, origin })

/**
 * The single source of truth for every refusal: the README's table is tested against it, and the
 * strategy, the middleware and the error classes all read from it.
 *
 * @example
 * ```ts
 * AUTH_ERRORS.expired // { status: 401, error: 'invalid_token', description: 'Token expired', origin: 'public' }
 * ```
 */
export const AUTH_ERRORS: Readonly<Record<AuthErrorReason, AuthErrorEntry>> = Object.freeze({
  malformed: row(401, 'invalid_token', 'Malformed token', 'ours'),
  alg_not_allowed: row(401, 'invalid_token', 'Algorithm not allowed', 'ours'),
  kid_missing_or_unknown: row(401, 'invalid_token', 'Signing key not found', 'public'),
  signature_invalid: row(401, 'invalid_token', 'Signature verification failed', 'public'),
  issuer_mismatch: row(401, 'invalid_token', 'Issuer does not match', 'public'),
  audience_mismatch: row(401, 'invalid_token', 'Audience does not match', 'public'),
  expired: row(401, 'invalid_token', 'Token expired', 'public'),
  not_yet_valid: row(401, 'invalid_token', 'Token not yet valid', 'public'),
  missing_claim: row(401, 'invalid_token', 'Required claim missing or invalid', 'public'),
  ext_provider_mismatch: row(401, 'invalid_token', 'ext_provider does not match', 'public'),
  no_credentials: row(401, undefined, 'No credentials', 'ours'),
  invalid_request: row(400, 'invalid_request', 'Malformed authorization header', 'ours'),
  user_not_provisioned: row(403, 'user_not_provisioned', 'User not provisioned', 'public'),
  insufficient_scope: row(403, 'insufficient_scope', 'Insufficient scope', 'public'),
  jwks_unavailable: row(503, undefined, 'Signing keys unavailable', 'ours'),
})

/**
 * The ten token reasons, in the order of SPEC §4.
 *
 * @example
 * ```ts
 * PARTNER_TOKEN_ERROR_REASONS.length // 10
 * PARTNER_TOKEN_ERROR_REASONS.map((reason) => AUTH_ERRORS[reason].status) // 401, ten times
 * ```
 */
export const PARTNER_TOKEN_ERROR_REASONS: readonly PartnerTokenErrorReason[] = Object.freeze([
  'malformed',
  'alg_not_allowed',
  'kid_missing_or_unknown',
  'signature_invalid',
  'issuer_mismatch',
  'audience_mismatch',
  'expired',
  'not_yet_valid',
  'missing_claim',
  'ext_provider_mismatch',
])

/**
 * `Retry-After` seconds sent with a 503 when the JWKS cannot be reached (SPEC §4).
 *
 * @example
 * ```ts
 * new JwksUnavailableError().headers // { 'Retry-After': '5' }
 * res.setHeader('Retry-After', String(JWKS_RETRY_AFTER_SECONDS))
 * ```
 */
export const JWKS_RETRY_AFTER_SECONDS = 5

/**
 * Where a challenge is rendered: the realm and RFC 9728 metadata URL of the protected resource.
 *
 * @example
 * ```ts
 * const context: ChallengeContext = {
 *   realm: 'mcp',
 *   resourceMetadataUrl: 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
 * }
 * challengeFor('expired', context)
 * // 'Bearer realm="mcp", error="invalid_token", error_description="Token expired",
 * //  resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
 * ```
 */
export interface ChallengeContext {
  realm?: string | undefined
  resourceMetadataUrl?: string | undefined
}

/**
 * Builds the `WWW-Authenticate` value for `reason` from the table and the resource's context.
 *
 * @example
 * ```ts
 * challengeFor('insufficient_scope', { realm: 'mcp' }, ['mcp:write'])
 * // 'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope",
 * //  scope="mcp:write"'
 * challengeFor('no_credentials', { realm: 'mcp' }) // 'Bearer realm="mcp"'
 * challengeFor('jwks_unavailable') // undefined: a 503 carries Retry-After, not a challenge
 * ```
 */
export function challengeFor(
  reason: AuthErrorReason,
  context: ChallengeContext = {},
  scope?: string | readonly string[],
): string | undefined {
  const entry = AUTH_ERRORS[reason]
  if (entry.status === 503) return undefined
  const params: ChallengeParams = {
    realm: context.realm,
    error: entry.error,
    errorDescription: entry.error === undefined ? undefined : entry.description,
    scope: reason === 'insufficient_scope' ? scope : undefined,
    resourceMetadata: context.resourceMetadataUrl,
  }
  return buildChallenge(params)
}

interface AuthErrorOptions extends ChallengeContext {
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

// Keep `stack` to its first line (set after the subclass has fixed `name`).
function trimStack(error: Error): void {
  error.stack = `${error.name}: ${error.message}`
}

/**
 * A partner token was refused. `reason` is one of the ten stable reasons of SPEC §4; the status is
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
export class JwksUnavailableError extends AgentPressAuthError {
  override readonly name = 'JwksUnavailableError'
  declare readonly reason: 'jwks_unavailable'

  constructor(options: { cause?: unknown } = {}) {
    super('jwks_unavailable', options)
    trimStack(this)
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
  declare readonly reason: Exclude<HttpAuthErrorReason, 'jwks_unavailable'>

  constructor(
    reason: Exclude<HttpAuthErrorReason, 'jwks_unavailable'>,
    options: AuthErrorOptions = {},
  ) {
    super(reason, options)
    trimStack(this)
  }
}
