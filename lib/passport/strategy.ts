/**
 * The Passport adapter: `AgentPressPartnerStrategy` reads the bearer token, routes it to the
 * verifier of its issuer, resolves the user through the application's `verify` callback and maps
 * every outcome onto Passport's actions so that plain `passport.authenticate(...)` answers §4.
 *
 * The decision itself is `http/authenticate.ts`, shared with the Passport-free middleware; the
 * action each outcome takes is the table's (`core/reasons.ts`):
 * - a 401 row (no credentials, another scheme, every token failure) is `fail(challenge)`:
 *   Passport then tries the next strategy of a chain and, when all fail, answers 401 with every
 *   challenge in `WWW-Authenticate`. Passport sets that header only for a 401, so nothing else may
 *   use `fail`.
 * - any other row (400, 403, 503) is `error(err)` with an {@link AgentPressAuthError}, whose
 *   `status` and `headers` the default error handler of Express and Connect (`finalhandler`)
 *   renders as is.
 * - Every header value comes from the fixed table and the validated options: nothing from the
 *   request is ever reflected (a CR/LF in a header set from async code would throw inside
 *   `setHeader` and kill the process).
 */
import type { IncomingMessage } from 'node:http'
import PassportStrategy from 'passport-strategy'

import type { TokenVerifier } from '../core/verifier/verifier.js'
import {
  statusesOf,
  warmUpAll,
  type JwksStatus,
  type WarmUpResult,
} from '../core/jwks/readiness.js'
import {
  authenticate,
  type AuthActions,
  type AuthSettings,
  type VerifyFunction,
  type VerifyFunctionWithRequest,
} from '../http/authenticate.js'
import type { VerifyRequest } from '../http/verify-callback.js'
import {
  normalizeStrategyOptions,
  withRouteScopes,
  type AgentPressPartnerStrategyOptions,
} from './options.js'

export type {
  AgentPressAuthInfo,
  McpAuthInfo,
  VerifyDone,
  VerifyFunction,
  VerifyFunctionWithRequest,
} from '../http/authenticate.js'
export type { AgentPressTypes, VerifyRequest, VerifyResult } from '../http/verify-callback.js'
export type { AgentPressPartnerStrategyOptions } from './options.js'

// `T`, but not a place to infer it from (TypeScript 5.4's NoInfer, in a form 4.9 understands):
// the user type is the application's declaration (or the explicit type argument), never guessed
// from what verify happens to return.
type NoInferred<T> = [T][T extends unknown ? 0 : never]

// passport-strategy's constructor, typed locally so the published .d.ts needs no @types package.
const Base = PassportStrategy as unknown as new () => { name?: string | undefined }

/**
 * Passport strategy for AgentPress partner MCP tokens (EdDSA JWTs checked against each trusted
 * issuer's JWKS). See §4 for every response it produces.
 *
 * @example
 * ```ts
 * import passport from 'passport'
 * import { AgentPressPartnerStrategy } from 'passport-agentpress-partner'
 *
 * passport.use(
 *   new AgentPressPartnerStrategy(
 *     {
 *       partnerMcp: {
 *         issuer: 'https://api.agent.press/orgs/acme',
 *         audience: 'https://mcp.example.com/mcp',
 *         expectedExtProvider: 'example',
 *       },
 *       realm: 'mcp',
 *       resourceMetadataUrl: 'https://mcp.example.com/.well-known/oauth-protected-resource',
 *     },
 *     async (claims) => users.findByExternalId(claims.sub), // null → 403 user_not_provisioned
 *   ),
 * )
 * app.post('/mcp', passport.authenticate('agentpress-partner', { session: false }), mcpHandler)
 * ```
 */
export class AgentPressPartnerStrategy<
  User = Express.User,
  Req extends IncomingMessage = VerifyRequest,
