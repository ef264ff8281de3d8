/**
 * The options of `AgentPressPartnerStrategy`, validated once at construction (`TypeError` naming
 * the option) and turned into the frozen settings of the request decision. Later mutation of the
 * caller's object changes nothing.
 */
import type { IncomingMessage } from 'node:http'
import { challengeFor, isChallengeSafe, type ChallengeContext } from '../core/refusals/challenge.js'
import { MultiIssuerVerifier } from '../core/verifier/multi-issuer-verifier.js'
import { AUTH_ERRORS, type AuthErrorReason } from '../core/refusals/reasons.js'
import { checkImplication, checkScopes, type ScopeImplication } from '../core/token/scope.js'
import { isB64Token } from '../core/token/bearer.js'
import { PartnerTokenError } from '../core/refusals/errors.js'
import {
  optionalBoolean,
  optionalFunction,
  optionsObject,
  rejectUnknownKeys,
} from '../core/validate.js'
import type { PartnerTokenVerifierOptions } from '../core/verifier/options.js'
import { PartnerTokenVerifier, type TokenVerifier } from '../core/verifier/verifier.js'
import type {
  AuthSettings,
  VerifyFunction,
  VerifyFunctionWithRequest,
} from '../http/authenticate.js'
import { checkResourceMetadataUrl, derivedMetadataUrl, resourceResolver } from './resource.js'
import { routeState } from '../http/refusal.js'

/** The default strategy name, as in `passport.authenticate('agentpress-partner')`. @internal */
export const STRATEGY_NAME = 'agentpress-partner'

interface CommonOptions {
  /** `realm="…"` in every challenge. RFC 6750 characters only (%x20-21 / %x23-5B / %x5D-7E). */
  realm?: string | undefined
  /**
   * RFC 9728 Protected Resource Metadata URL, sent as `resource_metadata="…"` in every challenge.
   * Default: derived from the audience (`protectedResourceMetadataUrl(audience)`, the URL that
   * `protectedResourceMetadata({ resource: audience, … })` serves), so the 401 links to the
   * document the same app serves. `false`: no `resource_metadata` (clients then try the
   * well-known URIs themselves).
   */
  resourceMetadataUrl?: string | false | undefined
  /**
   * Scopes every request must carry, all of them (flat set, no wildcards); else 403. They are
   * named as `scope="…"` in every 401 challenge too (MCP 2025-11-25), and in the 403.
   */
  requiredScopes?: readonly string[] | undefined
  /**
   * Opt-in scope hierarchy: each key grants the scopes it lists too (transitively), e.g.
   * `{ 'notes:write': ['notes:read'] }`. Off by default (flat sets, §2). Applied to
   * `requiredScopes`, route scopes, and to `requireScopes` and the MCP scope gate after this
   * strategy; challenges still name the scopes the route requires.
   */
  implies?: ScopeImplication | undefined
  /** Pass the request as the first argument of `verify`. */
  passReqToCallback?: boolean | undefined
  /**
   * Reads the token from somewhere other than `Authorization: Bearer` (e.g. an `agent-session`
   * header). Return `undefined`, `null` or `''` when the request carries none.
   */
  tokenFromRequest?: ((req: IncomingMessage) => string | null | undefined) | undefined
  /** Strategy name for `passport.authenticate(name)`. Default `'agentpress-partner'`. */
  name?: string | undefined
}

/**
 * Options of `AgentPressPartnerStrategy`: exactly one of `partnerMcp` (verifier options, one
 * per trusted org/environment) or `verifier` (ready verifiers), plus the HTTP settings. Validated
 * once at construction (`TypeError` with the option's name); later mutation changes nothing.
 *
 * @example
 * ```ts
 * const options: AgentPressPartnerStrategyOptions = {
 *   partnerMcp: [acmeProduction, acmeStaging], // one per trusted issuer
 *   realm: 'mcp',
 *   requiredScopes: ['mcp:read'],
 *   tokenFromRequest: (req) => req.headers['agent-session'] as string | undefined,
 * }
 * ```
 */
export type AgentPressPartnerStrategyOptions = CommonOptions &
  (
    | {
        /** One `PartnerTokenVerifier` options object per trusted issuer. */
        partnerMcp: PartnerTokenVerifierOptions | readonly PartnerTokenVerifierOptions[]
        verifier?: undefined
      }
    | {
        /** Ready verifiers (ours, or an adapter around another client); several need distinct `issuer`s. */
        verifier: TokenVerifier | readonly TokenVerifier[]
        partnerMcp?: undefined
      }
  )

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'partnerMcp',
  'verifier',
  'realm',
  'resourceMetadataUrl',
  'requiredScopes',
  'implies',
  'passReqToCallback',
  'tokenFromRequest',
  'name',
])

/** What a strategy is made of. @internal */
export interface StrategyParts {
  readonly name: string
  readonly verifiers: readonly TokenVerifier[]
  readonly settings: AuthSettings
}

