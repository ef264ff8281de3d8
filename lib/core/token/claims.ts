/**
 * The claim rules of §2, applied after the signature has verified. Everything is required and
 * typed exactly: jose alone would accept a missing `exp`, `exp: 1e400` (Infinity) and an `iat` far
 * in the future (ATTACKS.md), so none of that is delegated.
 */
import { PartnerTokenError } from '../refusals/errors.js'
import { SCOPE_CLAIM } from './scope.js'

/**
 * The verified claims of a partner token (§2). Unknown extra claims are kept as they were.
 *
 * @example
 * ```ts
 * const claims: PartnerTokenClaims = await verifier.verifyToken(token)
 * const user = await users.findByExternalId(claims.sub)
 * const scopes = parseScope(claims.scope) // e.g. ['mcp:read', 'mcp:write']
 * ```
 */
export interface PartnerTokenClaims {
  /** Issuer: exactly the configured issuer. */
  readonly iss: string
  /** The external user id; the partner resolves it to a local user. */
  readonly sub: string
  /** Audience: the MCP server's URL (a string, or an array containing it). */
  readonly aud: string | readonly string[]
  /** The partner's name, equal to `expectedExtProvider`. */
  readonly ext_provider: string
  /** Unique token id. */
  readonly jti: string
  /** Space-separated granted scopes (RFC 8693 §4.2). */
  readonly scope: string
  /** Issued at (NumericDate, seconds). */
  readonly iat: number
  /** Expiry (NumericDate, seconds). */
  readonly exp: number
  /** Not before (NumericDate, seconds), when present. */
  readonly nbf?: number
  /**
   * The AgentPress organisation the user acts for, when AgentPress sends it: useful on first
   * contact (which tenant to provision the user into). Not checked by the verifier: a claim of
   * the signed token, as AgentPress set it.
   */
  readonly org_id?: string
  readonly [claim: string]: unknown
}

/** What the claims are checked against. @internal */
export interface ClaimExpectations {
  readonly audience: string
  readonly expectedExtProvider: string
  readonly clockToleranceSec: number
  readonly maxTokenLifetimeSec: number
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

function isAudience(value: unknown): boolean {
  if (isNonEmptyString(value)) return true
  return Array.isArray(value) && value.length > 0 && value.every(isNonEmptyString)
}

const missing = (): PartnerTokenError => new PartnerTokenError('missing_claim')

/**
 * Checks every claim except `iss` (matched before the key lookup) and returns the payload as typed
 * claims. Order: shapes (`missing_claim`) → `aud` → `ext_provider` → `exp` → `iat` → `nbf` →
 * lifetime, so each refusal has one well-defined reason.
 *
 * @internal
 */
export function checkClaims(
  payload: Readonly<Record<string, unknown>>,
  expect: ClaimExpectations,
  nowSec: number,
): PartnerTokenClaims {
  const { aud, ext_provider: extProvider, sub, jti, scope, iat, exp, nbf } = payload
  if (
    !isAudience(aud) ||
    !isNonEmptyString(extProvider) ||
    !isNonEmptyString(sub) ||
    !isNonEmptyString(jti) ||
    typeof scope !== 'string' ||
    !SCOPE_CLAIM.test(scope) ||
    !isNumericDate(iat) ||
    !isNumericDate(exp) ||
    (nbf !== undefined && !isNumericDate(nbf))
  ) {
    throw missing()
  }
  if (
    typeof aud === 'string' ? aud !== expect.audience : !(aud as string[]).includes(expect.audience)
  ) {
    throw new PartnerTokenError('audience_mismatch')
  }
  if (extProvider !== expect.expectedExtProvider)
    throw new PartnerTokenError('ext_provider_mismatch')

  const tolerance = expect.clockToleranceSec
  // RFC 7519 §4.1.4: the token must not be accepted on or after exp (plus the allowed skew).
  if (exp <= nowSec - tolerance) throw new PartnerTokenError('expired')
  if (iat > nowSec + tolerance) throw new PartnerTokenError('not_yet_valid')
  if (nbf !== undefined && nbf > nowSec + tolerance) throw new PartnerTokenError('not_yet_valid')
  // A token living longer than allowed is not one AgentPress mints (§2: ten times the TTL).
  // A zero or negative lifetime is not refused here: the wire contract does not, and `exp`/`iat` above already
  // bound such a token to the clock tolerance.
  if (exp - iat > expect.maxTokenLifetimeSec) throw missing()

  return payload as PartnerTokenClaims
}
