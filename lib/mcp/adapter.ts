/**
 * The adapter behind `passport-agentpress-partner/mcp` (MCP SDK v1) and `…/mcp/v2` (MCP SDK v2),
 * bound to the errors of the SDK the caller uses: each SDK's `requireBearerAuth` decides its answer
 * from the error `verifyAccessToken` throws, and recognises only its own error types. This file
 * names no SDK, so neither entry's declarations pull in the other SDK's types.
 *
 * @internal
 */
import type { PartnerTokenClaims } from '../core/token/claims.js'
import { verifierRefusal } from '../core/refusals/refusal-errors.js'
import { MultiIssuerVerifier } from '../core/verifier/multi-issuer-verifier.js'
import { AUTH_ERRORS } from '../core/refusals/reasons.js'
import { parseScope } from '../core/token/scope.js'
import { optionalFunction, optionsObject, rejectUnknownKeys } from '../core/validate.js'
import type { TokenVerifier } from '../core/verifier/verifier.js'
import { mcpAuthInfoOf, type McpAuthInfo } from '../http/auth-info.js'
import { resourceResolver } from '../passport/resource.js'

/**
 * Options of {@link partnerTokenVerifier}.
 *
 * @example
 * ```ts
 * const options: PartnerTokenVerifierAdapterOptions<User> = {
 *   resolveUser: (claims) => users.findByExternalId(claims.ext_provider, claims.sub),
 * }
 * ```
 */
export interface PartnerTokenVerifierAdapterOptions<User = unknown> {
  /**
   * Resolves verified claims to a local user, like the strategy's `verify` callback: the user
   * goes to `authInfo.extra.user`; `false`, `null` or `undefined` refuses the request
   * (`user_not_provisioned`); a throw or rejection is a server error. Without it no user is
   * resolved and `extra.user` is `undefined`.
   */
  resolveUser?:
    | ((
        claims: PartnerTokenClaims,
      ) => User | false | null | undefined | PromiseLike<User | false | null | undefined>)
    | undefined
}

const KNOWN = new Set(['resolveUser'])

/**
 * The three answers the adapter needs, as errors of one SDK (one copy of it):
 *
 * - `invalidToken` → the SDK's 401 `invalid_token` with the description;
 * - `serverError` → the SDK's server-error answer (500 `server_error`), used for every outage:
 *   never a 401, so AgentPress retries instead of treating a good token as bad;
 * - `oauthError` → any other OAuth error code (the SDKs answer it 400).
 *
 * @internal
 */
export interface SdkErrors {
  readonly invalidToken: (description: string) => Error
  readonly serverError: (description: string) => Error
  readonly oauthError: (code: string, description: string) => Error
}

/**
 * What {@link partnerTokenVerifier} returns: the `OAuthTokenVerifier` of either SDK (v1's and
 * v2's interface are the same method), returning the `AuthInfo` our strategy sets as `req.auth`.
 *
 * @example
 * ```ts
 * const auth: McpAuthInfo = await verifier.verifyAccessToken(token)
 * ```
 */
export interface PartnerOAuthTokenVerifier {
  verifyAccessToken(token: string): Promise<McpAuthInfo>
}

/** `partnerTokenVerifier` with the SDK error classes it throws. @internal */
export function adaptVerifier<User>(
  errors: SdkErrors,
  verifier: TokenVerifier | readonly TokenVerifier[],
  options: PartnerTokenVerifierAdapterOptions<User> = {},
): PartnerOAuthTokenVerifier {
  const list: readonly TokenVerifier[] = Array.isArray(verifier) ? verifier : [verifier]
  if (list.length === 0 || !list.every((v) => typeof v?.verifyToken === 'function')) {
    throw new TypeError(
      'partnerTokenVerifier() needs a verifier with a verifyToken(token) method, or a non-empty array of them',
    )
  }
  optionsObject(options, 'partnerTokenVerifier() options must be an object')
  rejectUnknownKeys(options, KNOWN, 'partnerTokenVerifier')
  const resolveUser = optionalFunction(
    options.resolveUser,
    'partnerTokenVerifier() options.resolveUser must be a function',
  )
  const one = list.length === 1 ? list[0]! : new MultiIssuerVerifier(list)
  const resourceOf = resourceResolver(one, list)

  // Our refusal (from this copy of the package or another) as the SDK error that gives the right
  // answer: a refusal of §4 is a bad token (401); an outage (JWKS, replay store, Redis fleet) is
  // the SDK's server error, never a 401. Anything else unchanged (the SDK answers it 500 without
  // its message).
  const translated = (err: unknown): unknown => {
    const reason = verifierRefusal(err)
    if (reason === undefined) return err
    const { description } = AUTH_ERRORS[reason]
    return reason === 'jwks_unavailable' || reason === 'replay_unavailable'
      ? errors.serverError(description)
      : errors.invalidToken(description)
  }

  return {
    async verifyAccessToken(token: string): Promise<McpAuthInfo> {
      let claims: PartnerTokenClaims
      try {
        claims = await one.verifyToken(token)
      } catch (err) {
        throw translated(err)
      }
      const scopes = parseScope(typeof claims.scope === 'string' ? claims.scope : '')
      const user = resolveUser === undefined ? undefined : await resolveUser(claims)
      if (resolveUser !== undefined && (user === false || user === null || user === undefined)) {
        const entry = AUTH_ERRORS.user_not_provisioned
        throw errors.oauthError(entry.error!, entry.description)
      }
      return mcpAuthInfoOf(token, claims, scopes, user, resourceOf(claims))
    },
  }
}
