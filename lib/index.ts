/**
 * passport-agentpress-partner: verify AgentPress partner-MCP tokens in Express/Connect apps.
 *
 * The core (token verifier, JWKS cache, errors, challenge builder, key-rotation webhook) is
 * framework-free; the Passport strategy, middleware and routers are thin adapters over it.
 * Re-exports only, grouped: verify · errors · Passport · middleware · webhook · PRM.
 *
 * @packageDocumentation
 */
export { readBearerToken, type BearerResult } from './core/token/bearer.js'
export { buildChallenge, type ChallengeParams } from './core/refusals/challenge.js'
export {
  AUTH_ERRORS,
  type AuthErrorReason,
  type HttpAuthErrorReason,
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
export type { PartnerTokenClaims } from './core/token/claims.js'
export { parseScope } from './core/token/scope.js'
export { agentPressIssuer, type AgentPressEnvironment } from './core/verifier/agentpress-issuer.js'
export { PartnerTokenVerifier, type TokenVerifier } from './core/verifier/verifier.js'
export type { PartnerTokenVerifierOptions } from './core/verifier/options.js'
export { MultiIssuerVerifier } from './core/verifier/multi-issuer-verifier.js'
export {
  MemoryReplayStore,
  type MemoryReplayStoreOptions,
  type ReplayStore,
} from './core/verifier/replay.js'
export type {
  RotationFleet,
  RotationFleetMember,
  SignedDelivery,
} from './core/key-rotation/fleet.js'
export type { IgnoredWebhookEvent, KeyRotationEvent } from './core/key-rotation/event.js'
export {
  KEY_ROTATION_ERRORS,
  KeyRotationVerifyError,
  type KeyRotationVerifyErrorReason,
} from './core/key-rotation/errors.js'
export {
  verifyKeyRotation,
  type VerifyKeyRotationOptions,
  type WebhookSecretBinding,
  type WebhookSecretOption,
} from './core/key-rotation/verify.js'
export {
  createKeyRotationRouter,
  type KeyRotationRouterOptions,
} from './key-rotation-router/router.js'
export {
  AgentPressPartnerStrategy,
  type AgentPressAuthInfo,
  type AgentPressPartnerStrategyOptions,
  type McpAuthInfo,
  type VerifyDone,
  type VerifyFunction,
  type VerifyFunctionWithRequest,
  type AgentPressTypes,
  type VerifyRequest,
  type VerifyResult,
} from './passport/strategy.js'
export {
  agentPressErrorHandler,
  authenticatePartner,
  type AuthenticatePartnerOptions,
  type ErrorBodyFormat,
  type ErrorHandlerOptions,
} from './middleware/middleware.js'
export { requireScopes } from './middleware/require-scopes.js'
export type { ErrorMiddleware, Middleware } from './http/connect.js'
export {
  requireToolScopes,
  type GrantedScopes,
  type ToolScopeGate,
  type ToolScopes,
} from './mcp/tool-scopes.js'
export {
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type ProtectedResourceMetadata,
  type ProtectedResourceMetadataHandler,
  type ProtectedResourceMetadataOptions,
} from './resource-metadata/metadata.js'
export {
  DIAGNOSTICS_CHANNELS,
  type FleetConnectionMessage,
  type FleetConnectionState,
  type JwksFetchEndMessage,
  type JwksFetchStartMessage,
  type JwksRevocationMessage,
  type JwksState,
  type JwksStateMessage,
  type RequestDecisionMessage,
  type TokenDecisionMessage,
  type TokenOutcome,
  type TokenVerifyTraceContext,
  type WebhookDeliveryMessage,
  type WebhookOutcome,
} from './core/diagnostics/channels.js'
export type { JwksStatus, ReadinessSource, WarmUpResult } from './core/jwks/readiness.js'
export { readinessHandler, type ReadinessBody, type ReadinessTarget } from './http/readiness.js'
export { refusalOf } from './http/refusal-of.js'
