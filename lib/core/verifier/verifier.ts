/**
 * `PartnerTokenVerifier`: verifies one trust relationship's partner tokens (§2) against its
 * own JWKS cache (§3).
 */
import { checkClaims } from '../token/claims.js'
import { verifyEd25519, type Ed25519Key } from '../token/ed25519.js'
import { PartnerTokenError } from '../refusals/errors.js'
import { JwksCache } from '../jwks/cache.js'
import { observeVerify, verifyObserved } from '../diagnostics/verify.js'
import type { JwksStatus, WarmUpResult } from '../jwks/readiness.js'
import {
  normalizeVerifierOptions,
  type NormalizedVerifierOptions,
  type PartnerTokenVerifierOptions,
} from './options.js'
import { checkReplay } from './replay.js'
import { parseToken, type ParsedToken } from '../token/token.js'
import type { PartnerTokenClaims } from '../token/claims.js'

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
 * Verifies AgentPress partner tokens for one issuer (one org and environment).
 *
 * Checks run in §2's order: structure → `alg` → `kid` present → `iss` against this
 * verifier's issuer (no key lookup, no fetch for another issuer) → key lookup → signature → every
 * other claim. Bad tokens throw `PartnerTokenError` (401); an unreachable JWKS with nothing cached
 * that can answer throws `JwksUnavailableError` (503).
 *
 * @example
 * ```ts
 * import { PartnerTokenVerifier, PartnerTokenError } from 'passport-agentpress-partner'
 *
 * const verifier = new PartnerTokenVerifier({
 *   issuer: 'https://api.agent.press/orgs/acme-org',
 *   audience: 'https://mcp.example.com/mcp',
 *   expectedExtProvider: 'example',
 * })
 * const claims = await verifier.verifyToken(token) // throws PartnerTokenError on a bad token
 * console.log(claims.sub, claims.scope)
 * ```
 */
export class PartnerTokenVerifier implements TokenVerifier {
  /** The validated, frozen options with defaults applied. */
  readonly options: NormalizedVerifierOptions
  readonly #jwks: JwksCache

  constructor(options: PartnerTokenVerifierOptions) {
    this.options = normalizeVerifierOptions(options)
    this.#jwks = new JwksCache(this.options)
  }

  /** The issuer this verifier trusts. */
  get issuer(): string {
    return this.options.issuer
  }

  /** The JWKS URL this verifier fetches (and no other). */
  get jwksUrl(): string {
    return this.options.jwksUrl
  }

  /** How many JWKS fetches this instance has started (diagnostics and tests). */
  get jwksFetchCount(): number {
    return this.#jwks.fetchCount
  }

  /**
   * Verifies a compact JWS partner token and returns its claims.
   *
   * @throws {PartnerTokenError} the token is refused; `reason` says why.
   * @throws {JwksUnavailableError} the JWKS cannot be fetched and no cached key can answer.
   */
  verifyToken(token: string): Promise<PartnerTokenClaims> {
    // One promise per call: the result itself when a fetch made one, a throw as a rejection.
    try {
      const result = this.verifyNow(token)
      return result instanceof Promise ? result : Promise.resolve(result)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * {@link verifyToken} without a promise when the key is cached: the claims, or a promise when a
   * fetch is needed; refusals are thrown. The request decision's hot path.
   *
   * @internal
   */
  verifyNow(token: string): PartnerTokenClaims | Promise<PartnerTokenClaims> {
    if (!verifyObserved()) return this.#verify(parseToken(token))
    return this.#observed(() => this.#verify(parseToken(token)))
  }

  /** {@link verifyNow} for a token already split by `parseToken` (a dispatcher parses once). @internal */
  verifyParsedNow(token: ParsedToken): PartnerTokenClaims | Promise<PartnerTokenClaims> {
    if (!verifyObserved()) return this.#verify(token)
    return this.#observed(() => this.#verify(token))
  }

  // The decision published on the diagnostics channels (only when someone subscribes).
  #observed(
    run: () => PartnerTokenClaims | Promise<PartnerTokenClaims>,
  ): PartnerTokenClaims | Promise<PartnerTokenClaims> {
    return observeVerify(this.options.issuer, run) as
      PartnerTokenClaims | Promise<PartnerTokenClaims>
  }

  // Synchronous whenever the key is cached (the hot path): one promise per call, made by the caller.
  #verify(token: ParsedToken): PartnerTokenClaims | Promise<PartnerTokenClaims> {
    const iss = token.payload.iss
    if (typeof iss !== 'string' || iss.length === 0) throw new PartnerTokenError('missing_claim')
    // §1: only the configured issuer; a token never chooses where keys come from.
    if (iss !== this.options.issuer) throw new PartnerTokenError('issuer_mismatch')
    const found = this.#jwks.lookup(token.kid)
    return found instanceof Promise
      ? found.then((key) => this.#finish(token, key))
      : this.#finish(token, found)
  }

  #finish(token: ParsedToken, key: Ed25519Key): PartnerTokenClaims | Promise<PartnerTokenClaims> {
    const options = this.options
    if (!verifyEd25519(key, token.signingInput, token.signature, options.ed25519Backend)) {
      throw new PartnerTokenError('signature_invalid')
    }
    const claims = checkClaims(token.payload, options, Math.floor(options.clock() / 1000))
    // Last, so only a token that passed every check is recorded; no extra step when replay is off.
    return options.replay === undefined
      ? claims
      : checkReplay(options.replay, claims, options.clockToleranceSec)
  }

  /**
   * Refetches the JWKS now, bypassing the unknown-kid cooldown (key-rotation webhook). Concurrent
   * calls share one fetch. Rejects with the fetch failure (`JwksFetchError`).
   */
  refreshJwks(): Promise<void> {
    return this.#jwks.refresh()
  }

  /**
   * Fetches the JWKS now (for boot and readiness) and resolves with the resulting status; never
   * rejects: an outage is reported as `ready: false` with the failure reason.
   *
   * @example
   * ```ts
   * const { ready, issuers } = await verifier.warmUp()
   * if (!ready) console.warn('JWKS unreachable at boot:', issuers[0]?.lastFailureReason)
   * ```
   */
  async warmUp(): Promise<WarmUpResult> {
    try {
      await this.#jwks.refresh()
    } catch {
      // reported through the status
    }
    const status = this.#jwks.status()
    return Object.freeze({
      ready: status.state === 'fresh' || status.state === 'stale',
      issuers: Object.freeze([status]),
    })
  }

  /** The key set's readiness now: state, key count, last fetch, last failure. */
  jwksStatus(): JwksStatus {
    return this.#jwks.status()
  }

  /**
   * Stops accepting `kid` at once, even if the JWKS still lists it or cannot be fetched
   * (emergency rotation).
   */
  revokeKid(kid: string): void {
    if (typeof kid !== 'string' || kid.length === 0) {
      throw new TypeError('revokeKid(kid): kid must be a non-empty string')
    }
    this.#jwks.revoke(kid)
  }
}
