/**
 * Between reasons and the error classes of `errors.ts`: the refusal to throw for a reason, and the
 * reason a caught error stands for.
 */
import {
  AgentPressAuthError,
  AgentPressHttpError,
  JwksUnavailableError,
  PartnerTokenError,
  ReplayUnavailableError,
  type AuthErrorOptions,
} from './errors.js'
import {
  AUTH_ERRORS,
  PARTNER_TOKEN_ERROR_REASONS,
  type AuthErrorReason,
  type HttpAuthErrorReason,
  type PartnerTokenErrorReason,
} from './reasons.js'

/**
 * Our refusal for `reason`, with the class its row belongs to: the error an adapter passes to
 * `error()` when the table gives the reason a status other than 401.
 *
 * @internal
 */
export function refusalError(
  reason: AuthErrorReason,
  options: AuthErrorOptions = {},
): AgentPressAuthError {
  if (reason === 'jwks_unavailable') return new JwksUnavailableError(options)
  if (reason === 'replay_unavailable') return new ReplayUnavailableError(options)
  if (Object.hasOwn(PARTNER_TOKEN_REASON_SET, reason)) {
    return new PartnerTokenError(reason as PartnerTokenErrorReason, options)
  }
  return new AgentPressHttpError(
    reason as Exclude<HttpAuthErrorReason, 'jwks_unavailable' | 'replay_unavailable'>,
    options,
  )
}

const PARTNER_TOKEN_REASON_SET: Readonly<Record<string, true>> = Object.freeze(
  Object.fromEntries(PARTNER_TOKEN_ERROR_REASONS.map((reason) => [reason, true as const])),
)

/**
 * What a verifier's rejection means: a token reason, an outage (`jwks_unavailable`,
 * `replay_unavailable`), or `undefined` for a server error. Recognises our errors from any copy of this package (or an adapter mimicking
 * them) by name, since `instanceof` fails across copies.
 *
 * @internal
 */
export function verifierRefusal(
  err: unknown,
): PartnerTokenErrorReason | 'jwks_unavailable' | 'replay_unavailable' | undefined {
  if (err instanceof PartnerTokenError) return err.reason
  if (err instanceof JwksUnavailableError) return 'jwks_unavailable'
  if (err instanceof ReplayUnavailableError) return 'replay_unavailable'
  if (!(err instanceof Error)) return undefined
  if (err.name === 'PartnerTokenError') {
    const reason = (err as { reason?: unknown }).reason
    return typeof reason === 'string' && Object.hasOwn(PARTNER_TOKEN_REASON_SET, reason)
      ? (reason as PartnerTokenErrorReason)
      : undefined
  }
  if (err.name === 'JwksUnavailableError') return 'jwks_unavailable'
  if (err.name === 'ReplayUnavailableError') return 'replay_unavailable'
  if (err instanceof AgentPressAuthError && err.reason === 'jwks_unavailable') {
    return 'jwks_unavailable'
  }
  return undefined
}

/**
 * `err` when it is one of our refusals that can be rendered as is: a known reason whose status is
 * its row's.
 *
 * @internal
 */
export function renderableRefusal(err: unknown): AgentPressAuthError | undefined {
  return err instanceof AgentPressAuthError &&
    Object.hasOwn(AUTH_ERRORS, err.reason) &&
    err.status === AUTH_ERRORS[err.reason].status
    ? err
    : undefined
}
