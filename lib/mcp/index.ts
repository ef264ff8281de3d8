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
  type SdkErrors,
} from './adapter.js'

export type { PartnerOAuthTokenVerifier, PartnerTokenVerifierAdapterOptions } from './adapter.js'
export * from './gate.js'

/**
 * Makes our verifiers an `OAuthTokenVerifier` for the MCP SDK's `requireBearerAuth`:
 *
 * - every token refusal of §4 → the SDK's `InvalidTokenError` with our fixed description:
 *   401, `WWW-Authenticate: Bearer error="invalid_token", error_description="<description>"`;
 * - an outage — the JWKS unreachable with nothing cached, the replay store (a full
 *   `MemoryReplayStore`, Redis down) unable to answer — → the SDK's `ServerError`: the SDK answers
 *   500 `{"error":"server_error","error_description":"Signing keys unavailable"}` (or `"Replay
 *   check unavailable"`) with no `Retry-After`, never 401 (our middleware answers 503 +
 *   `Retry-After`);
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
  return adaptVerifier(SDK_ERRORS, verifier, options) as OAuthTokenVerifier
}

// The classes of the SDK copy this module's own import loads: the CommonJS build, since dist/ is
// CommonJS. The ESM entry binds the ESM build's classes instead (scripts/build.mjs).
const SDK_ERRORS: SdkErrors = {
  invalidToken: (description) => new InvalidTokenError(description),
  serverError: (description) => new ServerError(description),
  oauthError: (code, description) => new CustomOAuthError(code, description),
}
