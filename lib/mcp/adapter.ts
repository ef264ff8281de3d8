/**
 * The adapter behind `passport-agentpress-partner/mcp`, bound to whichever copy of the MCP SDK's
 * error classes the caller uses (its CommonJS or its ESM build): `requireBearerAuth` recognises
 * only its own copy's classes.
 *
 * @internal
 */
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'

import type { PartnerTokenClaims } from '../core/token/claims.js'
import { verifierRefusal } from '../core/refusals/refusal-errors.js'
import { MultiIssuerVerifier } from '../core/verifier/multi-issuer-verifier.js'
import { AUTH_ERRORS } from '../core/refusals/reasons.js'
import { parseScope } from '../core/token/scope.js'
import { optionalFunction, optionsObject, rejectUnknownKeys } from '../core/validate.js'
import type { TokenVerifier } from '../core/verifier/verifier.js'
import { mcpAuthInfoOf } from '../http/auth-info.js'
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

/** The three SDK error classes the adapter throws, from one copy of the SDK. @internal */
export interface SdkErrorClasses {
  readonly InvalidTokenError: new (message: string) => Error
  readonly ServerError: new (message: string) => Error
  readonly CustomOAuthError: new (code: string, message: string) => Error
}

/** `partnerTokenVerifier` with the SDK error classes it throws. @internal */
export function adaptVerifier<User>(
  errors: SdkErrorClasses,
  verifier: TokenVerifier | readonly TokenVerifier[],
  options: PartnerTokenVerifierAdapterOptions<User> = {},
): OAuthTokenVerifier {
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

  // Our refusal (from this copy of the package or another) as the SDK error class that gives the
  // right answer; anything else unchanged (the SDK answers it 500 without its message).
  const translated = (err: unknown): unknown => {
    const reason = verifierRefusal(err)
    if (reason === undefined) return err
    const { description } = AUTH_ERRORS[reason]
    return reason === 'jwks_unavailable'
      ? new errors.ServerError(description)
      : new errors.InvalidTokenError(description)
  }

  return {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
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
        throw new errors.CustomOAuthError(entry.error!, entry.description)
      }
      return mcpAuthInfoOf(token, claims, scopes, user, resourceOf(claims))
    },
  }
}
