/**
 * Signing and delivering key-rotation webhooks the way AgentPress does (§5), so a partner can
 * exercise its receiver locally.
 */
import { createHmac } from 'node:crypto'
import { assertWebhookSecrets, webhookKeys } from '../core/key-rotation/verify.js'
import type { KeyRotationEvent } from '../core/key-rotation/event.js'

/**
 * How a signature is made. The public AgentPress documentation does not fix the format, so the
 * receiver accepts each combination (§5) and the test kit can produce each.
 *
 * @example
 * ```ts
 * // Svix / Standard Webhooks style: key = base64-decoded rest of `whsec_…`, entry `v1,<base64>`.
 * const svix: WebhookSigningForm = { secretDecoding: 'base64', signatureEncoding: 'base64' }
 * signWebhook(event, { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ...svix })
 * ```
 */
export interface WebhookSigningForm {
  /**
   * The HMAC key: `utf8` (default), the UTF-8 bytes of the whole secret; `base64`, the
   * base64-decoded part after `whsec_` (the secret must then be `whsec_<base64>`).
   */
  secretDecoding?: 'utf8' | 'base64'
  /** The header entry: `hex` (default) `sha256=<hex>`; `base64` `v1,<base64>`. */
  signatureEncoding?: 'hex' | 'base64'
}

/**
 * Options of {@link signWebhook}.
 *
 * @example
 * ```ts
 * const options: SignWebhookOptions = { secret: mock.webhookSecret, timestamp: 1700000000 }
 * const stale = signWebhook(mock.rotateKeys(), options) // outside the ±300 s window: 401
 * ```
 */
export interface SignWebhookOptions extends WebhookSigningForm {
  /** The webhook secret. */
  secret: string
  /** The `X-AgentPress-Timestamp` to sign, in Unix seconds; default now. A string is sent as is. */
  timestamp?: number | string
  /** Clock in milliseconds since the epoch, used when `timestamp` is absent; default `Date.now`. */
  clock?: () => number
}

/**
 * A signed delivery: the exact body and the headers to send with it.
 *
 * @example
 * ```ts
 * const signed: SignedWebhook = signWebhook(event, { secret })
 * // signed.headers: { 'Content-Type': 'application/json', 'X-AgentPress-Timestamp': '…',
 * //   'X-AgentPress-Signature': 'sha256=…' }
 * await fetch(receiverUrl, { method: 'POST', headers: signed.headers, body: signed.body })
 * ```
 */
export interface SignedWebhook {
  /** The body exactly as signed: send these bytes, never a re-serialisation. */
  readonly body: string
  /** `Content-Type`, `X-AgentPress-Timestamp` and `X-AgentPress-Signature`. */
  readonly headers: Record<string, string>
}

/**
 * Computes one signature entry over `<timestamp>.<body>` (§5): `sha256=<hex>` by default, or
 * `v1,<base64>`, with the key derived as `form` says. Useful to sign bodies that are not valid
 * UTF-8, or to build headers carrying several entries.
 *
 * @example
 * ```ts
 * const bom = Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d])
 * const entry = computeWebhookSignature(secret, '1700000000', bom)
 * // 'sha256=…64 hex…'
 * ```
 */
export function computeWebhookSignature(
  secret: string,
  timestamp: string | number,
  body: string | Uint8Array,
  form: WebhookSigningForm = {},
): string {
  assertWebhookSecrets(secret, 'secret')
  const { secretDecoding = 'utf8', signatureEncoding = 'hex' } = form
  if (secretDecoding !== 'utf8' && secretDecoding !== 'base64') {
    throw new TypeError('secretDecoding must be "utf8" or "base64"')
  }
  if (signatureEncoding !== 'hex' && signatureEncoding !== 'base64') {
    throw new TypeError('signatureEncoding must be "hex" or "base64"')
  }
  const keys = webhookKeys(secret)
  if (secretDecoding === 'base64' && keys.length < 2) {
    throw new TypeError('secretDecoding "base64" needs a secret of the form whsec_<base64>')
  }
  const mac = createHmac('sha256', keys[secretDecoding === 'base64' ? 1 : 0]!)
    .update(`${timestamp}.`)
    .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
    .digest()
  return signatureEncoding === 'hex'
    ? `sha256=${mac.toString('hex')}`
    : `v1,${mac.toString('base64')}`
}

