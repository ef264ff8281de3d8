/**
 * What a verified key-rotation event does (§5): replay memory (24 h, bounded, least recently
 * seen evicted), issuer targeting, emergency revocation before any await, the JWKS refresh under a
 * deadline, and the `onRotation` hook. Framework-free: the router renders the outcome.
 */
import type { KeyRotationEvent } from './event.js'
import { AUTH_ERRORS } from '../refusals/reasons.js'
import type { TokenVerifier } from '../verifier/verifier.js'
import type { RotationFleet, SignedDelivery } from './fleet.js'
import { secretMatchOf } from './verify.js'

/** How long a processed id is remembered: the key overlap window of §3 (24 h). */
const REMEMBER_MS = 24 * 60 * 60 * 1000

/** The answer to one delivery. @internal */
export interface RotationOutcome {
  readonly status: 200 | 503
  readonly body: Readonly<Record<string, unknown>>
}

const RECEIVED: RotationOutcome = { status: 200, body: { received: true } }
const DUPLICATE: RotationOutcome = { status: 200, body: { received: true, duplicate: true } }
const UNKNOWN_ISSUER: RotationOutcome = {
  status: 200,
  body: { received: true, ignored: 'unknown_issuer' },
}
const REFRESH_FAILED: RotationOutcome = {
  status: 503,
  body: { error: 'jwks_unavailable', error_description: AUTH_ERRORS.jwks_unavailable.description },
}
const FLEET_UNAVAILABLE: RotationOutcome = {
  status: 503,
  body: { error: 'fleet_unavailable', error_description: 'Fleet unavailable' },
}

/** Settings of {@link createRotationDeliveries}, validated by the router. @internal */
export interface RotationDeliveryOptions {
  readonly verifiers: readonly TokenVerifier[]
  readonly onRotation: ((event: KeyRotationEvent) => unknown) | undefined
  readonly refreshTimeoutMs: number
  readonly maxRememberedIds: number
  readonly clock: () => number
  /** Publish each delivery received over HTTP; its 200 waits for the publish. */
  readonly fleet?: RotationFleet | undefined
}

/**
 * Validates the verifiers a rotation refreshes; `name` is the option they came from.
 *
 * @internal
 */
export function checkRotationTargets(list: unknown, name: string): readonly TokenVerifier[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(`${name} must be a non-empty array`)
  }
  list.forEach((verifier: unknown, index) => {
    if (typeof verifier !== 'object' || verifier === null) {
      throw new TypeError(`${name}[${index}] must be a TokenVerifier`)
    }
    const { refreshJwks, revokeKid, issuer } = verifier as Record<string, unknown>
    if (refreshJwks !== undefined && typeof refreshJwks !== 'function') {
      throw new TypeError(`${name}[${index}].refreshJwks must be a function`)
    }
    if (revokeKid !== undefined && typeof revokeKid !== 'function') {
      throw new TypeError(`${name}[${index}].revokeKid must be a function`)
    }
    if (issuer !== undefined && typeof issuer !== 'string') {
      throw new TypeError(`${name}[${index}].issuer must be a string`)
    }
  })
  if (!list.some((verifier) => typeof (verifier as TokenVerifier).refreshJwks === 'function')) {
    throw new TypeError(
      `${name}: no verifier has refreshJwks(), so a rotation could change nothing`,
    )
  }
  return Object.freeze([...(list as TokenVerifier[])])
}

/**
 * The delivery logic: `(event) → outcome`; concurrent deliveries of one id share one processing.
 *
 * @internal
 */
