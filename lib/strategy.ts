/**
 * The Passport adapter: `AgentPressPartnerStrategy` reads the bearer token, routes it to the
 * verifier of its issuer, resolves the user through the application's `verify` callback and maps
 * every outcome onto Passport's actions so that plain `passport.authenticate(...)` answers SPEC §4.
 *
 * Why each outcome takes the action it does:
 * - 401-class outcomes (no credentials, another scheme, every token failure) are `fail(challenge)`:
 *   Passport then tries the next strategy of a chain and, when all fail, answers 401 with every
 *   challenge in `WWW-Authenticate`. Passport sets that header only for a 401, so nothing else may
 *   use `fail`.
 * - 400, 403 and 503 are `error(err)` with an {@link AgentPressAuthError}, whose `status` and
 *   `headers` the default error handler of Express and Connect (`finalhandler`) renders as is.
 * - Every header value comes from the fixed table of `core/errors.ts` and the validated options:
 *   nothing from the request is ever reflected (a CR/LF in a header set from async code would
 *   throw inside `setHeader` and kill the process).
 */
import type { IncomingMessage } from 'node:http'
import PassportStrategy from 'passport-strategy'

import { challengeFor, isChallengeSafe, type ChallengeContext } from './core/challenge.js'
import { checkScopes, parseScope } from './core/scope.js'
import {
  AgentPressAuthError,
  AgentPressHttpError,
  JwksUnavailableError,
  PartnerTokenError,
} from './core/errors.js'
import {
  PARTNER_TOKEN_ERROR_REASONS,
  type AuthErrorReason,
  type PartnerTokenErrorReason,
} from './core/reasons.js'
import { readBearerToken } from './core/bearer.js'
import { MultiIssuerVerifier } from './core/multi-issuer-verifier.js'
import type { PartnerTokenClaims } from './core/claims.js'
import type { PartnerTokenVerifierOptions } from './core/verifier-options.js'
import {
  optionalBoolean,
  optionalFunction,
  optionsObject,
  rejectUnknownKeys,
} from './core/validate.js'
import { PartnerTokenVerifier, type TokenVerifier } from './core/verifier.js'
import { mcpAuthInfo } from './mcp-auth-info.js'

/**
 * The default strategy name, as used in `passport.authenticate('agentpress-partner')`.
 *
 * @example
 * ```ts
 * app.post('/mcp', passport.authenticate(STRATEGY_NAME, { session: false }), mcpHandler)
 * ```
 */
export const STRATEGY_NAME = 'agentpress-partner'

/**
 * Where the strategy records why it refused a request, so that the JSON renderers of
 * `middleware.ts` can describe a Passport `fail` (which reaches them only as a bare
 * `AuthenticationError`).
 *
 * @internal
 */
export const FAILURE_REASON: unique symbol = Symbol.for('passport-agentpress-partner.failure')

/**
 * Where the strategy records its realm and resource metadata URL, so that `requireScopes` after it
 * answers with the same challenge parameters.
 *
 * @internal
 */
export const CHALLENGE_CONTEXT: unique symbol = Symbol.for('passport-agentpress-partner.context')

/**
 * The callback a `verify` function reports its decision through (Passport's `done`).
 *
 * @example
 * ```ts
 * const verify = (claims: PartnerTokenClaims, done: VerifyDone<User>) =>
 *   users.find(claims.sub).then((user) => done(null, user ?? false), done)
 * ```
 */
export type VerifyDone<User = unknown> = (
  err?: unknown,
  user?: User | false | null,
  info?: unknown,
) => void

/**
 * Resolves verified claims to a local user: `done(null, user)` or resolve with the user to accept;
 * `done(null, false)` or resolve with `false`, `null` or `undefined` for 403 `user_not_provisioned`;
 * `done(err)`, a throw or a rejection for a server error. The first decision counts: a promise
 * that settles before `done` is called decides, and a later `done` is ignored.
 *
 * @example
 * ```ts
 * const verify: VerifyFunction<User> = async (claims) => users.findByExternalId(claims.sub)
 * ```
 */
export type VerifyFunction<User = unknown> = (
  claims: PartnerTokenClaims,
  done: VerifyDone<User>,
) => unknown

