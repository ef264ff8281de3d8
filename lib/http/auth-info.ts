/**
 * What a successful request carries: `req.authInfo` (Passport's) and `req.auth` (the MCP SDK's).
 */
import type { PartnerTokenClaims } from '../core/token/claims.js'

/**
 * What `req.authInfo` holds after a success: the verified claims, the granted scopes, the issuer
 * that vouched for them, and whatever object the `verify` callback passed as `info` (our fields win).
 *
 * @example
 * ```ts
 * const { claims, scopes, issuer } = req.authInfo as AgentPressAuthInfo
 * ```
 */
export interface AgentPressAuthInfo {
  /** The verified claims. */
  readonly claims: PartnerTokenClaims
  /** The granted scopes (`scope` claim split on spaces). */
  readonly scopes: string[]
  /** The `iss` of the token. */
  readonly issuer: string
  readonly [key: string]: unknown
}

/**
 * The MCP TypeScript SDK's `AuthInfo` shape (`@modelcontextprotocol/sdk/server/auth/types.js`),
 * set as `req.auth` so the SDK's transports hand it to tool handlers as `extra.authInfo`.
 *
 * `clientId` is the `ext_provider` claim: the name of the integration AgentPress calls us as, the
 * analogue of an OAuth client registration. The end user is `sub` (in `extra.claims`) and the
 * resolved local user is `extra.user`; a user id never goes into `clientId`.
 *
 * @example
 * ```ts
 * server.tool('whoami', async (_args, extra) => ({
 *   content: [{ type: 'text', text: String((extra.authInfo as McpAuthInfo).extra?.claims) }],
 * }))
 * ```
 */
export interface McpAuthInfo {
  /** The bearer token as received. */
  token: string
  /** The `ext_provider` claim. */
  clientId: string
  /** The granted scopes. */
  scopes: string[]
  /** `exp`, in seconds since the epoch. */
  expiresAt?: number
  /** The audience this token was verified for, when it is a URL. */
  resource?: URL
  /** `claims`: the verified claims; `user`: what `verify` resolved. */
  extra?: Record<string, unknown>
}

/** `req.authInfo` of a success: ours, over the `info` object the callback gave. @internal */
export function authInfoOf(
  claims: PartnerTokenClaims,
  scopes: string[],
  info: unknown,
): AgentPressAuthInfo {
  return info !== null && typeof info === 'object' && !Array.isArray(info)
    ? { ...info, claims, scopes, issuer: claims.iss }
    : { claims, scopes, issuer: claims.iss }
}

/** `req.auth` of a success, in the MCP SDK's shape. @internal */
export function mcpAuthInfoOf(
  token: string,
  claims: PartnerTokenClaims,
  scopes: string[],
  user: unknown,
  resource: URL | undefined,
): McpAuthInfo {
  const auth: McpAuthInfo = {
    token,
    clientId: claims.ext_provider,
    scopes: scopes.slice(),
    expiresAt: claims.exp,
    extra: { claims, user },
  }
  if (resource !== undefined) auth.resource = resource
  return auth
}
