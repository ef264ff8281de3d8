/**
 * The MCP SDK's `AuthInfo` built from verified claims: one builder, so `req.auth` set by the
 * strategy and the `AuthInfo` of the `requireBearerAuth` adapter (`passport-agentpress-partner/mcp`)
 * are the same object shape, field for field.
 */
import type { PartnerTokenClaims } from './core/claims.js'
import type { McpAuthInfo } from './strategy.js'

/**
 * `token` as received, `clientId` = `ext_provider`, the granted `scopes`, `expiresAt` = `exp`,
 * `resource` when the audience the token was verified for is a URL, and `extra` = the claims plus
 * the resolved user (`user` is omitted when no user was resolved).
 *
 * @internal
 */
export function mcpAuthInfo(
  token: string,
  claims: PartnerTokenClaims,
  scopes: readonly string[],
  resource: string | undefined,
  ...user: [] | [unknown]
): McpAuthInfo {
  const auth: McpAuthInfo = {
    token,
    clientId: claims.ext_provider,
    scopes: [...scopes],
    expiresAt: claims.exp,
    extra: user.length === 0 ? { claims } : { claims, user: user[0] },
  }
  if (resource !== undefined) auth.resource = new URL(resource)
  return auth
}