/** Validates the strategy's options and prepares the request decision. @internal */
export function normalizeStrategyOptions(
  options: AgentPressPartnerStrategyOptions,
  verify: VerifyFunction | VerifyFunctionWithRequest,
): StrategyParts {
  optionsObject(options, 'AgentPressPartnerStrategy options must be an object')
  if (typeof verify !== 'function') {
    throw new TypeError('AgentPressPartnerStrategy requires a verify callback')
  }
  rejectUnknownKeys(options, KNOWN_OPTIONS, 'AgentPressPartnerStrategy')
  const name = optionalName(options.name)
  const realm = checkRealm(options.realm)
  const explicitMetadataUrl = checkResourceMetadataUrl(options.resourceMetadataUrl)
  const requiredScopes = checkScopes(options.requiredScopes, 'options.requiredScopes', true)
  const implication = checkImplication(options.implies, 'options.implies')
  const passReqToCallback = optionalBoolean(options.passReqToCallback, 'options.passReqToCallback')
  const tokenFromRequest = optionalFunction(
    options.tokenFromRequest,
    'options.tokenFromRequest must be a function',
  )
  const verifiers = Object.freeze(buildVerifiers(options))
  const context: ChallengeContext = Object.freeze({
    realm,
    resourceMetadataUrl:
      explicitMetadataUrl === undefined
        ? derivedMetadataUrl(verifiers)
        : explicitMetadataUrl || undefined,
    // Recorded on each request too, so a refusal rendered later (refusalOf, the JSON renderers)
    // names the same scopes as the challenge the strategy sent.
    scope: requiredScopes,
  })
  const verifier = verifiers.length > 1 ? new MultiIssuerVerifier(verifiers) : verifiers[0]!
  const settings: AuthSettings = Object.freeze({
    context,
    requiredScopes,
    implication,
    passReqToCallback,
    tokenFromRequest,
    verify,
    verifyToken: verifyTokenOf(verifier),
    parsesFirst:
      verifier instanceof MultiIssuerVerifier || verifier instanceof PartnerTokenVerifier,
    resourceOf: resourceResolver(verifier, verifiers),
    challenges: renderChallenges(context, requiredScopes),
    route: routeState(context, implication),
  })
  return { name, verifiers, settings }
}

// Every reason's challenge, rendered once: 401s and the 403 name the required scopes.
function renderChallenges(
  context: ChallengeContext,
  requiredScopes: readonly string[],
): AuthSettings['challenges'] {
  const challenges = {} as Record<AuthErrorReason, string | undefined>
  for (const reason of Object.keys(AUTH_ERRORS) as AuthErrorReason[]) {
    challenges[reason] = challengeFor(reason, context, requiredScopes)
  }
  return Object.freeze(challenges)
}

/**
 * `settings` for a route that needs `scope` as well (`passport.authenticate(name, { scope })`,
 * `authenticatePartner(…, { scope })`): the union is checked (403) and named in every challenge.
 *
 * @throws {TypeError} when `scope` is not a non-empty list of scope tokens (`name` says whose).
 * @internal
 */
export function withRouteScopes(
  settings: AuthSettings,
  scope: unknown,
  name: string,
): AuthSettings {
  const route = checkScopes(scope, name, false)
  const requiredScopes = Object.freeze([...new Set([...settings.requiredScopes, ...route])])
  const context = Object.freeze({ ...settings.context, scope: requiredScopes })
  return Object.freeze({
    ...settings,
    context,
    requiredScopes,
    challenges: renderChallenges(context, requiredScopes),
    route: routeState(context, settings.implication, settings.route.format),
  })
}

// Ours answer synchronously when the key is cached (unless `verifyToken` was replaced on the
// instance, as a test double does); any other verifier through its promise. Ours parse first
// (`parsesFirst`); a replaced `verifyToken` is held to the same: a token that is no b64token is
// `malformed` before it is called.
function verifyTokenOf(verifier: TokenVerifier): AuthSettings['verifyToken'] {
  if (verifier instanceof MultiIssuerVerifier) return verifier.verifyNow.bind(verifier)
  if (verifier instanceof PartnerTokenVerifier) {
    const own = PartnerTokenVerifier.prototype.verifyToken
    return (token) => {
      if (verifier.verifyToken === own) return verifier.verifyNow(token)
      if (!isB64Token(token)) throw new PartnerTokenError('malformed')
      return verifier.verifyToken(token)
    }
  }
  return (token) => verifier.verifyToken(token)
}

function buildVerifiers(options: AgentPressPartnerStrategyOptions): TokenVerifier[] {
  const { partnerMcp, verifier } = options
  if ((partnerMcp === undefined) === (verifier === undefined)) {
    throw new TypeError(
      'AgentPressPartnerStrategy needs exactly one of options.partnerMcp or options.verifier',
    )
  }
  if (partnerMcp !== undefined) {
    return nonEmptyList(partnerMcp, 'options.partnerMcp').map(
      (entry) => new PartnerTokenVerifier(entry),
    )
  }
  const list = nonEmptyList(verifier!, 'options.verifier')
  list.forEach((entry, i) => {
    if (entry === null || typeof entry !== 'object' || typeof entry.verifyToken !== 'function') {
      throw new TypeError(
        `options.verifier${list.length > 1 ? `[${i}]` : ''} must have a verifyToken(token) method`,
      )
    }
  })
  return [...list]
}

function nonEmptyList<T>(value: T | readonly T[], name: string): readonly T[] {
  if (!Array.isArray(value)) return [value as T]
  if (value.length === 0) throw new TypeError(`${name} must not be an empty array`)
  return value as readonly T[]
}

function checkRealm(value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '' || !isChallengeSafe(value)) {
    throw new TypeError(
      'options.realm must be a non-empty string of RFC 6750 characters (%x20-21 / %x23-5B / %x5D-7E)',
    )
  }
  return value
}

function optionalName(value: unknown): string {
  if (value === undefined) return STRATEGY_NAME
  if (typeof value !== 'string' || value === '')
    throw new TypeError('options.name must be a non-empty string')
  return value
}
