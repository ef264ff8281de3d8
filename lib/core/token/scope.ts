/**
 * The scope grammar of RFC 6749 §3.3: a `scope-token` is one or more of %x21 / %x23-5B / %x5D-7E,
 * and a scope is tokens separated by single spaces. Scopes are a flat set: no wildcard or prefix
 * semantics (`settings:*` does not imply `settings:read`), unless a partner declares an implication
 * (`implies`, opt-in: see {@link ScopeImplication}).
 */

const TOKEN = '[\\x21\\x23-\\x5B\\x5D-\\x7E]+'
const SCOPE_TOKEN = new RegExp(`^${TOKEN}$`)

/** A whole `scope` claim: tokens separated by single spaces. @internal */
export const SCOPE_CLAIM = new RegExp(`^${TOKEN}(?: ${TOKEN})*$`)

/**
 * The scope that asks an authorization server for refresh tokens. A resource server never needs
 * it for a request, so it is kept out of challenges and `scopes_supported` (MCP 2026-07-28:
 * SHOULD NOT); every scope list this package is configured with refuses it.
 *
 * @internal
 */
export const OFFLINE_ACCESS = 'offline_access'

/** The message refusing `offline_access` at `<name>`. @internal */
export function offlineAccessRefused(name: string): string {
  return `${name} must not be offline_access: it asks the authorization server for refresh tokens, and a resource server neither requires nor advertises it`
}

/** Whether `value` is one RFC 6749 scope token. @internal */
export function isScopeToken(value: unknown): value is string {
  return typeof value === 'string' && SCOPE_TOKEN.test(value)
}

/**
 * Splits a `scope` claim into its scope tokens (a flat set: no wildcard or prefix semantics).
 *
 * @example
 * ```ts
 * parseScope('mcp:read mcp:write') // ['mcp:read', 'mcp:write']
 * ```
 */
export function parseScope(scope: string): string[] {
  // Tokens of one partner carry the same scope string, request after request: the last split is
  // kept (private, never handed out) and copied, which costs a fraction of splitting again.
  if (scope !== lastScope) {
    const tokens = scope.split(' ')
    // A verified `scope` claim has single spaces only: filter (a second array) only when needed.
    lastTokens = tokens.includes('') ? tokens.filter((s) => s.length > 0) : tokens
    lastScope = scope
  }
  return lastTokens.slice()
}

let lastScope: string | undefined
let lastTokens: string[] = []

/**
 * Validates a list of scope tokens and returns a frozen copy without duplicates.
 *
 * @internal
 */
export function checkScopes(value: unknown, name: string, allowEmpty: boolean): readonly string[] {
  if (value === undefined && allowEmpty) return Object.freeze([])
  if (typeof value === 'string') {
    const list = value.split(/[\s,]+/u).filter((scope) => scope !== '')
    throw new TypeError(
      `${name} must be an array of scope strings, not a string: use ${JSON.stringify(list)}`,
    )
  }
  if (!Array.isArray(value)) throw new TypeError(`${name} must be an array of scope strings`)
  if (value.length === 0 && !allowEmpty) throw new TypeError(`${name} must name at least one scope`)
  value.forEach((scope: unknown, i) => {
    if (!isScopeToken(scope)) {
      throw new TypeError(
        `${name}[${i}] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)`,
      )
    }
    if (scope === OFFLINE_ACCESS) throw new TypeError(offlineAccessRefused(`${name}[${i}]`))
  })
  return Object.freeze([...new Set(value as string[])])
}

/**
 * An opt-in scope hierarchy: each key grants, besides itself, the scopes it lists (and, in turn,
 * what those imply). Off by default: scopes are a flat set (§2) unless a partner declares one.
 *
 * @example
 * ```ts
 * const implies: ScopeImplication = { 'notes:write': ['notes:read'], 'notes:admin': ['notes:write'] }
 * ```
 */
export type ScopeImplication = Readonly<Record<string, readonly string[]>>

/** A validated implication: scope → every scope it grants (itself excluded), closed. @internal */
export type Implication = ReadonlyMap<string, readonly string[]>

/**
 * Validates `value` (the option called `name`) and returns its transitive closure; `undefined`
 * (the option absent) stays `undefined`: flat sets.
 *
 * @internal
 */
export function checkImplication(value: unknown, name: string): Implication | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(
      `${name} must be an object: scope → the scopes it implies, e.g. { 'notes:write': ['notes:read'] }`,
    )
  }
  const direct = new Map<string, readonly string[]>()
  for (const key of Object.keys(value)) {
    const label = `${name}[${JSON.stringify(key)}]`
    if (!isScopeToken(key)) {
      throw new TypeError(`${label}: the key must be an RFC 6749 scope token (no spaces)`)
    }
    if (key === OFFLINE_ACCESS) throw new TypeError(offlineAccessRefused(label))
    direct.set(key, checkScopes((value as Record<string, unknown>)[key], label, true))
  }
  const closed = new Map<string, readonly string[]>()
  for (const scope of direct.keys()) {
    const seen = new Set<string>([scope])
    const queue = [...(direct.get(scope) ?? [])]
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (seen.has(next)) continue
      seen.add(next)
      queue.push(...(direct.get(next) ?? []))
    }
    seen.delete(scope)
    closed.set(scope, Object.freeze([...seen]))
  }
  return closed
}

/**
 * The scopes `granted` holds, with what `implication` adds (the same list when there is none).
 *
 * @internal
 */
export function effectiveScopes(
  granted: readonly unknown[],
  implication: Implication | undefined,
): ReadonlySet<unknown> {
  const scopes = new Set<unknown>(granted)
  if (implication === undefined) return scopes
  for (const scope of granted) {
    if (typeof scope !== 'string') continue
    for (const implied of implication.get(scope) ?? []) scopes.add(implied)
  }
  return scopes
}

/**
 * Whether `granted` (with `implication`, when declared) holds every scope of `needed`.
 *
 * @internal
 */
export function hasScopes(
  granted: readonly unknown[],
  needed: readonly string[],
  implication: Implication | undefined,
): boolean {
  if (implication === undefined) return needed.every((scope) => granted.includes(scope))
  const have = effectiveScopes(granted, implication)
  return needed.every((scope) => have.has(scope))
}
