/**
 * The one place a request's decision is published on `agentpress-partner:request:decision`, so
 * that every answer of this package is counted once, as what it was.
 *
 * The strategy accepting a token is not yet the answer: a later `requireScopes` (mounted as its
 * own middleware, or inside `requireToolScopes`) may still refuse the request 403. An acceptance
 * is therefore published when the response ends, unless a refusal of this package replaced it
 * first; a refusal is published at once. Without a response to watch (a bare Passport strategy
 * under Connect, which sets no `req.res`), the acceptance is published at once, as before.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { publishRequestDecision, requestDecisionObserved } from '../core/diagnostics/publish.js'
import type { AuthErrorReason } from '../core/refusals/reasons.js'

/** Where a request's decision stands: an acceptance waiting for the response, or published. */
const DECISION: unique symbol = Symbol.for('passport-agentpress-partner.decision')

/** The response of a request, when the middleware that ran knew it (Express sets `req.res`). */
export const RESPONSE: unique symbol = Symbol.for('passport-agentpress-partner.response')

type DecisionCarrier = IncomingMessage & {
  [DECISION]?: 'pending' | 'published'
  [RESPONSE]?: ServerResponse
  res?: unknown
}

const SUCCESS = Object.freeze({ kind: 'success' as const })
const SERVER_ERROR = Object.freeze({ kind: 'error' as const })

function responseOf(req: DecisionCarrier): ServerResponse | undefined {
  const res = req[RESPONSE] ?? req.res
  if (res === null || typeof res !== 'object') return undefined
  const candidate = res as ServerResponse
  if (typeof candidate.once !== 'function' || typeof candidate.off !== 'function') return undefined
  return candidate.writableEnded || candidate.destroyed ? undefined : candidate
}

/**
 * The strategy accepted the request's token: published when the response ends, unless a refusal
 * of this package replaces it first.
 *
 * @internal
 */
export function decideAccepted(req: IncomingMessage): void {
  if (!requestDecisionObserved()) return
  const request = req as DecisionCarrier
  const res = responseOf(request)
  if (res === undefined) {
    request[DECISION] = 'published'
    publishRequestDecision(SUCCESS)
    return
  }
  request[DECISION] = 'pending'
  const settle = (): void => {
    res.off('finish', settle)
    res.off('close', settle)
    if (request[DECISION] !== 'pending') return
    request[DECISION] = 'published'
    publishRequestDecision(SUCCESS)
  }
  res.once('finish', settle)
  res.once('close', settle)
}

/**
 * The package refuses the request with `reason`: published at once, replacing an acceptance
 * still waiting for the response.
 *
 * @internal
 */
export function decideRefused(req: IncomingMessage, reason: AuthErrorReason): void {
  ;(req as DecisionCarrier)[DECISION] = 'published'
  publishRequestDecision({ kind: 'fail', reason })
}

/** The decision failed with a server error (500). @internal */
export function decideServerError(req: IncomingMessage): void {
  ;(req as DecisionCarrier)[DECISION] = 'published'
  publishRequestDecision(SERVER_ERROR)
}
