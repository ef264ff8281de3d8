/**
 * `passport-agentpress-partner/mcp`: our verifier inside the official MCP TypeScript SDK
 * (`@modelcontextprotocol/sdk`, an optional peer dependency needed only by this subpath).
 *
 * The SDK's `requireBearerAuth({ verifier })` decides the HTTP answer from the class of the error
 * `verifyAccessToken` throws (its `server/auth/middleware/bearerAuth.js`): `InvalidTokenError` →
 * 401 with `error="invalid_token"`, `InsufficientScopeError` → 403, `ServerError` → 500, any
 * other `OAuthError` → 400, anything else → 500 "Internal Server Error". Our `PartnerTokenError`
 * is none of its classes, so unwrapped every bad token became a 500; the adapter translates.
 *
 * The SDK ships an ESM and a CommonJS build with distinct error classes, and `requireBearerAuth`
 * tests `instanceof` against its own: this CommonJS module binds the adapter to the SDK's CommonJS
 * classes, and the ESM entry (written by scripts/build.mjs) binds the same code to the ESM ones,
 * so each user gets the classes of the SDK copy their own `import` or `require` loaded.
 */
import {
  CustomOAuthError,
  InvalidTokenError,
  ServerError,
} from '@modelcontextprotocol/sdk/server/auth/errors.js'
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js'

import type { TokenVerifier } from '../core/verifier/verifier.js'
import {
  adaptVerifier,
  type PartnerTokenVerifierAdapterOptions,
  type SdkErrorClasses,
} from './adapter.js'
import type { GrantedScopes, ToolScopeGate } from './tool-scopes.js'

export type { PartnerTokenVerifierAdapterOptions } from './adapter.js'
export {
  requireToolScopes,
  type GrantedScopes,
  type ToolScopeGate,
  type ToolScopes,
} from './tool-scopes.js'

/**
 * Makes our verifiers an `OAuthTokenVerifier` for the MCP SDK's `requireBearerAuth`:
 *
 * - every token refusal of §4 → the SDK's `InvalidTokenError` with our fixed description:
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
  return adaptVerifier(SDK_ERRORS, verifier, options)
}

// The classes of the SDK copy this module's own import loads: the CommonJS build, since dist/ is
// CommonJS. The ESM entry binds the ESM build's classes instead (scripts/build.mjs).
const SDK_ERRORS: SdkErrorClasses = { CustomOAuthError, InvalidTokenError, ServerError }

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
export function limitToolsToScopes<S extends ToolRegistry>(
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

/**
 * The part of the SDK's `McpServer` {@link limitToolsToScopes} uses. Structural on purpose: the SDK
 * ships separate ESM and CommonJS declarations of `McpServer`, whose private members make them
 * different types, and either must be accepted.
 *
 * @example
 * ```ts
 * const registry: ToolRegistry = new McpServer({ name: 'notes', version: '1.0.0' })
 * ```
 */
export interface ToolRegistry {
  registerTool(name: string, ...rest: never[]): RegisteredTool
}

interface RegisteredTool {
  disable(): void
}
