/**
 * `startAuditLog`: the audit trail as records (or JSON lines) an application stores — one per
 * decided MCP request, from the audit channel (`core/diagnostics/audit.ts`). The subject is
 * pseudonymised by default: HMAC-SHA256 under a key only the operator holds, so the log can say
 * "the same user called these tools" without naming them, and whoever holds the key can still
 * find one user's records (compute the HMAC of their `sub`).
 */
import { createHmac, type KeyObject } from 'node:crypto'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'

import { AUDIT_CHANNEL, type AuditEvent } from '../core/diagnostics/audit.js'
import { optionsObject, rejectUnknownKeys } from '../core/validate.js'

/**
 * One audit record: the {@link AuditEvent} with its subject written as the options say.
 *
 * @example
 * ```ts
 * const record: AuditRecord = {
 *   time: '2026-11-21T10:00:00.000Z',
 *   issuer: 'https://api.agent.press/orgs/acme-org',
 *   extProvider: 'acme',
 *   subject: 'hmac-sha256:9f2c…',
 *   jtiHash: '5e1a…',
 *   methods: ['tools/call'],
 *   tools: ['add_note'],
 *   outcome: 'accepted',
 *   reason: null,
 *   status: 200,
 *   durationMs: 3.1,
 *   traceparent: null,
 * }
 * ```
 */
export interface AuditRecord {
  readonly time: string
  readonly issuer: string | null
  readonly extProvider: string | null
  /**
   * `hmac-sha256:<64 hex>` (default), the raw `sub` (`subject: 'raw'`), or `null` (`subject:
   * 'omit'`, or no verified token).
   */
  readonly subject: string | null
  readonly jtiHash: string | null
  readonly methods: readonly string[] | null
  readonly tools: readonly string[] | null
  readonly outcome: AuditEvent['outcome']
  readonly reason: string | null
  readonly status: number | null
  readonly durationMs: number
  readonly traceparent: string | null
}

/**
 * Options of {@link startAuditLog}: where records go (`write`, `onRecord`, or both) and how the
 * subject is written.
 *
 * @example
 * ```ts
 * const options: AuditLogOptions = {
 *   subjectKey: process.env.AUDIT_SUBJECT_KEY!,
 *   write: (line) => process.stdout.write(line),
 * }
 * ```
 */
export interface AuditLogOptions {
  /** Receives each record as one JSON line, `\n` included. */
  write?: ((line: string) => void) | undefined
  /** Receives each record as an object (for a logger: pino, OpenTelemetry logs, …). */
  onRecord?: ((record: AuditRecord) => void) | undefined
  /** `'hmac'` (default): HMAC-SHA256 under `subjectKey`; `'raw'`: the `sub` itself; `'omit'`. */
  subject?: 'hmac' | 'raw' | 'omit' | undefined
  /** The operator's key for `'hmac'`: at least 32 bytes (a string of 32+ characters, or bytes). */
  subjectKey?: string | Uint8Array | KeyObject | undefined
  /** Called when `write` or `onRecord` throws (default: ignored; the request is never affected). */
  onError?: ((error: unknown) => void) | undefined
}

const OPTIONS: ReadonlySet<string> = new Set([
  'write',
  'onRecord',
  'subject',
  'subjectKey',
  'onError',
])

/**
 * Subscribes to the audit channel and hands every record to `write` (as a JSON line) and/or
 * `onRecord`. Returns the function that stops it. A throwing sink never reaches the request: the
 * error goes to `onError`.
 *
 * @throws {TypeError} naming the option: no sink, an unknown `subject` mode, or `'hmac'` without a
 * key of 32+ bytes.
 *
 * @example
 * ```ts
 * import { appendFileSync } from 'node:fs'
 * import { startAuditLog } from 'passport-agentpress-partner/diagnostics'
 *
 * const stop = startAuditLog({
 *   subjectKey: process.env.AUDIT_SUBJECT_KEY!, // 32+ random characters, kept like a secret
 *   write: (line) => appendFileSync('audit.jsonl', line),
 * })
 * // on shutdown: stop()
 * ```
 */
export function startAuditLog(options: AuditLogOptions): () => void {
  optionsObject(options, 'startAuditLog() needs an options object')
  rejectUnknownKeys(options, OPTIONS, 'startAuditLog')
  const { write, onRecord, onError } = options
  for (const [name, fn] of [
    ['write', write],
    ['onRecord', onRecord],
    ['onError', onError],
  ] as const) {
    if (fn !== undefined && typeof fn !== 'function') {
      throw new TypeError(`startAuditLog() options.${name} must be a function`)
    }
  }
  if (write === undefined && onRecord === undefined) {
    throw new TypeError(
      'startAuditLog() needs options.write (JSON lines) or options.onRecord (objects), or both',
    )
  }
  const mode = options.subject ?? 'hmac'
  if (mode !== 'hmac' && mode !== 'raw' && mode !== 'omit') {
    throw new TypeError("startAuditLog() options.subject must be 'hmac', 'raw' or 'omit'")
  }
  const key = mode === 'hmac' ? subjectKey(options.subjectKey) : undefined
  const subjectOf = (sub: string | null): string | null =>
    sub === null || mode === 'omit'
      ? null
      : mode === 'raw'
        ? sub
        : `hmac-sha256:${createHmac('sha256', key!).update(sub).digest('hex')}`

  const listener = (message: unknown): void => {
    const event = message as AuditEvent
    const record: AuditRecord = {
      time: event.time,
      issuer: event.issuer,
      extProvider: event.extProvider,
      subject: subjectOf(event.subject()),
      jtiHash: event.jtiHash,
      methods: event.methods,
      tools: event.tools,
      outcome: event.outcome,
      reason: event.reason,
      status: event.status,
      durationMs: Math.round(event.durationMs * 1000) / 1000,
      traceparent: event.traceparent,
    }
    try {
      if (onRecord !== undefined) onRecord(record)
      if (write !== undefined) write(`${JSON.stringify(record)}\n`)
    } catch (err) {
      try {
        onError?.(err)
      } catch {
        // An error handler that throws must not reach the response either.
      }
    }
  }
  subscribe(AUDIT_CHANNEL, listener)
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    unsubscribe(AUDIT_CHANNEL, listener)
  }
}

function subjectKey(value: unknown): string | Uint8Array | KeyObject {
  const fix =
    "startAuditLog() options.subjectKey must be at least 32 bytes (e.g. 32 random characters kept like a secret), or set subject: 'raw' or 'omit'"
  if (typeof value === 'string') {
    if (Buffer.byteLength(value) < 32) throw new TypeError(fix)
    return value
  }
  if (value instanceof Uint8Array) {
    if (value.length < 32) throw new TypeError(fix)
    return value
  }
  if (
    value !== null &&
    typeof value === 'object' &&
    (value as KeyObject).type === 'secret' &&
    ((value as KeyObject).symmetricKeySize ?? 0) >= 32
  ) {
    return value as KeyObject
  }
  throw new TypeError(fix)
}
