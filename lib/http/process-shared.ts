/**
 * A value shared by every copy of this package loaded in the process, found on `globalThis` under
 * `Symbol.for('passport-agentpress-partner.<name>')` (a contract across copies, like the request
 * keys of refusal.ts). The first copy to ask creates it; a value there that `accepts` refuses
 * (someone else's) is left alone, and this copy keeps one of its own.
 *
 * @internal
 */
export function processShared<T>(
  name: string,
  accepts: (found: unknown) => boolean,
  create: () => T,
): T {
  const key = Symbol.for(`passport-agentpress-partner.${name}`)
  const holder = globalThis as Record<symbol, unknown>
  const found = holder[key]
  if (accepts(found)) return found as T
  const created = create()
  if (found === undefined)
    Object.defineProperty(holder, key, { value: created, configurable: true })
  return created
}
