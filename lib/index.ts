/**
 * passport-agentpress-partner: verify AgentPress partner-MCP tokens in Express/Connect apps.
 *
 * The core (token verifier, JWKS cache, errors, challenge builder, key-rotation webhook) is
 * framework-free; the Passport strategy, middleware and routers are thin adapters over it.
 *
 * @packageDocumentation
 */
export { buildChallenge, type ChallengeParams } from './core/challenge.js'
export {
  AUTH_ERRORS,
  AgentPressAuthError,
  AgentPressHttpError,
  JWKS_RETRY_AFTER_SECONDS,
  JwksFetchError,
  JwksUnavailableError,
  PARTNER_TOKEN_ERROR_REASONS,
  PartnerTokenError,
  challengeFor,
  type AuthErrorEntry,
  type AuthErrorReason,
  type ChallengeContext,
  type HttpAuthErrorReason,
  type JwksFetchErrorReason,
  type PartnerTokenErrorReason,
} from './core/errors.js'
export { parseScope } from './core/claims.js'
export { agentPressIssuer, type AgentPressEnvironment } from './core/issuer.js'
export { readUnverifiedIssuer, MAX_TOKEN_LENGTH } from './core/token.js'
export { PartnerTokenVerifier } from './core/verifier.js'
export type {
  KeyRotationEvent,
  PartnerTokenClaims,
  PartnerTokenVerifierOptions,
  TokenVerifier,
} from './core/types.js'
