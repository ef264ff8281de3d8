/**
 * The emitters of the diagnostics channels (`diagnostics.ts` names them and types their messages).
 * Each is one call at its emitter's site and returns at once when nobody subscribes: no clock is
 * read and no message is built.
 *
 * @internal
 */
import { channel } from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import { AUTH_ERRORS, type AuthErrorReason } from '../refusals/reasons.js'
import { DIAGNOSTICS_CHANNELS } from './channels.js'
import type * as M from './channels.js'
import type { JwksFetchErrorReason } from './channels.js'

const requestDecision = channel(DIAGNOSTICS_CHANNELS.requestDecision)
const jwksFetchStart = channel(DIAGNOSTICS_CHANNELS.jwksFetchStart)
const jwksFetchEnd = channel(DIAGNOSTICS_CHANNELS.jwksFetchEnd)
const jwksRevocation = channel(DIAGNOSTICS_CHANNELS.jwksRevocation)
const jwksState = channel(DIAGNOSTICS_CHANNELS.jwksState)
const webhookDelivery = channel(DIAGNOSTICS_CHANNELS.webhookDelivery)
const fleetConnection = channel(DIAGNOSTICS_CHANNELS.fleetConnection)

/** Whether anyone listens to the request decisions (so a caller can skip preparing one). @internal */
export const requestDecisionObserved = (): boolean => requestDecision.hasSubscribers

/**
 * Publishes the strategy's decision for one request: a success, a refusal (any reason of the
 * table, answered with its status) or a server error.
 *
 * @internal
 */
export function publishRequestDecision(
  decision:
    | { readonly kind: 'success' }
    | { readonly kind: 'fail'; readonly reason: AuthErrorReason }
    | { readonly kind: 'error' },
): void {
  if (!requestDecision.hasSubscribers) return
  const message: M.RequestDecisionMessage =
    decision.kind === 'success'
      ? { outcome: 'accepted', reason: null, status: null }
      : decision.kind === 'fail'
        ? {
            // An outage (503: keys or the replay store unreachable) is not a refusal.
            outcome: AUTH_ERRORS[decision.reason].status === 503 ? 'unavailable' : 'refused',
            reason: decision.reason,
            status: AUTH_ERRORS[decision.reason].status,
          }
        : { outcome: 'error', reason: null, status: 500 }
  requestDecision.publish(message)
}

/**
 * Announces a JWKS fetch; returns what {@link publishJwksFetchEnd} needs (its start time), or
 * `undefined` when nobody listens to either channel.
 *
 * @internal
 */
export function publishJwksFetchStart(
  issuer: string,
  url: string,
  forced: boolean,
): number | undefined {
  if (jwksFetchStart.hasSubscribers) {
    const message: M.JwksFetchStartMessage = { issuer, url, forced }
    jwksFetchStart.publish(message)
  }
  return jwksFetchEnd.hasSubscribers ? performance.now() : undefined
}

/** @internal */
export function publishJwksFetchEnd(
  started: number | undefined,
  issuer: string,
  url: string,
  result: { keyCount: number } | { reason: JwksFetchErrorReason; httpStatus: number | undefined },
): void {
  if (!jwksFetchEnd.hasSubscribers) return
  const durationMs = started === undefined ? 0 : performance.now() - started
  const message: M.JwksFetchEndMessage =
    'keyCount' in result
      ? {
          issuer,
          url,
          outcome: 'success',
          reason: null,
          httpStatus: null,
          keyCount: result.keyCount,
          durationMs,
        }
      : {
          issuer,
          url,
          outcome: 'failure',
          reason: result.reason,
          httpStatus: result.httpStatus ?? null,
          keyCount: null,
          durationMs,
        }
  jwksFetchEnd.publish(message)
}

/** @internal */
export function publishJwksRevocation(issuer: string, revokedCount: number): void {
  if (!jwksRevocation.hasSubscribers) return
  const message: M.JwksRevocationMessage = { issuer, revokedCount }
  jwksRevocation.publish(message)
}

/** @internal */
export function publishJwksState(issuer: string, previous: M.JwksState, state: M.JwksState): void {
  if (previous === state || !jwksState.hasSubscribers) return
  const message: M.JwksStateMessage = { issuer, previous, state }
  jwksState.publish(message)
}

/** The verified parts of a delivery a message may carry. @internal */
export interface DeliveredEvent {
  readonly id: string
  readonly issuer?: string | undefined
  readonly emergency?: boolean | undefined
}

/** Which configured secret verified a delivery (never the secret). @internal */
export interface DeliverySecret {
  readonly index: number
  readonly label: string | null
}

/**
 * Publishes one answered delivery. `body` is the JSON answer, from which the outcome follows:
 * `{error}` → refused, or unavailable when it is an outage (503: `jwks_unavailable`,
 * `fleet_unavailable`); `{duplicate}`; `{ignored}`; else accepted.
 *
 * @internal
 */
export function publishWebhookDelivery(
  status: number,
  body: Readonly<Record<string, unknown>>,
  event?: DeliveredEvent,
  secret?: DeliverySecret,
): void {
  if (!webhookDelivery.hasSubscribers) return
  let outcome: M.WebhookOutcome = 'accepted'
  let reason: string | null = null
  if (typeof body.error === 'string') {
    reason = body.error
    // A 503 is an outage AgentPress retries (keys or the fleet unreachable), never a refusal.
    outcome = status === 503 ? 'unavailable' : 'refused'
  } else if (body.duplicate === true) outcome = 'duplicate'
  else if (typeof body.ignored === 'string') {
    outcome = 'ignored'
    reason = body.ignored
  }
  const message: M.WebhookDeliveryMessage = {
    outcome,
    reason,
    status,
    issuer: event?.issuer ?? null,
    emergency: event === undefined ? null : event.emergency === true,
    eventId: event?.id ?? null,
    secretIndex: secret?.index ?? null,
    secretLabel: secret?.label ?? null,
  }
  webhookDelivery.publish(message)
}

/**
 * For fleet backends: publishes a connection-state change on `agentpress-partner:fleet:connection`.
 *
 * @internal
 */
export function publishFleetConnection(message: M.FleetConnectionMessage): void {
  if (fleetConnection.hasSubscribers) fleetConnection.publish(message)
}
