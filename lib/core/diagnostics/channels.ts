/**
 * What the package reports on `node:diagnostics_channel`: the names of its channels (stable, part
 * of the public API) and the exact shape of each message. The emitters are in
 * `diagnostics-publish.ts` (and, for token verification, `diagnostics-verify.ts`).
 *
 * Why diagnostics_channel: it is Node's own publish/subscribe for libraries (undici, fastify and
 * `node:http` use it). A channel nobody subscribes to costs one boolean read, so every emitter
 * below checks `hasSubscribers` before it reads a clock or builds a message.
 *
 * What a message may carry (the policy every payload follows): configuration (the issuer and JWKS
 * URL we were configured with), stable reason codes, outcomes, counts and durations. Never a
 * token, a signature, a kid, a claim value, a webhook secret or signature, a request header, or
 * response bytes — none of it is needed to operate the service, and any of it could end up in a
 * log. The issuer is always the one configured on the verifier, never the `iss` a token claims.
 */
import type { AuthErrorReason, PartnerTokenErrorReason } from '../refusals/reasons.js'

/**
 * Why one JWKS fetch failed (`JwksFetchError.reason`, and the `reason` of a failed
 * `jwks:fetch:end`). Defined here, below the JWKS wing that raises it, so the channel messages can
 * name it.
 */
export type JwksFetchErrorReason =
  'network' | 'timeout' | 'http_status' | 'redirect' | 'too_large' | 'invalid_json' | 'invalid_jwks'

/**
 * The channel names. Subscribe with `diagnostics_channel.subscribe(name, listener)`.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel'
 * import { DIAGNOSTICS_CHANNELS, type TokenDecisionMessage } from 'passport-agentpress-partner'
 *
 * subscribe(DIAGNOSTICS_CHANNELS.tokenDecision, (message) => {
 *   const { outcome, reason, issuer } = message as TokenDecisionMessage
 *   if (outcome !== 'accepted') console.warn('token refused', reason, issuer)
 * })
 * ```
 */
export const DIAGNOSTICS_CHANNELS = Object.freeze({
  /** Every verification by a core verifier: {@link TokenDecisionMessage}. */
  tokenDecision: 'agentpress-partner:token:decision',
  /** Every request the strategy decided (including HTTP-only refusals): {@link RequestDecisionMessage}. */
  requestDecision: 'agentpress-partner:request:decision',
  /** A JWKS fetch starts: {@link JwksFetchStartMessage}. */
  jwksFetchStart: 'agentpress-partner:jwks:fetch:start',
  /** A JWKS fetch ended: {@link JwksFetchEndMessage}. */
  jwksFetchEnd: 'agentpress-partner:jwks:fetch:end',
  /** A kid was revoked (emergency rotation): {@link JwksRevocationMessage}. */
  jwksRevocation: 'agentpress-partner:jwks:revocation',
  /** An issuer's key-set readiness changed: {@link JwksStateMessage}. */
  jwksState: 'agentpress-partner:jwks:state',
  /** Every key-rotation webhook delivery answered: {@link WebhookDeliveryMessage}. */
  webhookDelivery: 'agentpress-partner:webhook:delivery',
  /** Connection state of a shared-state fleet backend (e.g. Redis): {@link FleetConnectionMessage}. */
  fleetConnection: 'agentpress-partner:fleet:connection',
  /**
   * `TracingChannel` name of `verifyToken` (`tracing:agentpress-partner:token:verify:start`, `…:end`,
   * `…:asyncStart`, `…:asyncEnd`, `…:error`); its context is a {@link TokenVerifyTraceContext}.
   */
  tokenVerifyTrace: 'agentpress-partner:token:verify',
} as const)

/**
 * Outcome of one verification: `accepted`; `refused` (a bad token, 401); `unavailable` (the JWKS
 * could not answer, 503); `error` (anything else, e.g. a foreign verifier threw).
 */
export type TokenOutcome = 'accepted' | 'refused' | 'unavailable' | 'error'

/** Published on `agentpress-partner:token:decision` once per `verifyToken`. */
export interface TokenDecisionMessage {
  readonly outcome: TokenOutcome
  /**
   * The refusal reason; `jwks_unavailable` or `replay_unavailable` for an outage; `null` when
   * accepted or on an error.
   */
  readonly reason: PartnerTokenErrorReason | 'jwks_unavailable' | 'replay_unavailable' | null
  /** The configured issuer of the verifier that decided; `null` when no verifier was chosen. */
  readonly issuer: string | null
  /** Time from the call to the decision, in milliseconds. */
  readonly durationMs: number
}

