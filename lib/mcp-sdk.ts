/**
 * `passport-agentpress-partner/mcp`: our verifier inside the official MCP TypeScript SDK
 * (`@modelcontextprotocol/sdk`, an optional peer dependency needed only by this subpath).
 *
 * The SDK's `requireBearerAuth({ verifier })` decides the HTTP answer from the class of the error
 * `verifyAccessToken` throws (its `server/auth/middleware/bearerAuth.js`): `InvalidTokenError` →
 * 401 with `error="invalid_token"`, `InsufficientScopeError` → 403, `ServerError` → 500, any
 * other `OAuthError` → 400, anything else → 500 "Internal Server Error". Our `PartnerTokenError`
 * is none of its classes, so unwrapped every bad token became a 500; the adapter translates.
 */
import {
  CustomOAuthError,
  InvalidTokenError,
  ServerError,
} from '@modelcontextprotocol/sdk/server/auth/errors.js'
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'

import type { PartnerTokenClaims } from './core/claims.js'
import { verifierRefusal } from './core/errors.js'
import { MultiIssuerVerifier } from './core/multi-issuer-verifier.js'
import { AUTH_ERRORS } from './core/reasons.js'
import { parseScope } from './core/scope.js'
import { optionalFunction, optionsObject, rejectUnknownKeys } from './core/validate.js'
import type { TokenVerifier } from './core/verifier.js'
import { authInfoOf } from './http/auth-info.js'
import type { GrantedScopes, ToolScopeGate } from './mcp-tool-scopes.js'
import { resourceResolver } from './strategy-options.js'

/**
 * Options of {@link partnerTokenVerifier}.
 *
 * @example
 * ```ts
 * const options: PartnerTokenVerifierAdapterOptions<User> = {
 *   resolveUser: (claims) => users.findByExternalId(claims.ext_provider, claims.sub),
 * }
 * ```
 */
export interface PartnerTokenVerifierAdapterOptions<User = unknown> {
  /**
   * Resolves verified claims to a local user, like the strategy's `verify` callback: the user
   * goes to `authInfo.extra.user`; `false`, `null` or `undefined` refuses the request
   * (`user_not_provisioned`); a throw or rejection is a server error. Without it no user is
   * resolved and `extra.user` is `undefined`.
   */
  resolveUser?:
    | ((
        claims: PartnerTokenClaims,
      ) => User | false | null | undefined | PromiseLike<User | false | null | undefined>)
    | undefined
}

const KNOWN = new Set(['resolveUser'])

/**
 * Makes our verifiers an `OAuthTokenVerifier` for the MCP SDK's `requireBearerAuth`:
 *
 * - every token refusal of SPEC §4 → the SDK's `InvalidTokenError` with our fixed description:
 *   401, `WWW-Authenticate: Bearer error="invalid_token", error_description="<description>"`;
 * - JWKS unreachable with nothing cached → the SDK's `ServerError`: the SDK answers 500
 *   `{"error":"server_error",…}` with no `Retry-After` (our middleware answers 503 +
 *   `Retry-After: 5`);
 * - `resolveUser` finds no user → an OAuth error `user_not_provisioned`: the SDK answers 400
 *   `{"error":"user_not_provisioned",…}` with no challenge (our middleware: 403 with one);
 * - a valid token → the same `AuthInfo` the strategy sets as `req.auth`.
 *
 * @throws {TypeError} at creation, on a missing verifier or an unknown option.
 *
 * @example
 * ```ts
 * import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js'
 * import { partnerTokenVerifier } from 'passport-agentpress-partner/mcp'
 *
 * const verifier = partnerTokenVerifier(new PartnerTokenVerifier(partnerMcp), {
 *   resolveUser: (claims) => users.findByExternalId(claims.sub),
 * })
 * app.post('/mcp', requireBearerAuth({ verifier, resourceMetadataUrl }), mcpHandler)
 * ```
 */
