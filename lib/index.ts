/**
 * passport-agentpress-partner: verify AgentPress partner-MCP tokens in Express/Connect apps.
 *
 * One way per job: `passport.authenticate('agentpress-partner', …)` with
 * {@link AgentPressPartnerStrategy} in Passport apps; {@link authenticatePartner} without Passport;
 * {@link requireScopes} for a route's scopes (the MCP scope gate is in `./mcp`);
 * {@link provisionOnce} for first contact;
 * {@link createKeyRotationRouter} for the webhook; {@link PartnerTokenVerifier} for everything
 * else. Diagnostics channels and readiness are in `./diagnostics`, the test kit in `./testing`.
 *
 * @packageDocumentation
 */
// Registers the opt-in libsodium Ed25519 backend's loader (`ed25519: 'libsodium'`); `sodium-native`
// itself is loaded only when a verifier asks for it.
import './libsodium/backend.js'

// Verify
export { PartnerTokenVerifier, type TokenVerifier } from './core/verifier/verifier.js'
export type { PartnerTokenVerifierOptions } from './core/verifier/options.js'
export { MultiIssuerVerifier } from './core/verifier/multi-issuer-verifier.js'
export { agentPressIssuer } from './core/verifier/agentpress-issuer.js'
export type { PartnerTokenClaims } from './core/token/claims.js'
export type { ScopeImplication } from './core/token/scope.js'
export { MemoryReplayStore, type ReplayStore } from './core/verifier/replay.js'

// Refusals and errors
export {
  AUTH_ERRORS,
  type AuthErrorReason,
  type PartnerTokenErrorReason,
} from './core/refusals/reasons.js'
export {
  AgentPressAuthError,
  AgentPressHttpError,
  JwksUnavailableError,
  PartnerTokenError,
  ReplayUnavailableError,
} from './core/refusals/errors.js'
export { JwksFetchError, type JwksFetchErrorReason } from './core/jwks/fetch.js'
export { refusalOf } from './http/refusal-of.js'

// Passport
export {
  AgentPressPartnerStrategy,
  type AgentPressAuthInfo,
  type AgentPressPartnerStrategyOptions,
  type AgentPressTypes,
  type McpAuthInfo,
  type VerifyFunction,
  type VerifyFunctionWithRequest,
} from './passport/strategy.js'

// Without Passport, and scopes
export {
  agentPressErrorHandler,
  authenticatePartner,
  type AuthenticatePartnerOptions,
  type ErrorHandlerOptions,
} from './middleware/middleware.js'
export { requireScopes } from './middleware/require-scopes.js'
export type { ErrorMiddleware, Middleware } from './http/connect.js'

// The key-rotation webhook
export type { RotationFleet } from './core/key-rotation/fleet.js'
export type { IgnoredWebhookEvent, KeyRotationEvent } from './core/key-rotation/event.js'
export {
  KEY_ROTATION_ERRORS,
  KeyRotationVerifyError,
  type KeyRotationVerifyErrorReason,
} from './core/key-rotation/errors.js'
export { verifyKeyRotation, type VerifyKeyRotationOptions } from './core/key-rotation/verify.js'
export {
  createKeyRotationRouter,
  type KeyRotationRouterOptions,
} from './key-rotation-router/router.js'

// RFC 9728 Protected Resource Metadata
export {
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type ProtectedResourceMetadata,
  type ProtectedResourceMetadataOptions,
} from './resource-metadata/metadata.js'
export { provisionOnce, provisioningKey } from './provisioning/provision-once.js'
