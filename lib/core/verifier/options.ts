/**
 * Validation and normalisation of `PartnerTokenVerifier` options: once, at construction, with
 * precise `TypeError`s; the result is frozen so later mutation by the caller changes nothing.
 */
import type { Agent } from 'node:http'
import { parseDurationSec } from './duration.js'
import type { JwksFetchError, JwksOptions } from '../jwks/fetch.js'
import { checkReplayStore, type ReplayStore } from './replay.js'
import type { Ed25519BackendName } from '../token/ed25519.js'
import { resolveEd25519Backend } from '../token/ed25519-backend.js'
import {
  MAX_TIMER_MS,
  optionalFunction,
  optionsObject,
  rejectUnknownKeys,
  secureUrl,
} from '../validate.js'

/**
 * Options of `PartnerTokenVerifier`; names follow the AgentPress SDK's `partnerMcp` block.
 *
 * @example
 * ```ts
 * const options: PartnerTokenVerifierOptions = {
 *   ...agentPressIssuer({ orgSlug: 'acme-org' }), // issuer and jwksUrl
 *   audience: 'https://mcp.example.com/mcp',
 *   expectedExtProvider: 'example',
 *   clockTolerance: '30s',
 *   onJwksError: (error) => console.warn('JWKS fetch failed:', error.reason),
 * }
 * const verifier = new PartnerTokenVerifier(options)
 * ```
 */
export interface PartnerTokenVerifierOptions {
  /** The trusted issuer, matched exactly (e.g. `https://api.agent.press/orgs/acme`). */
  issuer: string
  /**
   * The MCP server's stable URL: the expected `aud` (RFC 8707 resource indicator). An absolute
   * `https:` URL (`http:` on a loopback host only), without fragment or credentials.
   */
  audience: string
  /** The partner's name: the expected `ext_provider`. */
  expectedExtProvider: string
  /** JWKS URL; default `<issuer>/.well-known/jwks.json`. `https:` only, except loopback hosts. */
  jwksUrl?: string
  /** Allowed clock skew: seconds, or a duration string such as `"30s"`, `"1m"`. Default `"30s"`. */
  clockTolerance?: number | string
  /** How long a fetched JWKS is fresh, in ms. Default 3,600,000 (1 h). */
  jwksCacheMaxAgeMs?: number
  /**
   * Minimum interval between refetches caused by unknown kids, in ms. Default 5,000; at least
   * 1,000. An unknown kid waits for the next allowed refetch rather than being refused early.
   */
  jwksCooldownMs?: number
  /** Timeout of one JWKS fetch (connect to last byte), in ms. Default 5,000. */
  jwksTimeoutMs?: number
  /** How long past its max age a cache keeps serving when refreshes fail, in ms. Default 86,400,000 (24 h). */
  jwksStaleMaxMs?: number
  /** Largest accepted `exp - iat`, in seconds. Default 600. */
  maxTokenLifetimeSec?: number
  /** Called with every failed JWKS fetch (exceptions it throws are ignored). */
  onJwksError?: (error: JwksFetchError) => void
  /**
   * Replay rejection: each (`iss`, `jti`) accepted once, remembered until `exp` + clock tolerance;
   * a second use is 401 `token_replayed`, a store that cannot answer 503. A `MemoryReplayStore`
   * for one process, the Redis fleet of `passport-agentpress-partner/redis` for several. Off by
   * default.
   */
  replay?: ReplayStore
  /**
   * The `http.Agent` the JWKS fetch goes through, e.g. an egress proxy's (`https-proxy-agent`) or
   * one with custom CA certificates. Default: none (a fresh connection per fetch). The timeout,
   * size cap and no-redirect rule apply unchanged.
   */
  jwksAgent?: Agent
  /** Wall clock in milliseconds since the epoch, for claims (`exp`, `iat`, `nbf`); default `Date.now`. */
  clock?: () => number
  /**
   * Monotonic clock in milliseconds for every interval (max age, cooldown, pauses, stale window).
   * Default `performance.now`; when only `clock` is given, `clock` (so a test's fake time drives
   * everything).
   */
  monotonicClock?: () => number
  /**
   * The Ed25519 primitive: `"node:crypto"` (default: OpenSSL, nothing to install) or
   * `"libsodium"` (`crypto_sign_verify_detached` of the optional peer `sodium-native`, about 1.7×
   * faster per verify; `npm install sodium-native`). Same verdicts either way: every rule besides
   * the curve equation is this package's own (docs/ed25519-backends.md). Asking for `"libsodium"`
   * without the package installed is a `TypeError` here, at construction.
   */
  ed25519?: Ed25519BackendName
}

