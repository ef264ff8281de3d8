/**
 * `passport-agentpress-partner/mcp/v2`: our verifier inside MCP TypeScript SDK v2
 * (`@modelcontextprotocol/server`, an optional peer dependency needed only by this subpath; the
 * Express glue `@modelcontextprotocol/express` is the application's). It never loads the v1
 * package `@modelcontextprotocol/sdk`, so a project with only v2 installed imports it.
 *
 * v2's `requireBearerAuth` (from `@modelcontextprotocol/express`, or the fetch gate of
 * `@modelcontextprotocol/server`) answers from the error `verifyAccessToken` throws: an
 * `OAuthError` with code `invalid_token` → 401 with `WWW-Authenticate: Bearer
 * error="invalid_token", error_description="…"`; `server_error` → 500 with its description; any
 * other code → 400; anything that is not an `OAuthError` → 500 "Internal Server Error". v2 tests
 * "is an `OAuthError`" by a brand stamped by the constructor, so the error of any copy of v2 (its
 * ESM or its CommonJS build, another install) is recognised: this entry needs no ESM twin.
 *
 * Why a subpath of its own rather than one `/mcp` for both SDKs: v1's `requireBearerAuth` tests
 * `instanceof` against the v1 copy the application loaded, so `/mcp` must import v1 when it loads;
 * an entry that served both would have to guess which SDK a caller uses, or load both. Two
 * entries load exactly the SDK their users chose, and their types name only that SDK.
 */
import type { TokenVerifier } from '../../core/verifier/verifier.js'
import {
  adaptVerifier,
  type PartnerOAuthTokenVerifier,
  type PartnerTokenVerifierAdapterOptions,
  type SdkErrors,
} from '../adapter.js'

export type { PartnerOAuthTokenVerifier, PartnerTokenVerifierAdapterOptions } from '../adapter.js'
export * from '../gate.js'

/** The part of v2's `OAuthError` (`@modelcontextprotocol/server`) this entry uses. */
type OAuthErrorClass = new (code: string, message: string) => Error

// Loaded with require() rather than an import declaration so that the declarations this package
// ships name no v2 type: TypeScript 4.9 – 5.x projects with `moduleResolution: node10` cannot
// resolve v2's exports-only package, and must still compile `/mcp/v2`'s `.d.ts`.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { OAuthError } = require('@modelcontextprotocol/server') as { OAuthError: OAuthErrorClass }

const SDK_ERRORS: SdkErrors = {
  invalidToken: (description) => new OAuthError('invalid_token', description),
  serverError: (description) => new OAuthError('server_error', description),
  oauthError: (code, description) => new OAuthError(code, description),
}

/**
 * Makes our verifiers the `OAuthTokenVerifier` of MCP SDK v2's `requireBearerAuth`:
 *
 * - every token refusal of §4 → `OAuthError('invalid_token', <fixed description>)`: 401,
 *   `WWW-Authenticate: Bearer error="invalid_token", error_description="<description>"`;
 * - an outage — JWKS unreachable with nothing cached, the replay store (a full
 *   `MemoryReplayStore`, Redis down) unable to answer — → `OAuthError('server_error', …)`: v2
 *   answers 500 `{"error":"server_error","error_description":"Signing keys unavailable"}` (or
 *   `"Replay check unavailable"`), never 401 (our own middleware answers 503 + `Retry-After`);
 * - `resolveUser` finds no user → `OAuthError('user_not_provisioned', 'User not provisioned')`:
 *   v2 answers 400 `{"error":"user_not_provisioned",…}` with no challenge (ours: 403);
 * - a valid token → the `AuthInfo` our strategy sets as `req.auth`, which v2 hands to tool
 *   handlers as `ctx.http.authInfo`.
 *
 * @throws {TypeError} at creation, on a missing verifier or an unknown option.
 *
 * @example
 * ```ts
 * import { requireBearerAuth } from '@modelcontextprotocol/express'
 * import { partnerTokenVerifier } from 'passport-agentpress-partner/mcp/v2'
 *
 * const verifier = partnerTokenVerifier(new PartnerTokenVerifier(partnerMcp), {
 *   resolveUser: (claims) => users.findByExternalId(claims.sub),
 * })
 * app.post('/mcp', requireBearerAuth({ verifier, resourceMetadataUrl }), express.json(), mcpHandler)
 * ```
 */
export function partnerTokenVerifier<User = unknown>(
  verifier: TokenVerifier | readonly TokenVerifier[],
  options: PartnerTokenVerifierAdapterOptions<User> = {},
): PartnerOAuthTokenVerifier {
  return adaptVerifier(SDK_ERRORS, verifier, options)
}
