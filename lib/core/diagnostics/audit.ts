/**
 * The audit trail's channel: who called which tool, as which user — one event per MCP request the
 * strategy decided, accepted or refused. Unlike the channels of `channels.ts`, whose messages
 * carry no personal data, an audit event describes a person's request, so it lives on a channel of
 * its own that nothing in this package subscribes to: an application opts in by subscribing
 * (usually through `startAuditLog`, which hashes the subject).
 *
 * What an event never carries: the token, its signature, the JSON-RPC arguments, the body or any
 * request header other than a well-formed W3C `traceparent`. The verified `sub` is not a property
 * either: it is handed out by `subject()`, so an event logged as it is (`JSON.stringify`) still
 * holds no raw subject.
 */

/** The audit channel's name. Subscribe with `diagnostics_channel.subscribe(AUDIT_CHANNEL, fn)`. */
export const AUDIT_CHANNEL = 'agentpress-partner:audit'

/**
 * Published on {@link AUDIT_CHANNEL} once per decided request, when its response is finished (or
 * at the decision, when the request's response object cannot be reached: plain
 * `passport.authenticate` under Connect).
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel'
 * import { AUDIT_CHANNEL, type AuditEvent } from 'passport-agentpress-partner/diagnostics'
 *
 * subscribe(AUDIT_CHANNEL, (message) => {
 *   const event = message as AuditEvent
 *   if (event.outcome !== 'accepted') console.warn('refused', event.reason, event.tools)
 * })
 * ```
 */
export interface AuditEvent {
  /** When the decision was reported, ISO 8601 (UTC). */
  readonly time: string
  /** The verified token's `iss`; `null` when no token was verified (a refused token). */
  readonly issuer: string | null
  /** The verified token's `ext_provider`; `null` when no token was verified. */
  readonly extProvider: string | null
  /** SHA-256 (hex) of the verified token's `jti`; `null` when no token was verified. */
  readonly jtiHash: string | null
  /**
   * The JSON-RPC methods of the message or batch, in order, as the tool gate
   * (`requireToolScopes`) read them; `null` when no gate ran. A name that is not a plain method
   * name (letters, digits, `_ - . / :`, at most 64) is written `"(invalid)"`.
   */
  readonly methods: readonly string[] | null
  /** The tool names of its `tools/call` messages, in order (same rules); `null` when no gate ran. */
  readonly tools: readonly string[] | null
  /**
   * `accepted`: the token was good and nothing after it refused; `refused`: a reason of the
   * table (401/400/403, `insufficient_scope` from `requireScopes` or the tool gate included);
   * `unavailable`: an outage (503); `error`: a server error.
   */
  readonly outcome: 'accepted' | 'refused' | 'unavailable' | 'error'
  /** The refusal reason (any of the table's, e.g. `expired`, `user_not_provisioned`), else `null`. */
  readonly reason: string | null
  /** The status the response was answered with; `null` when it was not reachable. */
  readonly status: number | null
  /** From the start of authentication to the end of the response, in milliseconds. */
  readonly durationMs: number
  /** The request's W3C `traceparent` header when well-formed, else `null`. */
  readonly traceparent: string | null
  /** The verified token's `sub` (personal data: hash it before it is stored), else `null`. */
  subject(): string | null
}
