/**
 * The RFC 6750 §3 `WWW-Authenticate: Bearer …` challenge builder.
 *
 * Header values are built only from fixed vocabulary and configuration, never from request data;
 * even so every quoted value is filtered to the characters RFC 6750 §3 allows inside a
 * quoted-string (%x20-21 / %x23-5B / %x5D-7E), so no `"`, `\`, CR, LF, NUL or non-ASCII byte can
 * ever reach `setHeader` (Node throws on CR/LF there, which from async code kills the process).
 */
import { AUTH_ERRORS, type AuthErrorReason } from './reasons.js'

/**
 * The auth-params of a Bearer challenge, in the order they are emitted.
 *
 * @example
 * ```ts
 * const params: ChallengeParams = {
 *   realm: 'mcp',
 *   error: 'insufficient_scope',
 *   errorDescription: 'Insufficient scope',
 *   scope: ['mcp:read', 'mcp:write'],
 * }
 * buildChallenge(params)
 * // 'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope",
 * //  scope="mcp:read mcp:write"'
 * ```
 */
export interface ChallengeParams {
  /** `realm="…"` (RFC 6750 §3). */
  realm?: string | undefined
  /** `error="…"`: `invalid_request`, `invalid_token`, `insufficient_scope`, or an extension code. */
  error?: string | undefined
  /** `error_description="…"`: always one of the fixed descriptions of the error table. */
  errorDescription?: string | undefined
  /** `scope="…"`: the scopes the resource needs; an array is joined with single spaces. */
  scope?: string | readonly string[] | undefined
  /** `resource_metadata="…"` (RFC 9728 §5.1): the Protected Resource Metadata URL. */
  resourceMetadata?: string | undefined
}

// RFC 6750 §3: error, error_description and scope values "MUST NOT include characters outside the
// set %x20-21 / %x23-5B / %x5D-7E". We apply the same set to realm and resource_metadata.
const DISALLOWED = /[^\x20\x21\x23-\x5B\x5D-\x7E]/g

/**
 * Whether `value` can be emitted in a quoted challenge parameter unchanged.
 *
 *
 * @internal
 */
export function isChallengeSafe(value: string): boolean {
  DISALLOWED.lastIndex = 0
  return !DISALLOWED.test(value)
}

function quoted(name: string, value: string): string {
  return `${name}="${value.replace(DISALLOWED, '')}"`
}

/**
 * Builds a `WWW-Authenticate` value for the Bearer scheme.
 *
 * Characters RFC 6750 does not allow in a quoted value are dropped, so the result is always a
 * valid header value whatever it is given. Parameters that are `undefined` or empty are omitted;
 * with none at all the result is the bare `Bearer` challenge.
 *
 * @example
 * ```ts
 * buildChallenge({ realm: 'mcp', error: 'invalid_token', errorDescription: 'Token expired' })
 * // 'Bearer realm="mcp", error="invalid_token", error_description="Token expired"'
 * ```
 */
export function buildChallenge(params: ChallengeParams = {}): string {
  const parts: string[] = []
  if (params.realm) parts.push(quoted('realm', params.realm))
  if (params.error) parts.push(quoted('error', params.error))
  if (params.errorDescription) parts.push(quoted('error_description', params.errorDescription))
  const scope = typeof params.scope === 'string' ? params.scope : params.scope?.join(' ')
  if (scope) parts.push(quoted('scope', scope))
  if (params.resourceMetadata) parts.push(quoted('resource_metadata', params.resourceMetadata))
  return parts.length === 0 ? 'Bearer' : `Bearer ${parts.join(', ')}`
}

/**
 * Where a challenge is rendered: the realm and RFC 9728 metadata URL of the protected resource.
 */
export interface ChallengeContext {
  realm?: string | undefined
  resourceMetadataUrl?: string | undefined
  /** The scopes the resource needs: named in its 401 and `insufficient_scope` challenges. */
  scope?: string | readonly string[] | undefined
}

/**
 * Builds the `WWW-Authenticate` value for `reason` from the table and the resource's context.
 *
 * @internal
 */
export function challengeFor(
  reason: AuthErrorReason,
  context: ChallengeContext = {},
  scope: string | readonly string[] | undefined = context.scope,
): string | undefined {
  const entry = AUTH_ERRORS[reason]
  if (entry.status === 503) return undefined
  const params: ChallengeParams = {
    realm: context.realm,
    error: entry.error,
    errorDescription: entry.error === undefined ? undefined : entry.description,
    // MCP 2025-11-25 (Scope challenge handling): a 401 SHOULD name the scopes the resource needs,
    // so a client can ask for them; a 403 insufficient_scope names what the request lacked.
    scope: reason === 'insufficient_scope' || entry.status === 401 ? scope : undefined,
    resourceMetadata: context.resourceMetadataUrl,
  }
  return buildChallenge(params)
}
