/**
 * The resource a strategy protects, as its options and verifiers name it: the default
 * `resource_metadata` URL of the challenges (derived from the shared audience), the check of an
 * explicit one, and the resource each verified token was checked for.
 */
import { isChallengeSafe } from '../core/refusals/challenge.js'
import type { PartnerTokenClaims } from '../core/token/claims.js'
import { MultiIssuerVerifier } from '../core/verifier/multi-issuer-verifier.js'
import { secureUrl } from '../core/validate.js'
import { PartnerTokenVerifier, type TokenVerifier } from '../core/verifier/verifier.js'
import type { AuthSettings } from '../http/authenticate.js'
import { protectedResourceMetadataUrl } from '../resource-metadata/metadata.js'

function audienceOf(verifier: TokenVerifier): string | undefined {
  if (verifier instanceof PartnerTokenVerifier) return verifier.options.audience
  const audience = (verifier as { audience?: unknown }).audience
  return typeof audience === 'string' ? audience : undefined
}

/**
 * The resource a token was verified for: the verifier's configured audience (which `aud` was
 * checked to contain), parsed once here; else a lone `aud` URL. The URL object is shared by the
 * requests of one verifier. Also used by the MCP SDK adapter (`mcp-sdk.ts`).
 *
 * @internal
 */
export function resourceResolver(
  verifier: TokenVerifier,
  verifiers: readonly TokenVerifier[],
): AuthSettings['resourceOf'] {
  const resources = new Map<TokenVerifier, URL>()
  for (const each of verifiers) {
    const audience = audienceOf(each)
    if (audience !== undefined && URL.canParse(audience)) resources.set(each, new URL(audience))
  }
  const multi = verifier instanceof MultiIssuerVerifier ? verifier : undefined
  const single = multi === undefined ? resources.get(verifier) : undefined
  return (claims: PartnerTokenClaims) => {
    const configured =
      multi === undefined ? single : resources.get(multi.verifierFor(claims.iss) as TokenVerifier)
    if (configured !== undefined) return configured
    const aud = claims.aud
    const lone =
      typeof aud === 'string' ? aud : Array.isArray(aud) && aud.length === 1 ? aud[0] : undefined
    return typeof lone === 'string' && URL.canParse(lone) ? new URL(lone) : undefined
  }
}

/**
 * The default `resource_metadata`: the RFC 9728 §3.1 URL of the one audience the verifiers share
 * (several orgs calling one MCP server share it). Foreign verifiers that name no audience give
 * none; verifiers for different audiences are different resources, and which document a
 * challenge should name is then the application's choice.
 *
 * @internal
 */
export function derivedMetadataUrl(verifiers: readonly TokenVerifier[]): string | undefined {
  const audiences = new Set<string>()
  for (const verifier of verifiers) {
    const audience = audienceOf(verifier)
    if (audience !== undefined && URL.canParse(audience)) audiences.add(audience)
  }
  if (audiences.size === 0) return undefined
  const [audience] = audiences
  const name = 'options.resourceMetadataUrl'
  if (audiences.size > 1) {
    throw new TypeError(
      `${name} must be given (or false) when the verifiers have different audiences: it cannot be derived`,
    )
  }
  if (new URL(audience!).search !== '') {
    throw new TypeError(
      `${name} must be given (or false) when the audience has a query: RFC 9728 derives none from it`,
    )
  }
  return checkResourceMetadataUrl(protectedResourceMetadataUrl(audience!)) as string
}

/**
 * The one URL policy (`secureUrl`); the value is sent as is in every challenge, so it must also be
 * RFC 6750-safe. `false` opts out of the default.
 *
 * @internal
 */
export function checkResourceMetadataUrl(value: unknown): string | false | undefined {
  if (value === undefined || value === false) return value
  const name = 'options.resourceMetadataUrl'
  if (typeof value !== 'string') throw new TypeError(`${name} must be a URL string or false`)
  secureUrl(value, name)
  if (!isChallengeSafe(value)) {
    throw new TypeError(
      `${name} must contain only RFC 6750 characters (no quote, backslash, control or non-ASCII)`,
    )
  }
  return value
}