/** The options after validation, with every default applied (`PartnerTokenVerifier#options`). */
export interface NormalizedVerifierOptions extends JwksOptions {
  readonly audience: string
  readonly expectedExtProvider: string
  readonly clockToleranceSec: number
  readonly maxTokenLifetimeSec: number
  readonly replay: ReplayStore | undefined
  /** The Ed25519 backend's name (`"node:crypto"` unless `"libsodium"` was asked for). */
  readonly ed25519: Ed25519BackendName
}

/**
 * The largest `clockTolerance`, in seconds: five minutes, the webhook's timestamp window (§5).
 * Tokens live 60 s; a tolerance past this would accept expired tokens for many times their
 * lifetime and hide a clock that is simply wrong. @internal
 */
export const MAX_CLOCK_TOLERANCE_SEC = 300

/** Default `maxTokenLifetimeSec`: the largest `exp - iat` a verifier accepts. @internal */
export const DEFAULT_MAX_TOKEN_LIFETIME_SEC = 600

const KNOWN = new Set([
  'issuer',
  'audience',
  'expectedExtProvider',
  'jwksUrl',
  'clockTolerance',
  'jwksCacheMaxAgeMs',
  'jwksCooldownMs',
  'jwksTimeoutMs',
  'jwksStaleMaxMs',
  'maxTokenLifetimeSec',
  'onJwksError',
  'replay',
  'jwksAgent',
  'clock',
  'monotonicClock',
  'ed25519',
])

function nonEmptyString(options: Record<string, unknown>, name: string): string {
  const value = options[name]
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`options.${name} must be a non-empty string`)
  }
  if (value.trim() !== value) {
    throw new TypeError(`options.${name} must not have leading or trailing whitespace`)
  }
  return value
}

function integerMs(
  options: Record<string, unknown>,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isInteger(value)) {
    throw new TypeError(`options.${name} must be a finite integer, got ${String(value)}`)
  }
  if (value < min) throw new TypeError(`options.${name} must be >= ${min}, got ${value}`)
  if (value > max) throw new TypeError(`options.${name} must be <= ${max}, got ${value}`)
  return value
}

/**
 * Validates `PartnerTokenVerifier` options and applies defaults.
 *
 * @internal
 */
