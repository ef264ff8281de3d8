/**
 * The ESM entry of `passport-agentpress-partner/mcp` (built to dist/mcp/index.mjs by
 * scripts/build.mjs): every export of the CommonJS entry (./index.ts) as the very same object,
 * except `partnerTokenVerifier`, bound here to the MCP SDK's ESM error classes.
 *
 * Why: the SDK ships distinct ESM and CommonJS copies of its error classes, and its
 * `requireBearerAuth` tests `instanceof` against the copy the application loaded; an ESM
 * application loads the ESM one, so the adapter it imports must throw those.
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

export { limitToScopes, limitToolsToScopes, requireMcpScopes, requireToolScopes } from './index.js'

const errors: SdkErrors = {
  invalidToken: (description) => new InvalidTokenError(description),
  serverError: (description) => new ServerError(description),
  oauthError: (code, description) => new CustomOAuthError(code, description),
}

/** The adapter of ./index.js, throwing the SDK's ESM error classes. */
export function partnerTokenVerifier<User = unknown>(
  verifier: TokenVerifier | readonly TokenVerifier[],
  options: PartnerTokenVerifierAdapterOptions<User> = {},
): OAuthTokenVerifier {
  return adaptVerifier(errors, verifier, options) as OAuthTokenVerifier
}