/**
 * {@link VerifyFunction} with the request first (`passReqToCallback: true`).
 *
 * @example
 * ```ts
 * const verify: VerifyFunctionWithRequest<User> = async (req, claims) =>
 *   users.findInTenant(req.headers.host, claims.sub)
 * ```
 */
export type VerifyFunctionWithRequest<User = unknown> = (
  req: IncomingMessage,
  claims: PartnerTokenClaims,
  done: VerifyDone<User>,
) => unknown

interface CommonOptions {
  /** `realm="…"` in every challenge. RFC 6750 characters only (%x20-21 / %x23-5B / %x5D-7E). */
  realm?: string | undefined
  /** RFC 9728 Protected Resource Metadata URL, sent as `resource_metadata="…"` in every challenge. */
  resourceMetadataUrl?: string | undefined
  /** Scopes every request must carry, all of them (flat set, no wildcards); else 403. */
  requiredScopes?: readonly string[] | undefined
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
 * Options of {@link AgentPressPartnerStrategy}: exactly one of `partnerMcp` (verifier options, one
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

/**
 * What `req.authInfo` holds after a success: the verified claims, the granted scopes, the issuer
 * that vouched for them, and whatever object the `verify` callback passed as `info` (our fields win).
 *
 * @example
 * ```ts
 * const { claims, scopes, issuer } = req.authInfo as AgentPressAuthInfo
 * ```
 */
export interface AgentPressAuthInfo {
  /** The verified claims. */
  readonly claims: PartnerTokenClaims
  /** The granted scopes (`scope` claim split on spaces). */
  readonly scopes: string[]
  /** The `iss` of the token. */
  readonly issuer: string
  readonly [key: string]: unknown
}

/**
 * The MCP TypeScript SDK's `AuthInfo` shape (`@modelcontextprotocol/sdk/server/auth/types.js`),
 * set as `req.auth` so the SDK's transports hand it to tool handlers as `extra.authInfo`.
 *
 * `clientId` is the `ext_provider` claim: the name of the integration AgentPress calls us as, the
 * analogue of an OAuth client registration. The end user is `sub` (in `extra.claims`) and the
 * resolved local user is `extra.user`; a user id never goes into `clientId`.
 *
 * @example
 * ```ts
 * server.tool('whoami', async (_args, extra) => ({
 *   content: [{ type: 'text', text: String((extra.authInfo as McpAuthInfo).extra?.claims) }],
 * }))
 * ```
 */
export interface McpAuthInfo {
  /** The bearer token as received. */
  token: string
  /** The `ext_provider` claim. */
  clientId: string
  /** The granted scopes. */
  scopes: string[]
  /** `exp`, in seconds since the epoch. */
  expiresAt?: number
  /** The audience this token was verified for, when it is a URL. */
  resource?: URL
  /** `claims`: the verified claims; `user`: what `verify` resolved. */
  extra?: Record<string, unknown>
}

// The actions Passport adds to each per-request strategy instance (see passport's authenticate.js).
interface PassportActions {
  success(user: unknown, info?: unknown): void
  fail(challenge?: string | number, status?: number): void
  error(err: unknown): void
}

// passport-strategy's constructor, typed locally so the published .d.ts needs no @types package.
const Base = PassportStrategy as unknown as new () => { name?: string | undefined }

const KNOWN_OPTIONS = new Set([
  'partnerMcp',
  'verifier',
  'realm',
  'resourceMetadataUrl',
  'requiredScopes',
  'passReqToCallback',
  'tokenFromRequest',
  'name',
])

type Outcome =
  | { readonly kind: 'success'; readonly user: unknown; readonly info: unknown }
  | { readonly kind: 'fail'; readonly reason: AuthErrorReason }
  | { readonly kind: 'error'; readonly error: unknown }

/**
 * Passport strategy for AgentPress partner MCP tokens (EdDSA JWTs checked against each trusted
 * issuer's JWKS). See SPEC §4 for every response it produces.
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
export class AgentPressPartnerStrategy<User = unknown> extends Base {
  /** The strategy name (`'agentpress-partner'` unless overridden). */
  override name: string
  /**
   * The verifiers this strategy trusts, one per issuer, in configuration order. The key-rotation
   * router can be built from the same list, so a rotation refreshes the keys requests use.
   */
  readonly verifiers: readonly TokenVerifier[]

  constructor(
    options: AgentPressPartnerStrategyOptions & { passReqToCallback?: false | undefined },
    verify: VerifyFunction<User>,
  )
  constructor(
    options: AgentPressPartnerStrategyOptions & { passReqToCallback: true },
    verify: VerifyFunctionWithRequest<User>,
  )
  constructor(
    options: AgentPressPartnerStrategyOptions,
    verify: VerifyFunction<User> | VerifyFunctionWithRequest<User>,
  )
  constructor(
    options: AgentPressPartnerStrategyOptions,
    verify: VerifyFunction<User> | VerifyFunctionWithRequest<User>,
  ) {
    super()
    optionsObject(options, 'AgentPressPartnerStrategy options must be an object')
    if (typeof verify !== 'function') {
      throw new TypeError('AgentPressPartnerStrategy requires a verify callback')
    }
    rejectUnknownKeys(options, KNOWN_OPTIONS, 'AgentPressPartnerStrategy')
    this.name = optionalName(options.name)
    const context: ChallengeContext = Object.freeze({
      realm: checkRealm(options.realm),
      resourceMetadataUrl: checkResourceMetadataUrl(options.resourceMetadataUrl),
    })
    const requiredScopes = checkScopes(options.requiredScopes, 'options.requiredScopes', true)
    const passReqToCallback = optionalBoolean(
      options.passReqToCallback,
      'options.passReqToCallback',
    )
    const tokenFromRequest = optionalFunction(
      options.tokenFromRequest,
      'options.tokenFromRequest must be a function',
    )

    const audiences = new Map<TokenVerifier, string>()
    const verifiers = Object.freeze(buildVerifiers(options, audiences))
    this.verifiers = verifiers
    STATE.set(this, {
      context,
      requiredScopes,
      passReqToCallback,
      tokenFromRequest,
      verify: verify as VerifyFunction | VerifyFunctionWithRequest,
      verifier: verifiers.length > 1 ? new MultiIssuerVerifier(verifiers) : verifiers[0]!,
      resources: resourcesOf(verifiers, audiences),
    })
  }

  /**
   * Called by Passport once per request, on a per-request copy (`Object.create(strategy)`) that
   * carries `success`, `fail` and `error`. Never throws and never rejects: every outcome becomes
   * exactly one action.
   */
  authenticate(req: IncomingMessage, _options?: unknown): void {
    const state = stateOf(this)
    const actions = this as unknown as PassportActions
    const request = req as RequestWithState
    request[CHALLENGE_CONTEXT] = state.context
    let delivered = false
    const deliver = (outcome: Outcome): void => {
      if (delivered) return
      delivered = true
      try {
        act(state, actions, request, outcome)
      } catch (err) {
        // Thrown by Passport or by what it called (e.g. a challenge of another strategy that
        // setHeader refuses): report it like any other server error instead of crashing.
        actions.error(err)
      }
    }

    let token: string
    try {
      const extracted = extract(state, req)
      if (typeof extracted !== 'string') return deliver(extracted)
      token = extracted
    } catch (err) {
      return deliver({ kind: 'error', error: err })
    }
    decide(state, request, token).then(deliver, (err: unknown) =>
      deliver({ kind: 'error', error: err }),
    )
  }
}

interface State {
  readonly context: ChallengeContext
  readonly requiredScopes: readonly string[]
  readonly passReqToCallback: boolean
  readonly tokenFromRequest: ((req: IncomingMessage) => string | null | undefined) | undefined
  readonly verify: VerifyFunction | VerifyFunctionWithRequest
  // The one verifier, or a MultiIssuerVerifier routing by the token's issuer.
  readonly verifier: TokenVerifier
  // verifier → its configured audience when that is a URL, for `req.auth.resource`.
  readonly resources: ReadonlyMap<TokenVerifier, string>
}

// Passport runs each request on `Object.create(strategy)`, where `#private` fields are out of
// reach; the state therefore lives here, keyed by the configured instance.
const STATE = new WeakMap<object, State>()

function stateOf(strategy: object): State {
  for (let o: object | null = strategy; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const state = STATE.get(o)
    if (state !== undefined) return state
  }
  throw new TypeError('AgentPressPartnerStrategy#authenticate called on a foreign object')
}

type RequestWithState = IncomingMessage & {
  [FAILURE_REASON]?: AuthErrorReason
  [CHALLENGE_CONTEXT]?: ChallengeContext
  auth?: McpAuthInfo
}

// Maps an outcome onto one Passport action.
function act(
  state: State,
  actions: PassportActions,
  req: RequestWithState,
  outcome: Outcome,
): void {
  if (outcome.kind === 'success') return actions.success(outcome.user, outcome.info)
  if (outcome.kind === 'error') return actions.error(asError(outcome.error))
  const { reason } = outcome
  req[FAILURE_REASON] = reason
  switch (reason) {
    case 'jwks_unavailable':
      return actions.error(new JwksUnavailableError())
    case 'invalid_request':
    case 'user_not_provisioned':
    case 'insufficient_scope':
      return actions.error(
        new AgentPressHttpError(reason, { ...state.context, scope: state.requiredScopes }),
      )
    default:
      // no_credentials and the ten token reasons: a Passport failure, so a chain goes on.
      return actions.fail(challengeFor(reason, state.context))
  }
}

// The token, or the outcome when the request carries none or a malformed header.
function extract(state: State, req: IncomingMessage): string | Outcome {
  const custom = state.tokenFromRequest
  if (custom === undefined) {
    const bearer = readBearerToken(req)
    return 'token' in bearer ? bearer.token : { kind: 'fail', reason: bearer.reason }
  }
  const value = custom(req)
  if (value === undefined || value === null || value === '') {
    return { kind: 'fail', reason: 'no_credentials' }
  }
  if (typeof value !== 'string') {
    throw new TypeError('options.tokenFromRequest must return a string, null or undefined')
  }
  return value
}

async function decide(state: State, req: RequestWithState, token: string): Promise<Outcome> {
  let claims: PartnerTokenClaims
  try {
    claims = await state.verifier.verifyToken(token)
  } catch (err) {
    const reason = tokenFailureReason(err)
    if (reason !== undefined) return { kind: 'fail', reason }
    if (isJwksUnavailable(err)) return { kind: 'fail', reason: 'jwks_unavailable' }
    return { kind: 'error', error: err }
  }

  // Checked before the user lookup: a token that cannot be used costs no database call.
  const scopes = parseScope(typeof claims.scope === 'string' ? claims.scope : '')
  for (const scope of state.requiredScopes) {
    if (!scopes.includes(scope)) return { kind: 'fail', reason: 'insufficient_scope' }
  }

  const decision = await callVerify(state, req, claims)
  if (decision.kind !== 'resolved') return decision
  const { user, info } = decision
  if (user === false || user === null || user === undefined) {
    return { kind: 'fail', reason: 'user_not_provisioned' }
  }

  const authInfo: AgentPressAuthInfo =
    info !== null && typeof info === 'object' && !Array.isArray(info)
      ? { ...info, claims, scopes, issuer: claims.iss }
      : { claims, scopes, issuer: claims.iss }
  // Passport sets only req.user and req.authInfo; the MCP SDK's transports read req.auth.
  req.auth = mcpAuthInfo(token, claims, scopes, resourceOf(state, claims), user)
  return { kind: 'success', user, info: authInfo }
}

// Runs the application's callback in any of its styles; the first decision wins, later ones are
// ignored. A synchronous throw rejects the executor, which `authenticate` turns into `error`.
function callVerify(
  state: State,
  req: IncomingMessage,
  claims: PartnerTokenClaims,
): Promise<{ kind: 'resolved'; user: unknown; info: unknown } | Outcome> {
  return new Promise((resolve) => {
    const done: VerifyDone = (err, user, info) => {
      if (err) resolve({ kind: 'error', error: err })
      else resolve({ kind: 'resolved', user, info })
    }
    const returned = state.passReqToCallback
      ? (state.verify as VerifyFunctionWithRequest)(req, claims, done)
      : (state.verify as VerifyFunction)(claims, done)
    if (isThenable(returned)) {
      returned.then(
        (user) => resolve({ kind: 'resolved', user, info: undefined }),
        (err: unknown) => resolve({ kind: 'error', error: err }),
      )
    }
  })
}

// A falsy error passed to Passport's `error()` would reach `next(undefined)` and let the request
// through unauthenticated; anything we pass on is therefore a real value.
function asError(err: unknown): unknown {
  if (err) return err
  return new Error('AgentPressPartnerStrategy: verify callback failed without an error value')
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

// Recognises token failures from any copy of this package (or an adapter mimicking it).
function tokenFailureReason(err: unknown): PartnerTokenErrorReason | undefined {
  if (err instanceof PartnerTokenError) return err.reason
  if (err instanceof Error && err.name === 'PartnerTokenError') {
    const reason = (err as { reason?: unknown }).reason
    if (PARTNER_TOKEN_ERROR_REASONS.includes(reason as PartnerTokenErrorReason)) {
      return reason as PartnerTokenErrorReason
    }
  }
  return undefined
}

function isJwksUnavailable(err: unknown): boolean {
  return (
    err instanceof JwksUnavailableError ||
    (err instanceof AgentPressAuthError && err.reason === 'jwks_unavailable') ||
    (err instanceof Error && err.name === 'JwksUnavailableError')
  )
}

function audienceOf(verifier: TokenVerifier): string | undefined {
  if (verifier instanceof PartnerTokenVerifier) return verifier.options.audience
  const audience = (verifier as { audience?: unknown }).audience
  return typeof audience === 'string' ? audience : undefined
}

// The resource the token was verified for: the verifier's configured audience (which `aud` was
// checked to contain), found without parsing anything per request; else a lone `aud` URL.
function resourceOf(state: State, claims: PartnerTokenClaims): string | undefined {
  const verifier =
    state.verifier instanceof MultiIssuerVerifier
      ? state.verifier.verifierFor(claims.iss)
      : state.verifier
  const configured = verifier === undefined ? undefined : state.resources.get(verifier)
  if (configured !== undefined) return configured
  const aud = claims.aud
  const single =
    typeof aud === 'string' ? aud : Array.isArray(aud) && aud.length === 1 ? aud[0] : undefined
  return typeof single === 'string' && URL.canParse(single) ? single : undefined
}

function resourcesOf(
  verifiers: readonly TokenVerifier[],
  audiences: ReadonlyMap<TokenVerifier, string>,
): Map<TokenVerifier, string> {
  const resources = new Map<TokenVerifier, string>()
  for (const verifier of verifiers) {
    const audience = audiences.get(verifier) ?? audienceOf(verifier)
    if (audience !== undefined && URL.canParse(audience)) resources.set(verifier, audience)
  }
  return resources
}

function buildVerifiers(
  options: AgentPressPartnerStrategyOptions,
  audiences: Map<TokenVerifier, string>,
): TokenVerifier[] {
  const { partnerMcp, verifier } = options
  if ((partnerMcp === undefined) === (verifier === undefined)) {
    throw new TypeError(
      'AgentPressPartnerStrategy needs exactly one of options.partnerMcp or options.verifier',
    )
  }
  if (partnerMcp !== undefined) {
    const list = nonEmptyList(partnerMcp, 'options.partnerMcp')
    return list.map((entry) => {
      const built = new PartnerTokenVerifier(entry)
      audiences.set(built, entry.audience)
      return built
    })
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

function checkResourceMetadataUrl(value: unknown): string | undefined {
  if (value === undefined) return undefined
  const name = 'options.resourceMetadataUrl'
  if (typeof value !== 'string' || !URL.canParse(value)) {
    throw new TypeError(`${name} must be an absolute URL`)
  }
  const url = new URL(value)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`${name} must use https: or http:, got ${url.protocol}`)
  }
  if (url.username || url.password) throw new TypeError(`${name} must not contain credentials`)
  if (!isChallengeSafe(value)) {
    throw new TypeError(
      `${name} must contain only RFC 6750 characters (no quote, backslash, control or non-ASCII)`,
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