export function createRotationDeliveries(
  options: RotationDeliveryOptions,
): (event: KeyRotationEvent, signed?: SignedDelivery) => Promise<RotationOutcome> {
  const { verifiers, onRotation, refreshTimeoutMs, clock, fleet } = options
  const maxRemembered = options.maxRememberedIds
  // id → expiry (ms). Map keeps insertion order, so the first key is the least recently seen.
  const remembered = new Map<string, number>()
  const inFlight = new Map<string, Promise<RotationOutcome>>()

  const isRemembered = (id: string): boolean => {
    const expires = remembered.get(id)
    if (expires === undefined) return false
    if (expires <= clock()) {
      remembered.delete(id)
      return false
    }
    remembered.delete(id)
    remembered.set(id, expires)
    return true
  }
  const remember = (id: string): void => {
    remembered.delete(id)
    remembered.set(id, clock() + REMEMBER_MS)
    while (remembered.size > maxRemembered) {
      remembered.delete(remembered.keys().next().value as string)
    }
  }

  const refresh = (verifier: TokenVerifier): Promise<void> => {
    if (typeof verifier.refreshJwks !== 'function') return Promise.resolve()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('refresh deadline passed')), refreshTimeoutMs)
      timer.unref()
    })
    return Promise.race([Promise.resolve().then(() => verifier.refreshJwks!()), deadline]).finally(
      () => clearTimeout(timer),
    )
  }

  // §5: a secret bound to its org's issuers acts on those only, even when the event names none.
  const targetsOf = (event: KeyRotationEvent): TokenVerifier[] => {
    const bound = secretMatchOf(event)?.issuers
    return verifiers.filter((v) =>
      bound !== undefined
        ? v.issuer !== undefined &&
          bound.has(v.issuer) &&
          (event.issuer === undefined || v.issuer === event.issuer)
        : event.issuer === undefined || v.issuer === undefined || v.issuer === event.issuer,
    )
  }
  // Revokes `kid` on every target; false when one of them threw.
  const revokeAt = (targets: readonly TokenVerifier[], kid: string): boolean => {
    let revoked = true
    for (const target of targets) {
      try {
        target.revokeKid?.(kid)
      } catch {
        revoked = false
      }
    }
    return revoked
  }

  // `signed`: the delivery as received over HTTP, to publish; absent for one relayed by the fleet.
  const apply = async (
    event: KeyRotationEvent,
    signed?: SignedDelivery,
  ): Promise<RotationOutcome> => {
    const targets = targetsOf(event)
    if (targets.length === 0) {
      remember(event.id)
      return UNKNOWN_ISSUER
    }
    let failed = false
    let relayed: Promise<boolean> | undefined
    if (event.emergency === true) {
      // Revoke before any await: the retired key is refused from this instant, even if the
      // refetch below fails or stalls (§5).
      failed = !revokeAt(targets, event.retiredKid)
      // Relayed before any await on the JWKS, too: the other instances refuse the key within
      // milliseconds even when the issuer's JWKS hangs. Without the "processed" marker, so a
      // retry (after a failed refresh) is still processed in full wherever it lands.
      if (fleet !== undefined && signed !== undefined) {
        relayed = (async () => {
          await fleet.publish(signed, event, { processed: false })
          return true
        })().catch(() => false)
      }
    }
    const results = await Promise.allSettled(targets.map(refresh))
    if (failed || results.some((result) => result.status === 'rejected')) {
      await relayed
      return REFRESH_FAILED
    }
    if (fleet !== undefined && signed !== undefined) {
      try {
        // After the early relay only the marker is left to write; otherwise everything.
        await fleet.publish(signed, event, (await relayed) === true ? { relayed: true } : {})
      } catch {
        return FLEET_UNAVAILABLE // not remembered: the retry is processed in full
      }
    }
    remember(event.id)
    if (onRotation !== undefined) {
      try {
        Promise.resolve(onRotation(event)).catch(() => {})
      } catch {
        // A throwing hook must not turn a processed rotation into a retry.
      }
    }
    return RECEIVED
  }

  // Another instance may have processed the id: its authentic marker makes this a duplicate.
  const shared = async (
    event: KeyRotationEvent,
    signed: SignedDelivery,
  ): Promise<RotationOutcome> => {
    // An emergency's key is refused here before even asking the fleet (idempotent).
    if (event.emergency === true) revokeAt(targetsOf(event), event.retiredKid)
    // An outage here is not a verdict: process locally; the publish then decides the answer.
    const processed = await fleet!.wasProcessed(event.id, event).catch(() => false)
    if (!processed) return apply(event, signed)
    remember(event.id)
    return DUPLICATE
  }

  const deliver = (event: KeyRotationEvent, signed?: SignedDelivery): Promise<RotationOutcome> => {
    if (isRemembered(event.id)) return Promise.resolve(DUPLICATE)
    let pending = inFlight.get(event.id)
    if (pending === undefined) {
      const run = fleet !== undefined && signed !== undefined ? shared(event, signed) : apply(event)
      pending = run.finally(() => inFlight.delete(event.id))
      inFlight.set(event.id, pending)
    }
    return pending
  }
  return deliver
}
