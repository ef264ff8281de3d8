/**
 * The option primitives every constructor uses: one home for each rule, so each check reads as
 * one line at its caller and no rule exists twice. Messages name the option; callers pass it.
 *
 * @internal
 */

/** Hosts that may be reached over plain `http:` (tests and local development only). */
const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i

/** Whether `hostname` (as `URL#hostname` spells it) is a loopback host. */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.test(hostname)
}

/** The largest delay `setTimeout` honours; it clamps larger ones to 1 ms, firing at once. */
export const MAX_TIMER_MS = 2_147_483_647

/** `value` as an options record, or a `TypeError(message)` when it is not a plain object. */
export function optionsObject(value: unknown, message: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(message)
  }
  return value as Record<string, unknown>
}

/** Refuses keys outside `known`: `Unknown <owner> option: <key>` (a typo must not pass silently). */
export function rejectUnknownKeys(
  options: object,
  known: ReadonlySet<string>,
  owner: string,
): void {
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new TypeError(`Unknown ${owner} option: ${key}`)
  }
}

/** `undefined`, or a function; else `TypeError(message)`. */
export function optionalFunction<F>(value: F | undefined, message: string): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(message)
  return value
}

/** `false` when absent, or a boolean; else `<name> must be a boolean`. */
export function optionalBoolean(value: unknown, name: string): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`)
  return value
}

/**
 * The one URL policy for every URL this package fetches or advertises (`jwksUrl`, the Protected
 * Resource Metadata URLs, `resourceMetadataUrl`): absolute, `https:` (or `http:` on a loopback
 * host only), no credentials, no fragment.
 */
export function secureUrl(value: string, name: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError(`${name} must be an absolute URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new TypeError(
      `${name} must use https: (http: is allowed only for loopback hosts), got ${url.protocol}`,
    )
  }
  if (url.username || url.password) throw new TypeError(`${name} must not contain credentials`)
  if (url.hash || value.includes('#')) throw new TypeError(`${name} must not contain a fragment`)
  return url
}
