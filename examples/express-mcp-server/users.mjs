/**
 * An in-memory user store keyed by AgentPress's identity of a user: `(ext_provider, sub)`.
 *
 * The integration guide's first-contact provisioning: the first verified request for an unknown
 * `(ext_provider, sub)` creates a local user; later requests find it. With provisioning off, an
 * unknown user is refused with 403 `user_not_provisioned` (the strategy's answer to a `verify`
 * callback resolving `null`). A real server keeps this in its database, with a unique index on the
 * pair.
 */
export class UserStore {
  #byExternalId = new Map()
  #nextId = 1

  /** @param {{ autoProvision?: boolean }} [options] */
  constructor({ autoProvision = true } = {}) {
    this.autoProvision = autoProvision
  }

  /**
   * The local user for verified claims, provisioning it on first contact (or `null`).
   * @param {{ ext_provider: string, sub: string }} claims
   */
  resolve(claims) {
    const key = `${claims.ext_provider}\u0000${claims.sub}`
    const existing = this.#byExternalId.get(key)
    if (existing !== undefined) return existing
    if (!this.autoProvision) return null
    const user = {
      id: `usr_${this.#nextId++}`,
      extProvider: claims.ext_provider,
      externalId: claims.sub,
      createdAt: new Date().toISOString(),
      notes: [],
    }
    this.#byExternalId.set(key, user)
    return user
  }

  /** Every user, in creation order. */
  list() {
    return [...this.#byExternalId.values()]
  }
}
