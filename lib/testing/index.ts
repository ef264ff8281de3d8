/**
 * `passport-agentpress-partner/testing`: a local mock AgentPress (JWKS server, token minter, key
 * rotation, webhook signer) so partners can test without the real service.
 *
 * @packageDocumentation
 */
export {
  createMockAgentPress,
  type JwksMode,
  type MockAgentPress,
  type MockAgentPressOptions,
  type MockAlg,
  type MockSigningKey,
} from './mock-agentpress.js'
export {
  computeWebhookSignature,
  deliverWebhook,
  signWebhook,
  type DeliverWebhookOptions,
  type SignWebhookOptions,
  type WebhookSigningForm,
  type SignedWebhook,
  type WebhookDeliveryResult,
} from './webhook.js'
export {
  createMockControl,
  type MockControlHandler,
  type MockControlOptions,
  type MockRotateRequest,
  type MockTokenRequest,
} from './mock-control.js'
