/**
 * The scope grammar of RFC 6749 §3.3: a `scope-token` is one or more of %x21 / %x23-5B / %x5D-7E,
 * and a scope is tokens separated by single spaces. Scopes are a flat set: no wildcard or prefix
 * semantics (`settings:*` does not imply `settings:read`).
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
  const tokens = scope.split(' ')
  // A verified `scope` claim has single spaces only: filter (a second array) only when needed.
  return tokens.includes('') ? tokens.filter((s) => s.length > 0) : tokens
}

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
