/**
 * Unknown-kid lookups held back until the next allowed fetch: an unknown kid is answered only by
 * a fetch that started after the lookup arrived, so when the cooldown forbids one now the lookup
 * waits for it (bounded in number, see {@link MAX_HELD_LOOKUPS}).
 */

/**
 * Most unknown-kid lookups that may wait at once for the next allowed refetch. Past it a lookup is
 * answered 503 (`jwks_unavailable`, Retry-After), never 401: it could carry a key rotated in a
 * moment ago.
 *
 * @internal
 */
export const MAX_HELD_LOOKUPS = 10_000

/**
 * The one wake-up every held lookup waits on.
 *
 * @internal
 */
export class NextFetchSlot {
  #slot: { promise: Promise<void>; wake: () => void; timer: NodeJS.Timeout } | undefined

  /**
   * Resolves when the next unknown-kid fetch starts: after `delayMs` (the time the cooldown
   * allows; `due` runs first, to start that fetch), or earlier on {@link wake}, when any other
   * fetch starts first. Every lookup held meanwhile shares the one timer.
   */
  next(delayMs: () => number, due: () => void): Promise<void> {
    if (this.#slot === undefined) {
      let wake!: () => void
      const promise = new Promise<void>((resolve) => (wake = resolve))
      const timer = setTimeout(() => {
        due()
        this.wake()
      }, delayMs())
      // Not unref'd: a held lookup is a pending verification, which must settle rather than let
      // the process exit with its promise unsettled (as a script awaiting verifyToken would).
      this.#slot = { promise, wake, timer }
    }
    return this.#slot.promise
  }

  /** Releases the held lookups: a fetch has started that serves them. */
  wake(): void {
    const slot = this.#slot
    if (slot === undefined) return
    this.#slot = undefined
    clearTimeout(slot.timer)
    slot.wake()
  }
}