/** Published on `agentpress-partner:request:decision` once per request the strategy decides. */
export interface RequestDecisionMessage {
  /**
   * `accepted`: Passport `success`; `refused`: a reason of the table (401/400/403);
   * `unavailable`: the JWKS could not answer (503); `error`: a server error (e.g. `verify` threw).
   */
  readonly outcome: 'accepted' | 'refused' | 'unavailable' | 'error'
  /** The reason of a refusal (any of §4's, e.g. `insufficient_scope`), else `null`. */
  readonly reason: AuthErrorReason | null
  /** The status the refusal is answered with (from the table); `null` when accepted; 500 on error. */
  readonly status: number | null
}

/** Published on `agentpress-partner:jwks:fetch:start`. */
export interface JwksFetchStartMessage {
  readonly issuer: string
  readonly url: string
  /** `true` for a refresh that bypasses the cooldown (webhook, `refreshJwks`, `warmUp`). */
  readonly forced: boolean
}

/** Published on `agentpress-partner:jwks:fetch:end`. */
export interface JwksFetchEndMessage {
  readonly issuer: string
  readonly url: string
  readonly outcome: 'success' | 'failure'
  /** Why the fetch failed (`JwksFetchError#reason`), `null` on success. */
  readonly reason: JwksFetchErrorReason | null
  /** HTTP status of a failed response, when there was one. */
  readonly httpStatus: number | null
  /** Usable kids in the fetched set on success, `null` on failure. */
  readonly keyCount: number | null
  readonly durationMs: number
}

/** Published on `agentpress-partner:jwks:revocation`. The kid itself is not part of it. */
export interface JwksRevocationMessage {
  readonly issuer: string
  /** Kids refused by this verifier after the revocation (bounded by the cache). */
  readonly revokedCount: number
}

/**
 * Readiness of one issuer's key set:
 * - `cold`: no usable keys and no failed fetch since (nothing fetched yet, or the keys outlived
 *   the stale window); the next request fetches.
 * - `fresh`: keys younger than `jwksCacheMaxAgeMs`.
 * - `stale`: past max age but within `jwksStaleMaxMs`: served if a refresh fails (stale-but-serving).
 * - `unavailable`: the last fetch failed and no cached key can answer: requests get 503.
 */
export type JwksState = 'cold' | 'fresh' | 'stale' | 'unavailable'

/** Published on `agentpress-partner:jwks:state` when a fetch changes an issuer's state. */
export interface JwksStateMessage {
  readonly issuer: string
  readonly previous: JwksState
  readonly state: JwksState
}

/**
 * Outcome of one webhook delivery: `accepted` (processed, 200), `duplicate` (200, no refresh),
 * `ignored` (authentic but for an issuer nobody trusts, 200), `refused` (4xx/5xx refusal with its
 * reason), `unavailable` (an outage — the refresh failed or the fleet could not have the delivery:
 * 503, AgentPress retries).
 */
export type WebhookOutcome = 'accepted' | 'duplicate' | 'ignored' | 'refused' | 'unavailable'

/** Published on `agentpress-partner:webhook:delivery` once per answered delivery. */
export interface WebhookDeliveryMessage {
  readonly outcome: WebhookOutcome
  /** The refusal reason (`signature_mismatch`, …), `unknown_issuer`, `jwks_unavailable`, or `null`. */
  readonly reason: string | null
  /** HTTP status answered. */
  readonly status: number
  /** The event's issuer once the signature was verified (`null` before, or when it names none). */
  readonly issuer: string | null
  /** The event's `emergency` flag once verified, else `null`. */
  readonly emergency: boolean | null
  /** The delivery id once verified (to correlate with AgentPress's delivery log), else `null`. */
  readonly eventId: string | null
  /**
   * Which configured `webhookSecret` verified the delivery, by its position (0 = the first), or
   * `null` before the signature matched. Watch it during a secret rotation: once the old secret's
   * index stops appearing, AgentPress signs with the new one.
   */
  readonly secretIndex: number | null
  /** The `label` of that secret when it has one (never the secret), else `null`. */
  readonly secretLabel: string | null
}

/**
 * State of a fleet backend connection (for shared-state backends such as Redis). `degraded`:
 * connected, but the shared data is damaged (reason `wrong_type` or `too_many_records`).
 */
export type FleetConnectionState =
  'connecting' | 'connected' | 'degraded' | 'reconnecting' | 'disconnected'

/** Published on `agentpress-partner:fleet:connection` by a fleet backend when its state changes. */
export interface FleetConnectionMessage {
  /** Which backend, e.g. `redis`. */
  readonly backend: string
  readonly state: FleetConnectionState
  /** A short, stable reason for a loss (e.g. `ECONNREFUSED`, `timeout`), never a URL with credentials. */
  readonly reason: string | null
  /** Reconnection attempt number, 0 when not reconnecting. */
  readonly attempt: number
}

/**
 * Context object of the `verifyToken` tracing channel: `issuer`; Node adds `error` (the
 * `PartnerTokenError`/`JwksUnavailableError`) on a refusal. `result` stays `undefined`: the claims
 * are not handed to tracers.
 */
export interface TokenVerifyTraceContext {
  readonly issuer: string
}
