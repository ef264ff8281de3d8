/**
 * The refusal table (§4): every reason → HTTP status, RFC 6750 error code and fixed
 * description. Descriptions are fixed text: never an internal message, a claim value or a kid.
 */

/**
 * The eleven stable reasons a partner token is refused with (§4); `token_replayed` only when
 * replay rejection is enabled (the verifier's `replay` option).
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
  | 'token_replayed'

/**
 * Outcomes of the HTTP layer that are not token failures (§4, second table).
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
  | 'replay_unavailable'

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
 */
export interface AuthErrorEntry {
  /** HTTP status of the response. */
  readonly status: 400 | 401 | 403 | 503
  /** RFC 6750 `error` code in the challenge; `undefined` when the challenge carries none. */
  readonly error:
    'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'user_not_provisioned' | undefined
  /** The fixed `error_description` (also the message of the error object). */
  readonly description: string
  /** `public`: AgentPress's documented name; `ours`: defined by this package (docs/wire-contract.md). */
  readonly origin: 'public' | 'ours'
}

const row = (
  status: AuthErrorEntry['status'],
  error: AuthErrorEntry['error'],
  description: string,
  origin: AuthErrorEntry['origin'],
): AuthErrorEntry => Object.freeze({ status, error, description, origin })

/**
 * The single source of truth for every refusal: change a row here, and only here. The README's table
 * is tested against it; the error classes, the challenge, the body and the action an adapter takes
 * (a 401 is a Passport `fail` with the challenge, anything else an `error`) are all read from it.
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
  token_replayed: row(401, 'invalid_token', 'Token already used', 'ours'),
  no_credentials: row(401, undefined, 'No credentials', 'ours'),
  invalid_request: row(400, 'invalid_request', 'Malformed authorization header', 'ours'),
  user_not_provisioned: row(403, 'user_not_provisioned', 'User not provisioned', 'public'),
  insufficient_scope: row(403, 'insufficient_scope', 'Insufficient scope', 'public'),
  jwks_unavailable: row(503, undefined, 'Signing keys unavailable', 'ours'),
  replay_unavailable: row(503, undefined, 'Replay check unavailable', 'ours'),
})

/**
 * The eleven token reasons, in the order of §4.
 *
 * @internal
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
  'token_replayed',
])

/**
 * `Retry-After` seconds sent with a 503 when the JWKS cannot be reached (§4).
 *
 * @internal
 */
export const JWKS_RETRY_AFTER_SECONDS = 5
