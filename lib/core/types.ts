/**
 * Public shapes shared by the core and its adapters.
 */
import type { JwksFetchError } from './errors.js'

/**
 * The verified claims of a partner token (SPEC §2). Unknown extra claims are kept as they were.
 *
 * @example
 * ```ts
 * const claims: PartnerTokenClaims = await verifier.verifyToken(token)
 * const user = await users.findByExternalId(claims.sub)
 * const scopes = parseScope(claims.scope) // e.g. ['mcp:read', 'mcp:write']
 * ```
 */
export interface PartnerTokenClaims {
  /** Issuer: exactly the configured issuer. */
  readonly iss: string
  /** The external user id; the partner resolves it to a local user. */
  readonly sub: string
  /** Audience: the MCP server's URL (a string, or an array containing it). */
  readonly aud: string | readonly string[]
  /** The partner's name, equal to `expectedExtProvider`. */
  readonly ext_provider: string
  /** Unique token id. */
  readonly jti: string
  /** Space-separated granted scopes (RFC 8693 §4.2). */
  readonly scope: string
  /** Issued at (NumericDate, seconds). */
  readonly iat: number
  /** Expiry (NumericDate, seconds). */
  readonly exp: number
  /** Not before (NumericDate, seconds), when present. */
  readonly nbf?: number
  readonly [claim: string]: unknown
}

/**
 * Anything that can verify a partner token: our `PartnerTokenVerifier`, or an adapter around
 * another client (for example the official AgentPress SDK). It must throw `PartnerTokenError` for
 * bad tokens and `JwksUnavailableError` for outages; anything else is treated as a server error.
 *
 * @example
 * ```ts
 * import { PartnerTokenError, type TokenVerifier } from 'passport-agentpress-partner'
 *
 * // `client` stands for another verifying client (for example the AgentPress SDK's).
 * const adapter: TokenVerifier = {
 *   issuer: 'https://api.agent.press/orgs/acme-org',
 *   async verifyToken(token) {
 *     const result = await client.verify(token)
 *     if (!result.valid) throw new PartnerTokenError('signature_invalid', { cause: result.error })
 *     return result.claims
 *   },
 *   refreshJwks: () => client.refreshKeys(),
 * }
 * new AgentPressPartnerStrategy({ verifier: adapter }, verify)
 * ```
 */
export interface TokenVerifier {
  /** The issuer this verifier trusts; required when several verifiers are combined. */
  readonly issuer?: string
  verifyToken(token: string): Promise<PartnerTokenClaims>
  /** Refetch the JWKS now (key-rotation webhook). Optional for foreign verifiers. */
  refreshJwks?(): Promise<void>
  /** Stop accepting a kid at once (emergency rotation). Optional for foreign verifiers. */
  revokeKid?(kid: string): void
}

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
  /** The MCP server's stable URL: the expected `aud`. */
  audience: string
  /** The partner's name: the expected `ext_provider`. */
  expectedExtProvider: string
  /** JWKS URL; default `<issuer>/.well-known/jwks.json`. `https:` only, except loopback hosts. */
  jwksUrl?: string
  /** Allowed clock skew: seconds, or a duration string such as `"30s"`, `"1m"`. Default `"30s"`. */
  clockTolerance?: number | string
  /** How long a fetched JWKS is fresh, in ms. Default 3,600,000 (1 h). */
  jwksCacheMaxAgeMs?: number
  /** Minimum interval between refetches caused by unknown kids, in ms. Default 30,000; at least 1,000. */
  jwksCooldownMs?: number
  /** Timeout of one JWKS fetch (connect to last byte), in ms. Default 5,000. */
  jwksTimeoutMs?: number
  /** How long past its max age a cache keeps serving when refreshes fail, in ms. Default 86,400,000 (24 h). */
  jwksStaleMaxMs?: number
  /** Largest accepted `exp - iat`, in seconds. Default 600. */
  maxTokenLifetimeSec?: number
  /** Called with every failed JWKS fetch (exceptions it throws are ignored). */
  onJwksError?: (error: JwksFetchError) => void
  /** Clock in milliseconds since the epoch; default `Date.now`. For tests. */
  clock?: () => number
}

/**
 * A verified `signing_key_rotation` webhook event (SPEC §5). Extra body fields are dropped.
 *
 * @example
 * ```ts
 * const event: KeyRotationEvent = {
 *   id: 'evt_0123456789abcdef',
 *   type: 'signing_key_rotation',
 *   issuer: 'https://api.agent.press/orgs/acme-org',
 *   retiredKid: 'ap-2024-01',
 *   newCurrentKid: 'ap-2024-07',
 *   emergency: false,
 *   occurredAt: '2025-01-15T09:30:00Z',
 * }
 * ```
 */
export interface KeyRotationEvent {
  /** Delivery id; repeats of an id already processed are acknowledged without a second refresh. */
  readonly id: string
  /** Always `signing_key_rotation`. */
  readonly type: 'signing_key_rotation'
  /** The trust relationship that rotated; absent means every verifier behind the receiver. */
  readonly issuer?: string
  /** The kid being retired. */
  readonly retiredKid: string
  /** The kid now used for signing. */
  readonly newCurrentKid: string
  /** `true`: the retired key must be refused at once. */
  readonly emergency?: boolean
  /** Time of the rotation as sent, when Date.parse can read it (otherwise left out). */
  readonly occurredAt?: string
}