export function normalizeVerifierOptions(input: unknown): NormalizedVerifierOptions {
  const options = optionsObject(input, 'PartnerTokenVerifier options must be an object') as Record<
    string,
    unknown
  > &
    Partial<PartnerTokenVerifierOptions>
  rejectUnknownKeys(options, KNOWN, 'PartnerTokenVerifier')
  const issuer = nonEmptyString(options, 'issuer')
  if (issuer.endsWith('/')) {
    // AgentPress issuers never end with "/": every real token would be issuer_mismatch, and the
    // derived JWKS URL would contain "//".
    throw new TypeError(
      `options.issuer must not end with "/" (AgentPress issuers have none): use ${JSON.stringify(issuer.replace(/\/+$/, ''))}`,
    )
  }
  // RFC 8707 §2 / MCP: the resource indicator is an absolute URI without fragment; the one URL
  // policy adds https: (http: on loopback only). Compared with `aud` exactly as given.
  const audience = nonEmptyString(options, 'audience')
  secureUrl(audience, 'options.audience')
  const expectedExtProvider = nonEmptyString(options, 'expectedExtProvider')

  if (/\/\.well-known\/|\.json$/iu.test(issuer)) {
    // Every token would be issuer_mismatch: `iss` is the org's URL, never its key set's.
    const base = issuer.replace(/\/\.well-known\/.*$/iu, '')
    throw new TypeError(
      `options.issuer ${JSON.stringify(issuer)} is a JWKS URL, not an issuer: use the issuer ${JSON.stringify(base)} (the JWKS URL is derived from it)`,
    )
  }
  let jwksUrl: string
  if (options.jwksUrl === undefined) {
    // §1: the JWKS is always at <issuer>/.well-known/jwks.json. The issuer is what was configured,
    // so a mistake is reported against it, not against the URL derived from it.
    secureUrl(issuer, 'options.issuer')
    jwksUrl = new URL(`${issuer}/.well-known/jwks.json`).href
  } else {
    jwksUrl = secureUrl(nonEmptyString(options, 'jwksUrl'), 'options.jwksUrl').href
    if (options.jwksUrl.replace(/\/+$/u, '') === issuer) {
      throw new TypeError(
        `options.jwksUrl is the issuer URL, not a JWKS URL: omit jwksUrl (the JWKS is at ${JSON.stringify(`${issuer}/.well-known/jwks.json`)})`,
      )
    }
  }

  const clockToleranceSec =
    options.clockTolerance === undefined
      ? 30
      : parseDurationSec(options.clockTolerance, 'options.clockTolerance')
  if (clockToleranceSec > MAX_CLOCK_TOLERANCE_SEC) {
    throw new TypeError(
      `options.clockTolerance must be at most ${MAX_CLOCK_TOLERANCE_SEC} seconds, got ${clockToleranceSec}: tokens live 60 s, so a larger tolerance keeps expired tokens valid for many times their lifetime (fix the server clock with NTP instead)`,
    )
  }
  const maxTokenLifetimeSec = options.maxTokenLifetimeSec ?? DEFAULT_MAX_TOKEN_LIFETIME_SEC
  if (
    typeof maxTokenLifetimeSec !== 'number' ||
    !Number.isFinite(maxTokenLifetimeSec) ||
    maxTokenLifetimeSec <= 0
  ) {
    throw new TypeError(
      `options.maxTokenLifetimeSec must be a finite number > 0, got ${String(maxTokenLifetimeSec)}`,
    )
  }
  const onJwksError = optionalFunction(
    options.onJwksError,
    'options.onJwksError must be a function',
  )
  const jwksAgent = options.jwksAgent
  if (
    jwksAgent !== undefined &&
    (jwksAgent === null ||
      typeof jwksAgent !== 'object' ||
      typeof (jwksAgent as { addRequest?: unknown }).addRequest !== 'function')
  ) {
    throw new TypeError('options.jwksAgent must be an http.Agent (such as a proxy agent)')
  }
  const clock = optionalFunction(
    options.clock,
    'options.clock must be a function returning milliseconds',
  )

  const monotonicClock = optionalFunction(
    options.monotonicClock,
    'options.monotonicClock must be a function returning milliseconds',
  )

  // Last of the checks: the backend may load a package, so only for otherwise valid options.
  const ed25519Backend = resolveEd25519Backend(options.ed25519)

  return Object.freeze({
    issuer,
    audience,
    expectedExtProvider,
    jwksUrl,
    clockToleranceSec,
    jwksCacheMaxAgeMs: integerMs(options, 'jwksCacheMaxAgeMs', 3_600_000, 1_000),
    jwksCooldownMs: integerMs(options, 'jwksCooldownMs', 5_000, 1_000),
    jwksTimeoutMs: integerMs(options, 'jwksTimeoutMs', 5_000, 1, MAX_TIMER_MS),
    jwksStaleMaxMs: integerMs(options, 'jwksStaleMaxMs', 86_400_000, 0),
    maxTokenLifetimeSec,
    onJwksError,
    replay: checkReplayStore(options.replay, 'options.replay'),
    jwksAgent,
    clock: clock ?? Date.now,
    monotonicClock: monotonicClock ?? clock ?? (() => performance.now()),
    ed25519: ed25519Backend.name,
    ed25519Backend,
  })
}