> extends Base {
  /** The strategy name (`'agentpress-partner'` unless overridden). */
  override name: string
  /**
   * The verifiers this strategy trusts, one per issuer, in configuration order. The key-rotation
   * router can be built from the same list, so a rotation refreshes the keys requests use.
   */
  readonly verifiers: readonly TokenVerifier[]

  // Two signatures, no catch-all: `passReqToCallback: true` takes a three-argument verify (a
  // two-argument one would get the request as its claims), anything else the claims first. A
  // non-literal boolean needs a cast; the run time accepts either shape as JavaScript passes it.
  constructor(
    options: AgentPressPartnerStrategyOptions & { passReqToCallback?: false | undefined },
    verify: VerifyFunction<NoInferred<User>>,
  )
  constructor(
    options: AgentPressPartnerStrategyOptions & { passReqToCallback: true },
    verify: VerifyFunctionWithRequest<NoInferred<User>, Req>,
  )
  constructor(
    options: AgentPressPartnerStrategyOptions,
    verify: VerifyFunction<User> | VerifyFunctionWithRequest<User, Req>,
  ) {
    super()
    // At run time the request is whatever the framework passes; `Req` only types it for verify.
    const run = verify as VerifyFunction | VerifyFunctionWithRequest
    const { name, verifiers, settings } = normalizeStrategyOptions(options, run)
    this.name = name
    this.verifiers = verifiers
    // Passport runs each request on `Object.create(strategy)`, where `#private` fields are out of
    // reach; the settings are therefore a non-enumerable property the copies inherit.
    Object.defineProperty(this, SETTINGS, { value: settings })
  }

  /**
   * Called by Passport once per request, on a per-request copy (`Object.create(strategy)`) that
   * carries `success`, `fail` and `error`. Never throws and never rejects: every outcome becomes
   * exactly one action.
   *
   * `options` are those given to `passport.authenticate(name, options)`. Without
   * `session: false` every request is refused with a `TypeError` saying so (a server error, so
   * the mistake shows on the first request): MCP servers MUST NOT use sessions for
   * authentication, and Passport would otherwise log the user into a session — or, with no
   * session middleware, fail after the token was accepted.
   */
  authenticate(req: IncomingMessage, options?: unknown): void {
    const actions = this as unknown as AuthActions
    if (options === undefined) return authenticate(settingsOf(this), req, actions)
    const route = options as { session?: unknown; scope?: unknown } | null
    if (route?.session !== false) return actions.error(new TypeError(SESSION_REFUSED))
    let settings: AuthSettings
    try {
      settings = routeSettings(settingsOf(this), route)
    } catch (err) {
      return actions.error(err)
    }
    authenticate(settings, req, actions)
  }

  /**
   * Fetches every configured JWKS now (at boot, before accepting traffic) and resolves with each
   * issuer's status; never rejects: an unreachable JWKS is `ready: false` with its failure reason.
   *
   * @example
   * ```ts
   * const { ready, issuers } = await strategy.warmUp()
   * for (const s of issuers) if (s.state !== 'fresh') console.warn(s.issuer, s.lastFailureReason)
   * ```
   */
  warmUp(): Promise<WarmUpResult> {
    return warmUpAll(this.verifiers)
  }

  /** The readiness of each issuer's key set now (what `readinessHandler` serves). */
  jwksStatuses(): JwksStatus[] {
    return statusesOf(this.verifiers)
  }
}

const SETTINGS = Symbol('passport-agentpress-partner.settings')

// `passport.authenticate(name, options)` builds its options once per route and hands the same
// object to every request: the route's settings are derived once per options object.
const ROUTES = new WeakMap<AuthSettings, WeakMap<object, AuthSettings>>()

function routeSettings(base: AuthSettings, options: { scope?: unknown }): AuthSettings {
  if (options.scope === undefined) return base
  let routes = ROUTES.get(base)
  if (routes === undefined) ROUTES.set(base, (routes = new WeakMap()))
  let settings = routes.get(options)
  if (settings === undefined) {
    try {
      settings = withRouteScopes(base, options.scope, 'passport.authenticate() options.scope')
    } catch (err) {
      throw new TypeError(
        `${(err as Error).message} (Passport gives a strategy no hook when a route is mounted, so this shows on the first request; authenticatePartner(strategy, { scope }) checks it at mount time)`,
      )
    }
    routes.set(options, settings)
  }
  return settings
}

const SESSION_REFUSED =
  'passport.authenticate() needs { session: false } for this strategy: MCP servers must not use sessions for authentication (every request carries its own token)'

/**
 * The prepared request decision of a strategy (or of a per-request copy of one).
 *
 * @internal
 */
export function settingsOf(strategy: object): AuthSettings {
  const settings = (strategy as { [SETTINGS]?: AuthSettings })[SETTINGS]
  if (settings === undefined) {
    throw new TypeError('AgentPressPartnerStrategy#authenticate called on a foreign object')
  }
  return settings
}
