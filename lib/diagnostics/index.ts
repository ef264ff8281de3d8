/**
 * `passport-agentpress-partner/diagnostics`: what the package tells operators. The names of its
 * `node:diagnostics_channel` channels and the shapes of their messages (no personal data: never a
 * token, claim value, kid from a request or secret), and readiness: the JWKS status of a verifier
 * or strategy and an HTTP handler for a readiness probe.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel'
 * import { DIAGNOSTICS_CHANNELS, type RequestDecisionMessage } from 'passport-agentpress-partner/diagnostics'
 *
 * subscribe(DIAGNOSTICS_CHANNELS.requestDecision, (message) => {
 *   const { outcome, reason, status } = message as RequestDecisionMessage
 *   console.log(outcome, reason, status)
 * })
 * ```
 *
 * @packageDocumentation
 */
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
} from '../core/diagnostics/channels.js'
export type { JwksStatus, ReadinessSource, WarmUpResult } from '../core/jwks/readiness.js'
export { readinessHandler, type ReadinessBody, type ReadinessTarget } from '../http/readiness.js'
