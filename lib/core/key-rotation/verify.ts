/**
 * Verification of the `signing_key_rotation` webhook (§5): the HMAC-SHA256 signature over
 * `<timestamp>.<raw body>`, the ±300 s timestamp window and the shape of the event.
 *
 * Framework-free: it takes the raw bytes and a plain header object. The HTTP adapter that reads the
 * body, deduplicates deliveries and refreshes the JWKS is `createKeyRotationRouter`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { parseEvent, type IgnoredWebhookEvent, type KeyRotationEvent } from './event.js'
import { KEY_ROTATION_MAX_BODY_BYTES, KeyRotationVerifyError } from './errors.js'
import {
  header,
  parseSignatures,
  parseTimestamp,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
} from './signature.js'

/**
 * Default timestamp window, in seconds, applied in both directions (§5, public).
 *
 * @internal
 */
export const KEY_ROTATION_TOLERANCE_SEC = 300

// The rest of a `whsec_` secret, when it is canonical padded base64 (Svix-style secrets are).
const BASE64_SECRET = /^whsec_((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$/
const BASE64_TEXT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Whether `text` is canonical base64 (so one text is one key). */
const isCanonicalBase64 = (text: string): boolean =>
  text.length > 0 &&
  BASE64_TEXT.test(text) &&
  Buffer.from(text, 'base64').toString('base64') === text

/**
 * The basic rules of one secret text (§5): a string of at least 16 characters without
 * leading/trailing whitespace (whitespace usually means a copy-paste or `.env` accident that would
 * make every signature fail silently). The signing helpers of the test kit apply only these.
 *
 * @internal
 */
export function assertSecretText(value: unknown, label: string): string {
  if (typeof value !== 'string') throw new TypeError(`${label} must be a string`)
  if (value.length === 0) throw new TypeError(`${label} must not be empty`)
  if (value.length < 16) throw new TypeError(`${label} must be at least 16 characters long`)
  if (/^\s|\s$/u.test(value)) {
    throw new TypeError(`${label} must not have leading or trailing whitespace`)
  }
  return value
}

/**
 * The rules of a secret a receiver is configured with (§5): the basic rules, plus the paste
 * accidents that would otherwise fail every delivery silently until AgentPress gives up retrying —
 * quotes kept around the value, a `whsec_` secret whose rest is not base64 (cut or mistyped), and
 * the base64 rest of a `whsec_` secret pasted without its prefix.
 *
 * @internal
 */
export function assertReceiverSecretText(value: unknown, label: string): string {
  const text = assertSecretText(value, label)
  if (/^(["'`]).*\1$/su.test(text)) {
    throw new TypeError(
      `${label} is wrapped in quotes: remove them (a .env file or a YAML/JSON value kept the quotes as part of the secret)`,
    )
  }
  if (text.startsWith('whsec_')) {
    if (!isCanonicalBase64(text.slice(6))) {
      throw new TypeError(
        `${label} starts with whsec_ but the rest is not base64: copy the whole secret again from AgentPress (it was cut or altered)`,
      )
    }
  } else if (isCanonicalBase64(text) && !/^[0-9a-f]+$/iu.test(text)) {
    const bytes = Buffer.from(text, 'base64').length
    if (bytes >= 18 && bytes <= 64) {
      throw new TypeError(
        `${label} looks like the base64 part of a whsec_ secret without its prefix: configure the whole secret, whsec_ included`,
      )
    }
  }
  return text
}

/**
 * One webhook secret bound to the issuer(s) of the org and environment that issued it (§5): a
 * delivery it verifies acts only on those issuers, and one naming another issuer is refused as
 * `signature_mismatch`.
 *
 * @example
 * ```ts
 * const orgA: WebhookSecretBinding = {
 *   secret: process.env.ORG_A_WEBHOOK_SECRET!,
 *   issuer: 'https://api.agent.press/orgs/org-a',
 *   label: 'org-a', // reported on the webhook:delivery channel, never the secret
 * }
 * ```
 */
export interface WebhookSecretBinding {
  /** The webhook secret (`whsec_…`). */
  readonly secret: string
  /** The issuer(s) this secret belongs to; absent: every issuer behind the router (one secret only). */
  readonly issuer?: string | readonly string[] | undefined
  /** A name for this secret on the `webhook:delivery` channel (default: its index). */
  readonly label?: string | undefined
}

/** One configured webhook secret: its text or a {@link WebhookSecretBinding}. */
export type WebhookSecretOption = string | WebhookSecretBinding

/** A secret, validated: its text, the issuers it acts on (`undefined`: any) and its label. @internal */
export interface ResolvedWebhookSecret {
  readonly secret: string
  readonly issuers: ReadonlySet<string> | undefined
  readonly label: string | null
}

function resolveSecret(value: unknown, label: string, receiver: boolean): ResolvedWebhookSecret {
  const text = receiver ? assertReceiverSecretText : assertSecretText
  if (!receiver || typeof value !== 'object' || value === null) {
    return Object.freeze({ secret: text(value, label), issuers: undefined, label: null })
  }
  const { secret, issuer, label: name, ...rest } = value as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) {
    throw new TypeError(`${label}: unknown option ${unknown[0]} (expected secret, issuer, label)`)
  }
  const checked = text(secret, `${label}.secret`)
  if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > 64)) {
    throw new TypeError(`${label}.label must be a non-empty string of at most 64 characters`)
  }
  let issuers: ReadonlySet<string> | undefined
  if (issuer !== undefined) {
    const list: unknown[] = Array.isArray(issuer) ? issuer : [issuer]
    if (list.length === 0) throw new TypeError(`${label}.issuer must not be an empty array`)
    for (const entry of list) {
      if (typeof entry !== 'string' || entry.length === 0) {
        throw new TypeError(
          `${label}.issuer must be the issuer URL (or URLs) this secret belongs to`,
        )
      }
    }
    issuers = new Set(list as string[])
  }
  return Object.freeze({ secret: checked, issuers, label: (name as string | undefined) ?? null })
}

/**
 * Validates and normalises a configured webhook secret list (§5). `receiver`: also refuse the
 * paste accidents of {@link assertReceiverSecretText} and accept {@link WebhookSecretBinding}s.
 *
 * @internal
 */
export function resolveWebhookSecrets(
  secret: unknown,
  name: string,
  receiver = true,
): readonly ResolvedWebhookSecret[] {
  const list: unknown[] = Array.isArray(secret) ? [...(secret as unknown[])] : [secret]
  if (list.length === 0) throw new TypeError(`${name} must not be an empty array`)
  const resolved = list.map((value, index) =>
    resolveSecret(value, Array.isArray(secret) ? `${name}[${index}]` : name, receiver),
  )
  const bound = resolved.filter((entry) => entry.issuers !== undefined).length
  if (bound > 0 && bound < resolved.length) {
    const index = resolved.findIndex((entry) => entry.issuers === undefined)
    throw new TypeError(
      `${name}[${index}] has no issuer while other secrets are bound to theirs: give every secret its issuer, { secret, issuer }`,
    )
  }
  return Object.freeze(resolved)
}

/**
 * Validates and normalises `webhookSecret` to its texts (§5: a configuration error at
 * construction when a secret is empty, shorter than 16 characters or has leading/trailing
 * whitespace).
 *
 * @param secret One secret, or several while the secret itself is being rotated.
 * @param name The option name used in error messages.
 * @returns A frozen, non-empty array of secrets.
 * @throws TypeError naming the option and the rule broken (never the secret itself).
 *
 * @internal
 */
export function assertWebhookSecrets(secret: unknown, name = 'webhookSecret'): readonly string[] {
  return Object.freeze(resolveWebhookSecrets(secret, name, false).map((entry) => entry.secret))
}

/**
 * Validates `toleranceSec`: a finite, non-negative number of seconds (default 300).
 *
 * @internal
 */
export function assertToleranceSec(value: unknown, name = 'toleranceSec'): number {
  if (value === undefined) return KEY_ROTATION_TOLERANCE_SEC
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a finite, non-negative number of seconds`)
  }
  return value
}

/**
 * Input of {@link verifyKeyRotation}.
 *
 * @example
 * ```ts
 * const options: VerifyKeyRotationOptions = {
 *   payload: rawBody, // the Buffer exactly as received, before any JSON parsing
 *   headers: req.headers,
 *   secret: [newSecret, oldSecret], // either may sign while the secret itself is rotated
 * }
 * const event = verifyKeyRotation(options)
 * ```
 */
export interface VerifyKeyRotationOptions {
  /** The raw request body exactly as received (a string is taken as its UTF-8 bytes). */
  payload: Uint8Array | string
  /** Request headers; names in any case. A string array is joined with `", "`, as Node does. */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>
  /**
   * The webhook secret, or several (any may match); a {@link WebhookSecretBinding} binds a secret
   * to its issuer(s), and a delivery it verifies that names another issuer is refused.
   */
  secret: WebhookSecretOption | readonly WebhookSecretOption[]
  /** Accepted clock difference in seconds, both directions, inclusive. Default 300. */
  toleranceSec?: number
  /** Clock in milliseconds since the epoch; default `Date.now`. For tests. */
  clock?: () => number
}

/**
 * The HMAC keys of one secret (§5): the UTF-8 bytes of the whole string, and, for a
 * `whsec_` secret whose rest is valid base64, the decoded rest (as Svix derives it).
 *
 * @internal
 */
export function webhookKeys(secret: string): Buffer[] {
  const keys = [Buffer.from(secret, 'utf8')]
  const match = BASE64_SECRET.exec(secret)
  if (match !== null && match[1]!.length > 0) {
    const decoded = Buffer.from(match[1]!, 'base64')
    // Canonical only: the last character's unused bits must be zero, so one text is one key.
    if (decoded.toString('base64') === match[1]) keys.push(decoded)
  }
  return keys
}

/**
 * Verifies one key-rotation delivery and returns its event (§5).
 *
 * Order of checks: body size → signature header present → timestamp present, digits only and
 * within ±`toleranceSec` → HMAC-SHA256 of `<timestamp>.<raw body>` under any key of any secret
 * (the whole string as UTF-8; for `whsec_<base64>` also the decoded rest) against any signature
 * entry (hex or `v1,<base64>`, constant time) → JSON shape. The body is parsed only once it is
 * authenticated, so an unsigned request never learns anything about the payload rules.
 *
 * @returns The event, frozen, with only the fields of {@link KeyRotationEvent}; or, for an
 *   authentic JSON object that names no `retiredKid` / `newCurrentKid`, an
 *   {@link IgnoredWebhookEvent} (acknowledge it; there is nothing to refresh).
 * @throws KeyRotationVerifyError with the reason of the first failed check.
 * @throws TypeError when `secret` or `toleranceSec` is misconfigured.
 *
 * @example
 * ```ts
 * const event = verifyKeyRotation({
 *   payload: rawBody, // Buffer, exactly as received
 *   headers: req.headers,
 *   secret: process.env.AGENTPRESS_WEBHOOK_SECRET!,
 * })
 * if (!('ignored' in event)) {
 *   if (event.emergency) verifier.revokeKid(event.retiredKid)
 *   await verifier.refreshJwks()
 * }
 * ```
 */
export function verifyKeyRotation(
  options: VerifyKeyRotationOptions,
): KeyRotationEvent | IgnoredWebhookEvent {
  return verifyPrepared(prepareKeyRotation(options), options.payload, options.headers)
}

/** The verification settings, validated once (the router prepares them at construction). @internal */
export interface PreparedKeyRotation {
  /** The secret texts, in configuration order (the first MACs fleet records). */
  readonly secrets: readonly string[]
  /** The secrets with their issuer bindings and labels, in the same order. */
  readonly bindings: readonly ResolvedWebhookSecret[]
  /** Every HMAC key the secrets stand for (see {@link webhookKeys}). */
  readonly keys: readonly Buffer[]
  /** For each key, the index of the secret it came from. */
  readonly keyOwners: readonly number[]
  readonly toleranceSec: number
  readonly clock: () => number
}

/** Validates the settings of {@link verifyKeyRotation}. @internal */
export function prepareKeyRotation(
  options: Pick<VerifyKeyRotationOptions, 'secret' | 'toleranceSec' | 'clock'>,
  name = 'secret',
): PreparedKeyRotation {
  const bindings = resolveWebhookSecrets(options.secret, name)
  const secrets = Object.freeze(bindings.map((entry) => entry.secret))
  const toleranceSec = assertToleranceSec(options.toleranceSec)
  const clock = options.clock ?? Date.now
  if (typeof clock !== 'function') throw new TypeError('clock must be a function')
  const keys: Buffer[] = []
  const keyOwners: number[] = []
  secrets.forEach((secret, index) => {
    for (const key of webhookKeys(secret)) {
      keys.push(key)
      keyOwners.push(index)
    }
  })
  return Object.freeze({
    secrets,
    bindings,
    keys: Object.freeze(keys),
    keyOwners: Object.freeze(keyOwners),
    toleranceSec,
    clock,
  })
}

/**
 * Which configured secret verified a delivery: its index, its label, and the issuers the delivery
 * may act on (`undefined`: any).
 *
 * @internal
 */
export interface SecretMatch {
  readonly index: number
  readonly label: string | null
  readonly issuers: ReadonlySet<string> | undefined
}

// The secret that verified each event this module returned. An event is a frozen object of the
// public KeyRotationEvent type; whoever processes it (the router, or a fleet relaying the signed
// delivery, which verifies it again here) asks which secret's issuers it may act on.
const matches = new WeakMap<object, SecretMatch>()

/**
 * The secret that verified `event` (returned by {@link verifyPrepared}); `undefined` for an event
 * that did not come from there.
 *
 * @internal
 */
export const secretMatchOf = (event: object): SecretMatch | undefined => matches.get(event)

/** {@link verifyKeyRotation} with prepared settings. @internal */
export function verifyPrepared(
  prepared: PreparedKeyRotation,
  payload: VerifyKeyRotationOptions['payload'],
  headers: VerifyKeyRotationOptions['headers'],
): KeyRotationEvent | IgnoredWebhookEvent {
  const { keys, keyOwners, bindings, toleranceSec, clock } = prepared
  if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
    throw new TypeError('payload must be the raw body as a Buffer, Uint8Array or string')
  }
  if (typeof headers !== 'object' || headers === null) {
    throw new TypeError('headers must be an object')
  }
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  if (body.length > KEY_ROTATION_MAX_BODY_BYTES) {
    throw new KeyRotationVerifyError('payload_too_large')
  }

  const signatureHeader = header(headers, SIGNATURE_HEADER)
  if (signatureHeader === undefined || signatureHeader.trim() === '') {
    throw new KeyRotationVerifyError('missing_signature')
  }
  const timestamp = header(headers, TIMESTAMP_HEADER)
  if (timestamp === undefined || timestamp === '') {
    throw new KeyRotationVerifyError('missing_timestamp')
  }
  parseTimestamp(timestamp, toleranceSec, clock())

  const received = parseSignatures(signatureHeader)
  if (received.length === 0) {
    throw new KeyRotationVerifyError('signature_mismatch', {
      cause: new Error('no well-formed signature entry'),
    })
  }
  let owner = -1
  keys.forEach((key, index) => {
    const expected = createHmac('sha256', key)
      .update(Buffer.from(timestamp, 'ascii'))
      .update('.')
      .update(body)
      .digest()
    // Compare against every entry without stopping early, so timing says nothing about which
    // entry, which secret or which derivation matched. All buffers are 32 bytes by construction.
    for (const mac of received) {
      if (timingSafeEqual(mac, expected) && owner === -1) owner = keyOwners[index]!
    }
  })
  if (owner === -1) throw new KeyRotationVerifyError('signature_mismatch')
  const event = parseEvent(body)
  const { issuers, label } = bindings[owner]!
  if (issuers !== undefined && 'issuer' in event && event.issuer !== undefined) {
    if (!issuers.has(event.issuer)) {
      // §5: a secret acts only on its own org's issuers; naming another is answered exactly as a
      // forgery would be, so a partner's secret cannot be used to probe or act on another org.
      throw new KeyRotationVerifyError('signature_mismatch', {
        cause: new Error(`the delivery names an issuer secret #${owner} is not bound to`),
      })
    }
  }
  matches.set(event, Object.freeze({ index: owner, label, issuers }))
  return event
}