export function partnerTokenVerifier<User = unknown>(
  verifier: TokenVerifier | readonly TokenVerifier[],
  options: PartnerTokenVerifierAdapterOptions<User> = {},
): OAuthTokenVerifier {
  const list: readonly TokenVerifier[] = Array.isArray(verifier) ? verifier : [verifier]
  if (list.length === 0 || !list.every((v) => typeof v?.verifyToken === 'function')) {
    throw new TypeError(
      'partnerTokenVerifier() needs a verifier with a verifyToken(token) method, or a non-empty array of them',
    )
  }
  optionsObject(options, 'partnerTokenVerifier() options must be an object')
  rejectUnknownKeys(options, KNOWN, 'partnerTokenVerifier')
  const resolveUser = optionalFunction(
    options.resolveUser,
    'partnerTokenVerifier() options.resolveUser must be a function',
  )
  const one = list.length === 1 ? list[0]! : new MultiIssuerVerifier(list)
  const resourceOf = resourceResolver(one, list)

  return {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      let claims: PartnerTokenClaims
      try {
        claims = await one.verifyToken(token)
      } catch (err) {
        throw translated(err)
      }
      const scopes = parseScope(typeof claims.scope === 'string' ? claims.scope : '')
      const user = resolveUser === undefined ? undefined : await resolveUser(claims)
      if (resolveUser !== undefined && (user === false || user === null || user === undefined)) {
        const entry = AUTH_ERRORS.user_not_provisioned
        throw new CustomOAuthError(entry.error!, entry.description)
      }
      return authInfoOf(token, claims, scopes, user, undefined, resourceOf(claims)).auth
    },
  }
}

// Our refusal (from this copy of the package or another) as the SDK error class that gives the
// right answer; anything else unchanged (the SDK answers it 500 without its message).
function translated(err: unknown): unknown {
  const reason = verifierRefusal(err)
  if (reason === undefined) return err
  const { description } = AUTH_ERRORS[reason]
  return reason === 'jwks_unavailable'
    ? new ServerError(description)
    : new InvalidTokenError(description)
}

/**
 * Makes `tools/list` of one `McpServer` list only the tools `granted` may call under `gate`'s
 * table (MCP 2026-07-28 lets the list vary by authorization). Call it on a fresh server, before
 * registering tools: from then on each `server.registerTool(…)` of a tool the token may not call
 * registers it disabled — the SDK leaves disabled tools out of `tools/list` and refuses to run
 * them. Tools outside the table stay listed, as the gate lets their calls through. Meant for one
 * server per request (stateless Streamable HTTP), where `granted` is that request's `req.auth`.
 *
 * @example
 * ```ts
 * const tools = requireToolScopes({ list_notes: ['mcp:read'], add_note: ['mcp:write'] })
 * app.post('/mcp', authenticatePartner(passport), express.json(), tools, async (req, res) => {
 *   const server = limitToolsToScopes(new McpServer({ name: 'notes', version: '1.0.0' }), tools, req.auth)
 *   server.registerTool('list_notes', { description: 'List notes' }, listNotes)
 *   server.registerTool('add_note', { description: 'Add a note', inputSchema }, addNote)
 *   // … connect a StreamableHTTPServerTransport and handle the request
 * })
 * ```
 */
export function limitToolsToScopes<S extends McpServer>(
  server: S,
  gate: ToolScopeGate,
  granted: GrantedScopes,
): S {
  if (typeof gate?.allows !== 'function') {
    throw new TypeError('limitToolsToScopes() needs the gate returned by requireToolScopes()')
  }
  const register = server.registerTool.bind(server) as (...args: unknown[]) => RegisteredTool
  const limited = (name: unknown, ...rest: unknown[]): RegisteredTool => {
    const tool = register(name, ...rest)
    if (typeof name === 'string' && !gate.allows(name, granted)) tool.disable()
    return tool
  }
  server.registerTool = limited as unknown as S['registerTool']
  return server
}

type RegisteredTool = ReturnType<McpServer['registerTool']>
