/**
 * First contact that survives parallel calls. AgentPress often makes several calls at once for a
 * user this server has never seen; a find-then-create in each of them creates that user several
 * times. `provisionOnce` lets the concurrent first calls of one process share one creation; the
 * store's own atomic write (a unique index + upsert, Redis `SET NX`) makes it one across processes
 * (docs/authorization.md, "Provisioning").
 */
import type { PartnerTokenClaims } from '../core/token/claims.js'

/**
 * The claims that name one external user: the issuer (the AgentPress org and environment), the
 * partner's provider name and the external user id.
 *
 * @example
 * ```ts
 * const who: ProvisioningClaims = { iss: claims.iss, ext_provider: claims.ext_provider, sub: claims.sub }
 * ```
 */
export type ProvisioningClaims = Pick<PartnerTokenClaims, 'iss' | 'ext_provider' | 'sub'>

/**
 * One string for `(iss, ext_provider, sub)`: the key of a user in a map, a Redis key or a unique
 * column. Unambiguous (a JSON array), so no two users share one however their ids are spelled.
 *
 * @example
 * ```ts
 * provisioningKey({ iss: 'https://acme.agentpress.example', ext_provider: 'notes', sub: 'u1' })
 * // '["https://acme.agentpress.example","notes","u1"]'
 * ```
 */
export function provisioningKey(claims: ProvisioningClaims): string {
  const { iss, ext_provider, sub } = claims ?? ({} as ProvisioningClaims)
  for (const [name, value] of [
    ['iss', iss],
    ['ext_provider', ext_provider],
    ['sub', sub],
  ] as const) {
    if (typeof value !== 'string' || value === '') {
      throw new TypeError(`provisioningKey() needs claims with a non-empty string ${name}`)
    }
  }
  return JSON.stringify([iss, ext_provider, sub])
}

// Calls in flight, by key, across every coalescer of the process's `provisionOnce(key, create)`.
const SHARED = new Map<string, Promise<unknown>>()

/**
 * Coalesces concurrent first calls: while a call for one user is running, later calls for the
 * same user wait for it and get its result (or its error) instead of running their own. Once it
 * has settled, the next call runs again — so `create` should find the user before it creates one
 * (it then finds the one the earlier call stored). Nothing is cached: a failure is not remembered.
 *
 * Two forms:
 * - `provisionOnce(create)` returns `(claims) => Promise<User>`, keyed by
 *   {@link provisioningKey}: use it as the strategy's `verify` or the adapter's `resolveUser`;
 * - `provisionOnce(key, create)` runs `create` for `key` unless a call for `key` is in flight.
 *
 * In one process, 50 concurrent first calls for one user run `create` once. Across processes, only
 * the store can decide: make `create` an atomic write (see the Redis `SET NX` recipe).
 *
 * @throws {TypeError} when `create` is not a function, or `key` not a non-empty string.
 *
 * @example
 * ```ts
 * const resolveUser = provisionOnce(async (claims: PartnerTokenClaims) =>
 *   (await users.findByExternalId(provisioningKey(claims))) ?? users.create(claims),
 * )
 * passport.use(new AgentPressPartnerStrategy({ partnerMcp }, resolveUser))
 * ```
 */
export function provisionOnce<User, Claims extends ProvisioningClaims = PartnerTokenClaims>(
  create: (claims: Claims) => User | PromiseLike<User>,
): (claims: Claims) => Promise<User>
export function provisionOnce<User>(
  key: string,
  create: () => User | PromiseLike<User>,
): Promise<User>
export function provisionOnce(
  first: string | ((claims: ProvisioningClaims) => unknown),
  second?: () => unknown,
): Promise<unknown> | ((claims: ProvisioningClaims) => Promise<unknown>) {
  if (typeof first === 'string') {
    if (first === '') throw new TypeError('provisionOnce(key, create) needs a non-empty key')
    if (typeof second !== 'function') {
      throw new TypeError('provisionOnce(key, create) needs create to be a function')
    }
    return coalesce(SHARED, first, second)
  }
  if (typeof first !== 'function') {
    throw new TypeError('provisionOnce(create) needs create to be a function: (claims) => user')
  }
  const inFlight = new Map<string, Promise<unknown>>()
  return (claims) => {
    let key: string
    try {
      key = provisioningKey(claims)
    } catch (err) {
      return Promise.reject(err)
    }
    return coalesce(inFlight, key, () => first(claims))
  }
}

function coalesce(
  inFlight: Map<string, Promise<unknown>>,
  key: string,
  create: () => unknown,
): Promise<unknown> {
  const running = inFlight.get(key)
  if (running !== undefined) return running
  // `then` on a settled promise: `create` runs after the entry is in place even if it answers
  // synchronously, and a synchronous throw becomes a rejection of every waiter.
  const started = Promise.resolve()
    .then(create)
    .finally(() => inFlight.delete(key))
  inFlight.set(key, started)
  return started
}
