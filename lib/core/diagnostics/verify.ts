/**
 * The emitters of the token-verification channels: the decision of each verification and its
 * trace (`diagnostics.ts` names them and types their messages). Nothing is measured or built
 * when nobody subscribes.
 *
 * @internal
 */
import { channel, tracingChannel } from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import type { PartnerTokenErrorReason } from '../refusals/reasons.js'
import { DIAGNOSTICS_CHANNELS } from './channels.js'
import type * as M from './channels.js'

const tokenDecision = channel(DIAGNOSTICS_CHANNELS.tokenDecision)
const verifyTrace = tracingChannel<unknown, M.TokenVerifyTraceContext>(
  DIAGNOSTICS_CHANNELS.tokenVerifyTrace,
)

/** The outcome and reason of a settled verification, read from what it threw (if anything). */
function classify(error: unknown): Pick<M.TokenDecisionMessage, 'outcome' | 'reason'> {
  const reason = (error as { reason?: unknown } | null)?.reason
  const name = (error as { name?: unknown } | null)?.name
  if (name === 'JwksUnavailableError' && reason === 'jwks_unavailable') {
    return { outcome: 'unavailable', reason }
  }
  if (name === 'ReplayUnavailableError' && reason === 'replay_unavailable') {
    return { outcome: 'unavailable', reason }
  }
  if (name === 'PartnerTokenError' && typeof reason === 'string') {
    return { outcome: 'refused', reason: reason as PartnerTokenErrorReason }
  }
  return { outcome: 'error', reason: null }
}

function publishToken(issuer: string | null, started: number, error: unknown, ok: boolean): void {
  const { outcome, reason } = ok ? { outcome: 'accepted' as const, reason: null } : classify(error)
  const message: M.TokenDecisionMessage = {
    outcome,
    reason,
    issuer,
    durationMs: performance.now() - started,
  }
  tokenDecision.publish(message)
}

/** Whether a verification should go through {@link observeVerify} (anyone listening). @internal */
export function verifyObserved(): boolean {
  return tokenDecision.hasSubscribers || verifyTrace.hasSubscribers
}

/**
 * Runs one verification, publishing its decision (and tracing it) when anyone listens. `run` may
 * answer synchronously (the cached-key hot path): then so does this, unless a tracer listens.
 * Callers check {@link verifyObserved} first, so with no subscriber this is never reached.
 *
 * @internal
 */
export function observeVerify<T>(
  issuer: string | null,
  run: () => T | PromiseLike<T>,
): T | PromiseLike<T> {
  if (verifyTrace.hasSubscribers && issuer !== null) {
    const traced = (): Promise<T> => {
      // Node puts what the traced function resolves with into the context as `result`; the
      // claims must not reach subscribers, so the traced function resolves with nothing.
      let value: T
      return verifyTrace
        .tracePromise(
          async () => {
            value = await run()
          },
          { issuer },
        )
        .then(() => value)
    }
    return timed(issuer, traced)
  }
  return timed(issuer, run)
}

function timed<T>(issuer: string | null, run: () => T | PromiseLike<T>): T | PromiseLike<T> {
  if (!tokenDecision.hasSubscribers) return run()
  const started = performance.now()
  let result: T | PromiseLike<T>
  try {
    result = run()
  } catch (error) {
    publishToken(issuer, started, error, false)
    throw error
  }
  if (typeof (result as PromiseLike<T> | null)?.then !== 'function') {
    publishToken(issuer, started, undefined, true)
    return result
  }
  return Promise.resolve(result).then(
    (value) => {
      publishToken(issuer, started, undefined, true)
      return value
    },
    (error: unknown) => {
      publishToken(issuer, started, error, false)
      throw error
    },
  )
}
