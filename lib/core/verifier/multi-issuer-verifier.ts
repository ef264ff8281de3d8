/**
 * Several trust relationships behind one verifier: the token's unverified `iss` picks the
 * verifier of its issuer by exact match (§1). An unlisted issuer never reaches a verifier, so
 * it costs no key lookup and no fetch.
 */
import { PartnerTokenError } from '../refusals/errors.js'
import { parseToken } from '../token/token.js'
import type { PartnerTokenClaims } from '../token/claims.js'
import { PartnerTokenVerifier, type TokenVerifier } from './verifier.js'
import { observeVerify, verifyObserved } from '../diagnostics/verify.js'
import { statusesOf, warmUpAll, type JwksStatus, type WarmUpResult } from '../jwks/readiness.js'

/**
 * Dispatches each token to the verifier of its issuer.
 *
 * @example
 * ```ts
 * const verifier = new MultiIssuerVerifier([
 *   new PartnerTokenVerifier({ ...common, ...agentPressIssuer({ orgSlug: 'acme-org' }) }),
 *   new PartnerTokenVerifier({ ...common, ...agentPressIssuer({ orgSlug: 'globex' }) }),
 * ])
 * const claims = await verifier.verifyToken(token)
 * ```
 */
export class MultiIssuerVerifier implements TokenVerifier {
  /** The verifiers, in configuration order. */
  readonly verifiers: readonly TokenVerifier[]
  readonly #byIssuer: ReadonlyMap<string, TokenVerifier>

  /**
   * @throws {TypeError} when a verifier has no `issuer` or two share one.
   */
  constructor(verifiers: readonly TokenVerifier[]) {
    const byIssuer = new Map<string, TokenVerifier>()
    verifiers.forEach((verifier, i) => {
      const issuer = verifier.issuer
      if (typeof issuer !== 'string' || issuer === '') {
        throw new TypeError(
          `verifier ${i} has no issuer: each of several verifiers needs a distinct issuer`,
        )
      }
      if (byIssuer.has(issuer))
        throw new TypeError(`two verifiers trust the same issuer ${JSON.stringify(issuer)}`)
      byIssuer.set(issuer, verifier)
    })
    this.verifiers = Object.freeze([...verifiers])
    this.#byIssuer = byIssuer
  }

  /**
   * The structural checks run first, so the reason follows §2's order and matches what a
   * single verifier reports; a missing `iss` is `missing_claim`, an unlisted one `issuer_mismatch`.
   */
  async verifyToken(token: string): Promise<PartnerTokenClaims> {
    return this.verifyNow(token)
  }

  /**
   * {@link verifyToken} without a promise when our verifier has the key cached. @internal
   */
  verifyNow(token: string): PartnerTokenClaims | PromiseLike<PartnerTokenClaims> {
    if (!verifyObserved()) return this.#dispatch(token)
    // Our own verifiers report their decisions; what is decided here (refused before a verifier
    // was chosen: no issuer, since the token's `iss` is not trusted data; or a foreign verifier's
    // answer: its configured issuer) is reported here.
    let parsed
    let verifier
    try {
      parsed = parseToken(token)
      verifier = this.#choose(parsed.payload.iss)
    } catch (error) {
      return observeVerify(null, () => {
        throw error
      })
    }
    if (verifier instanceof PartnerTokenVerifier) return verifier.verifyParsedNow(parsed)
    const foreign = verifier
    return observeVerify(foreign.issuer ?? null, () => foreign.verifyToken(token))
  }

  #dispatch(token: string): PartnerTokenClaims | PromiseLike<PartnerTokenClaims> {
    const parsed = parseToken(token)
    const verifier = this.#choose(parsed.payload.iss)
    // Our own verifier reuses the parse; any other verifier gets the token string.
    return verifier instanceof PartnerTokenVerifier
      ? verifier.verifyParsedNow(parsed)
      : verifier.verifyToken(token)
  }

  #choose(iss: unknown): TokenVerifier {
    if (typeof iss !== 'string' || iss === '') throw new PartnerTokenError('missing_claim')
    const verifier = this.#byIssuer.get(iss)
    if (verifier === undefined) throw new PartnerTokenError('issuer_mismatch')
    return verifier
  }

  /** Warms every verifier that can (see `PartnerTokenVerifier#warmUp`); never rejects. */
  warmUp(): Promise<WarmUpResult> {
    return warmUpAll(this.verifiers)
  }

  /** The readiness of each key set that reports one, in configuration order. */
  jwksStatuses(): JwksStatus[] {
    return statusesOf(this.verifiers)
  }

  /** The verifier trusting `issuer`, if any. */
  verifierFor(issuer: string): TokenVerifier | undefined {
    return this.#byIssuer.get(issuer)
  }
}