/**
 * Signs a key-rotation event as AgentPress would: the body is `JSON.stringify(event)` (or the
 * string given, unchanged), signed with the current time unless `timestamp` is given.
 *
 * @example
 * ```ts
 * import { createMockAgentPress, signWebhook } from 'passport-agentpress-partner/testing'
 *
 * const mock = await createMockAgentPress()
 * const { body, headers } = signWebhook(mock.rotateKeys(), { secret: mock.webhookSecret })
 * const url = 'http://127.0.0.1:3000/webhooks/agentpress/key-rotation'
 * await fetch(url, { method: 'POST', headers, body })
 * ```
 */
export function signWebhook(
  event: KeyRotationEvent | Readonly<Record<string, unknown>> | string,
  options: SignWebhookOptions,
): SignedWebhook {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('signWebhook: options with a secret are required')
  }
  const body = typeof event === 'string' ? event : JSON.stringify(event)
  const clock = options.clock ?? Date.now
  const timestamp =
    options.timestamp === undefined ? String(Math.floor(clock() / 1000)) : String(options.timestamp)
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'X-AgentPress-Timestamp': timestamp,
      'X-AgentPress-Signature': computeWebhookSignature(options.secret, timestamp, body, options),
    },
  }
}

/**
 * Options of {@link deliverWebhook}.
 *
 * @example
 * ```ts
 * const options: DeliverWebhookOptions = {
 *   secret: mock.webhookSecret,
 *   headers: { 'Content-Encoding': 'gzip' }, // sent after the signed headers
 *   timeoutMs: 2000,
 * }
 * const result = await deliverWebhook(url, mock.rotateKeys(), options) // result.status: 415
 * ```
 */
export interface DeliverWebhookOptions extends SignWebhookOptions {
  /** Extra headers, added after the signed ones (they may override them). */
  headers?: Record<string, string>
  /** Abort the delivery after this many ms. Default 10,000. */
  timeoutMs?: number
}

/**
 * The receiver's answer.
 *
 * @example
 * ```ts
 * const result: WebhookDeliveryResult = await deliverWebhook(url, event, { secret })
 * if (result.status !== 200) throw new Error(`receiver answered ${result.status}`)
 * result.body // { received: true }
 * ```
 */
export interface WebhookDeliveryResult {
  /** HTTP status. */
  readonly status: number
  /** The body parsed as JSON when it is JSON, else the text. */
  readonly body: unknown
  /** Response headers, names lower-case. */
  readonly headers: Readonly<Record<string, string>>
}

/**
 * Signs `event` and POSTs it to `url` (an `http:` or `https:` URL, typically your local receiver),
 * without following redirects. Resolves with the answer; rejects on network errors or timeout.
 *
 * @example
 * ```ts
 * const mock = await createMockAgentPress()
 * const url = `${base}/webhooks/agentpress/key-rotation`
 * const result = await deliverWebhook(url, mock.rotateKeys(), { secret: mock.webhookSecret })
 * // result: { status: 200, body: { received: true }, headers: { … } }
 * ```
 */
export async function deliverWebhook(
  url: string | URL,
  event: KeyRotationEvent | Readonly<Record<string, unknown>> | string,
  options: DeliverWebhookOptions,
): Promise<WebhookDeliveryResult> {
  const target = new URL(url)
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new TypeError('deliverWebhook: url must be an http: or https: URL')
  }
  const signed = signWebhook(event, options)
  const response = await fetch(target, {
    method: 'POST',
    headers: { ...signed.headers, ...options.headers },
    body: signed.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // Not JSON: keep the text.
  }
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  return { status: response.status, body, headers }
}
