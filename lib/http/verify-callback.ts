/**
 * The application's `verify` callback: its types, and running it in any of its styles (`done`,
 * a returned promise or thenable, a throw) so that exactly one decision counts.
 */
import type { IncomingMessage } from 'node:http'
import type { PartnerTokenClaims } from '../core/token/claims.js'

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // Passport's user type (@types/passport declares it empty too), which the application
    // declares: the default `User` of verify and of the strategy, so a verify returning anything
    // else is a compile error. Declared here as well so the types stand without @types/passport.
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface User {}
  }
}

/**
 * The callback a `verify` function reports its decision through (Passport's `done`).
 *
 * @example
 * ```ts
 * const verify = (claims: PartnerTokenClaims, done: VerifyDone<User>) =>
 *   users.find(claims.sub).then((user) => done(null, user ?? false), done)
 * ```
 */
export type VerifyDone<User = Express.User> = (
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
export type VerifyFunction<User = Express.User> = (
  claims: PartnerTokenClaims,
  done: VerifyDone<User>,
) => VerifyResult<User>

/**
 * What a `verify` callback may return: the user (or `false`/`null`/`undefined` to refuse), nothing
 * when it answers through `done`, or a promise of either. Anything else is a compile error, such
 * as a value that is not the application's user type.
 *
 * @example
 * ```ts
 * const lookup = (sub: string): VerifyResult<User> => users.findByExternalId(sub)
 * ```
 */
export type VerifyResult<User> =
  User | false | null | undefined | void | PromiseLike<User | false | null | undefined | void>

/**
 * Types an application, or `passport-agentpress-partner/express`, registers by declaration
 * merging. `request`: the request type a `passReqToCallback` verify receives by default.
 *
 * @example
 * ```ts
 * declare module 'passport-agentpress-partner' {
 *   interface AgentPressTypes {
 *     request: import('koa').Request & import('node:http').IncomingMessage
 *   }
 * }
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface AgentPressTypes {}

/** The request a `passReqToCallback` verify receives: the registered one, else `IncomingMessage`. */
export type VerifyRequest = AgentPressTypes extends { request: infer R extends IncomingMessage }
  ? R
  : IncomingMessage

/**
 * {@link VerifyFunction} with the request first (`passReqToCallback: true`). `Req` is the
 * framework's request: the strategy takes it from a `req` parameter's annotation, or from
 * {@link AgentPressTypes} (which `import 'passport-agentpress-partner/express'` sets to Express's).
 *
 * @example
 * ```ts
 * const verify: VerifyFunctionWithRequest<User> = async (req, claims) =>
 *   users.findInTenant(req.headers.host, claims.sub)
 * ```
 */
export type VerifyFunctionWithRequest<
  User = Express.User,
  Req extends IncomingMessage = IncomingMessage,
> = (req: Req, claims: PartnerTokenClaims, done: VerifyDone<User>) => VerifyResult<User>

/** What the callback decided: `err` is `undefined` for a decision, a real value for an error. */
type Decide = (err: unknown, user?: unknown, info?: unknown) => void

/**
 * Runs the application's callback in any of its styles; the first decision wins, later ones are
 * ignored. A callback that calls `done` synchronously is decided synchronously.
 *
 * @internal
 */
export function callVerify(
  verify: VerifyFunction | VerifyFunctionWithRequest,
  passReqToCallback: boolean,
  req: IncomingMessage,
  claims: PartnerTokenClaims,
  decide: Decide,
): void {
  // One closure on the hot path (`done`); the error paths build theirs only when taken.
  let decided = false
  const done: VerifyDone<unknown> = (err, user, info) => {
    if (decided) return
    decided = true
    if (err) decide(err)
    else decide(undefined, user, info)
  }
  let returned: unknown
  try {
    returned = passReqToCallback
      ? (verify as VerifyFunctionWithRequest<unknown>)(req, claims, done)
      : (verify as VerifyFunction<unknown>)(claims, done)
  } catch (err) {
    if (decided) return
    decided = true
    return decide(err ?? null)
  }
  if (decided || !isThenable(returned)) return
  const failed = (err: unknown): void => {
    if (decided) return
    decided = true
    decide(err ?? null)
  }
  try {
    returned.then((user) => done(null, user), failed)
  } catch (err) {
    failed(err)
  }
}

/** Whether `value` has a callable `then`. @internal */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}
