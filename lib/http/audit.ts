/**
 * The request side of the audit trail (`core/diagnostics/audit.ts` names the channel and the
 * event). When nobody subscribes, the request path pays one `hasSubscribers` read at the start of
 * authentication and one counter read at each decision: no clock, no listener, no object, and no
 * read of the request.
 *
 * When someone does, authentication starts a small state on the request: the start time, and
 * later the verified claims, the decision and (from the tool gate) the JSON-RPC method and tool
 * names. The event is published once the response is finished, so it reports the status that
 * was really sent — a 403 of `requireScopes` or the tool gate after an accepted token included
 * (their refusal reason is the request's `FAILURE_REASON`). Without a reachable response (plain
 * `passport.authenticate` under Connect, where nothing links the request to it) it is published
 * at the decision.
 *
 * @internal
 */
import { channel } from 'node:diagnostics_channel'
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'

import { AUDIT_CHANNEL, type AuditEvent } from '../core/diagnostics/audit.js'
import { AUTH_ERRORS } from '../core/refusals/reasons.js'
import type { PartnerTokenClaims } from '../core/token/claims.js'
import { processShared } from './process-shared.js'
import { FAILURE_REASON, type RefusalCarrier } from './refusal.js'

const audit = channel(AUDIT_CHANNEL)

// How many audit states are open (begun, not yet settled), shared by every copy of this package in
// the process: while none is, no request carries one, and the decision hooks do not read the
// request at all (a missing property read on an Express request takes V8's slow path, refusal.ts).
const openAudits = processShared(
  'openAudits',
  (found) =>
    found !== null &&
    typeof found === 'object' &&
    typeof (found as { count?: unknown }).count === 'number',
  () => ({ count: 0 }),
)

function settle(state: AuditState): void {
  if (state.settled) return
  state.settled = true
  openAudits.count--
}

/** The audit state of a request. @internal */
export const AUDIT_STATE: unique symbol = Symbol.for('passport-agentpress-partner.audit')
/** The response of a request, for middleware that has it when the strategy does not. @internal */
export const AUDIT_RESPONSE: unique symbol = Symbol.for('passport-agentpress-partner.auditResponse')

interface AuditState {
  readonly start: number
  claims: PartnerTokenClaims | undefined
  decision: 'accepted' | 'refused' | 'error' | undefined
  methods: string[] | null
  tools: string[] | null
  published: boolean
  /** Published, or its response gone: no longer counted as open. */
  settled: boolean
  /** Publish at the decision: the response is out of reach. */
  readonly atDecision: boolean
}

/** A request the audit may annotate. @internal */
export type AuditCarrier = RefusalCarrier & {
  [AUDIT_STATE]?: AuditState
  [AUDIT_RESPONSE]?: ServerResponse
  res?: unknown
}

/** Whether anybody subscribes to the audit channel (the one check on the hot path). @internal */
export function auditing(): boolean {
  return audit.hasSubscribers
}

/** For middleware holding the response: lets a strategy run inside it publish at the finish. */
export function offerAuditResponse(req: IncomingMessage, res: ServerResponse): void {
  if (audit.hasSubscribers) (req as AuditCarrier)[AUDIT_RESPONSE] = res
}

/** Starts the request's audit state (call only when {@link auditing}). @internal */
export function beginAudit(req: AuditCarrier): void {
  if (req[AUDIT_STATE] !== undefined) return // a second strategy run on the same request
  const candidate = req[AUDIT_RESPONSE] ?? req.res
  const res =
    candidate !== null && typeof candidate === 'object' && 'once' in candidate
      ? (candidate as ServerResponse)
      : undefined
  const state: AuditState = {
    start: performance.now(),
    claims: undefined,
    decision: undefined,
    methods: null,
    tools: null,
    published: false,
    settled: false,
    atDecision: res === undefined,
  }
  req[AUDIT_STATE] = state
  openAudits.count++
  if (res !== undefined) {
    const done = (): void => publish(req, state, res)
    res.once('finish', done)
    res.once('close', done)
  }
}

/** Records the verified claims (before any later check can refuse). @internal */
export function auditClaims(req: AuditCarrier, claims: PartnerTokenClaims): void {
  if (openAudits.count === 0) return
  const state = req[AUDIT_STATE]
  if (state !== undefined) state.claims = claims
}

/** Records the strategy's decision. @internal */
export function auditDecision(req: AuditCarrier, decision: 'accepted' | 'refused' | 'error'): void {
  if (openAudits.count === 0) return
  const state = req[AUDIT_STATE]
  if (state === undefined) return
  state.decision = decision
  if (state.atDecision) publish(req, state, undefined)
}

const MAX_NAMES = 32
const NAME = /^[\w./:-]{1,64}$/

/**
 * The tool gate's hand-over: the JSON-RPC methods and `tools/call` names of the parsed body (one
 * message or a batch). Never the arguments. @internal
 */
export function auditCalls(req: IncomingMessage, body: unknown): void {
  if (openAudits.count === 0) return
  const state = (req as AuditCarrier)[AUDIT_STATE]
  if (state === undefined) return
  const methods: string[] = []
  const tools: string[] = []
  for (const message of (Array.isArray(body) ? body : [body]).slice(0, MAX_NAMES)) {
    const { method, params } = (message ?? {}) as { method?: unknown; params?: unknown }
    methods.push(typeof method === 'string' && NAME.test(method) ? method : '(invalid)')
    if (method !== 'tools/call') continue
    const name = (params as { name?: unknown } | null | undefined)?.name
    tools.push(typeof name === 'string' && NAME.test(name) ? name : '(invalid)')
  }
  state.methods = methods
  state.tools = tools
}

const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/

function publish(req: AuditCarrier, state: AuditState, res: ServerResponse | undefined): void {
  // The response is done (or the decision was the last chance): nothing more can be recorded.
  settle(state)
  // Undecided (the client left while the keys were fetched): no decision, no record.
  if (state.published || state.decision === undefined) return
  state.published = true
  if (!audit.hasSubscribers) return
  const reason = req[FAILURE_REASON] ?? null
  const claims = state.claims
  const traceparent = req.headers.traceparent
  const sub = typeof claims?.sub === 'string' ? claims.sub : null
  const event: AuditEvent = {
    time: new Date().toISOString(),
    issuer: typeof claims?.iss === 'string' ? claims.iss : null,
    extProvider: typeof claims?.ext_provider === 'string' ? claims.ext_provider : null,
    jtiHash:
      typeof claims?.jti === 'string'
        ? createHash('sha256').update(claims.jti).digest('hex')
        : null,
    methods: state.methods,
    tools: state.tools,
    outcome:
      reason !== null
        ? AUTH_ERRORS[reason].status === 503
          ? 'unavailable'
          : 'refused'
        : state.decision === 'error'
          ? 'error'
          : 'accepted',
    reason,
    status:
      res !== undefined
        ? res.statusCode
        : reason !== null
          ? AUTH_ERRORS[reason].status
          : state.decision === 'error'
            ? 500
            : null,
    durationMs: performance.now() - state.start,
    traceparent:
      typeof traceparent === 'string' && TRACEPARENT.test(traceparent) ? traceparent : null,
    subject: () => sub,
  }
  audit.publish(event)
}
