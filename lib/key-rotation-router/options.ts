/**
 * The options of `createKeyRotationRouter`, validated once at construction (`TypeError` naming
 * the option): the webhook secrets and window, the verifiers to refresh, the deadlines, the
 * deduplication memory and the fleet.
 */
import {
  prepareKeyRotation,
  type PreparedKeyRotation,
  type WebhookSecretOption,
} from '../core/key-rotation/verify.js'
import type { KeyRotationEvent } from '../core/key-rotation/event.js'
import {
  checkRotationTargets,
  type RotationDeliveryOptions,
} from '../core/key-rotation/deliveries.js'
import { checkFleet, type RotationFleet } from '../core/key-rotation/fleet.js'
import {
  MAX_TIMER_MS,
  optionalFunction,
  optionsObject,
  rejectUnknownKeys,
} from '../core/validate.js'
import type { TokenVerifier } from '../core/verifier/verifier.js'

/**
 * Options of {@link createKeyRotationRouter}.
 *
 * @example
 * ```ts
 * const options: KeyRotationRouterOptions = {
 *   webhookSecret: process.env.AGENTPRESS_WEBHOOK_SECRET!,
 *   strategy, // the AgentPressPartnerStrategy whose verifiers are refreshed
 *   onRotation: (event) => console.info('signing key rotated to', event.newCurrentKid),
 * }
 * app.use('/webhooks/agentpress/key-rotation', createKeyRotationRouter(options))
 * ```
 */
export type KeyRotationRouterOptions = KeyRotationRouterCommonOptions &
  // Exactly one of the two, as a type (a compile error for both or neither) and at run time.
  (
    | {
        /** Our strategy (or anything exposing `verifiers`): its verifiers are refreshed. */
        strategy: { readonly verifiers: readonly TokenVerifier[] }
        verifiers?: undefined
      }
    | {
        /** The verifiers to refresh, when there is no strategy. */
        verifiers: readonly TokenVerifier[]
        strategy?: undefined
      }
  )

/** The options of {@link createKeyRotationRouter} besides `strategy`/`verifiers`. */
export interface KeyRotationRouterCommonOptions {
  /**
   * The webhook secret, or several while the secret itself is rotated (§5). A router serving
   * several orgs binds each secret to its org's issuer(s), `{ secret, issuer, label? }`: a delivery
   * then acts only on its secret's issuers, and one naming another issuer is refused 401
   * `signature_mismatch`. The `webhook:delivery` channel reports which secret matched (its
   * `label`, else its index).
   */
  webhookSecret: WebhookSecretOption | readonly WebhookSecretOption[]
  /**
   * Called once per processed event, after the refresh succeeded and before the 200 is sent; not
   * for duplicates, failed refreshes or events of an issuer no verifier trusts. Not awaited;
   * whatever it throws or rejects with is ignored (a logging hook must not change what AgentPress
   * is told).
   */
  onRotation?: (event: KeyRotationEvent) => unknown
  /** Accepted timestamp difference in seconds, both directions, inclusive. Default 300. */
  toleranceSec?: number
  /** Clock in milliseconds since the epoch; default `Date.now`. For tests. */
  clock?: () => number
  /** Deadline for the whole body to arrive, in ms. Default 10,000 (§5). */
  bodyTimeoutMs?: number
  /** Deadline for the JWKS refresh of one delivery, in ms; past it, 503. Default 15,000. */
  refreshTimeoutMs?: number
  /** How many processed delivery ids are remembered for deduplication. Default 1,000. */
  maxRememberedIds?: number
  /**
   * Share deliveries with the other instances (e.g. `createRedisFleet` of
   * `passport-agentpress-partner/redis`): a delivery is answered 200 only once it is applied here
   * **and** published; if publishing fails, 503 + `Retry-After` and the retry is processed in full.
   * An id another instance processed is a duplicate here too.
   */
  fleet?: RotationFleet
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'webhookSecret',
  'strategy',
  'verifiers',
  'onRotation',
  'toleranceSec',
  'clock',
  'bodyTimeoutMs',
  'refreshTimeoutMs',
  'maxRememberedIds',
  'fleet',
])

function positiveMs(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a finite number of milliseconds greater than 0`)
  }
  if (value > MAX_TIMER_MS) {
    throw new TypeError(`${name} must be at most ${MAX_TIMER_MS} milliseconds`)
  }
  return value
}

function resolveVerifiers(options: KeyRotationRouterOptions): readonly TokenVerifier[] {
  const { strategy, verifiers } = options
  if (strategy !== undefined && verifiers !== undefined) {
    throw new TypeError('pass either strategy or verifiers, not both')
  }
  let list: unknown
  let name: string
  if (strategy !== undefined) {
    if (typeof strategy !== 'object' || strategy === null) {
      throw new TypeError('strategy must be an object with a verifiers array')
    }
    list = strategy.verifiers
    name = 'strategy.verifiers'
  } else if (verifiers !== undefined) {
    list = verifiers
    name = 'verifiers'
  } else {
    throw new TypeError('strategy or verifiers is required')
  }
  return checkRotationTargets(list, name)
}

/**
 * §5: each secret acts on its own org only. Bound secrets must name issuers the router's verifiers
 * trust; several unbound secrets in front of several issuers would let any org's secret act on
 * every org, so that is refused with the fix.
 */
function checkSecretBindings(
  prepared: PreparedKeyRotation,
  verifiers: readonly TokenVerifier[],
): void {
  const { bindings } = prepared
  const trusted = new Set(verifiers.map((v) => v.issuer))
  if (bindings[0]!.issuers === undefined) {
    const issuers = [...trusted].filter((issuer) => issuer !== undefined)
    if (bindings.length > 1 && issuers.length > 1) {
      throw new TypeError(
        `webhookSecret: ${bindings.length} secrets in front of ${issuers.length} issuers would let each org's secret act on every org; bind each secret to its issuer: webhookSecret: [{ secret, issuer }, …]`,
      )
    }
    return
  }
  const missing = verifiers.findIndex((v) => v.issuer === undefined)
  if (missing !== -1) {
    throw new TypeError(
      `webhookSecret binds secrets to issuers, so every verifier needs an issuer (verifier #${missing} has none)`,
    )
  }
  bindings.forEach((binding, index) => {
    for (const issuer of binding.issuers!) {
      if (!trusted.has(issuer)) {
        throw new TypeError(
          `webhookSecret[${index}].issuer ${JSON.stringify(issuer)} is not the issuer of any verifier behind this router: use the exact issuer URL of its strategy or verifier`,
        )
      }
    }
  })
}

/** The router's settings, validated once at construction. @internal */
export interface KeyRotationRouterSettings {
  readonly prepared: PreparedKeyRotation
  readonly bodyTimeoutMs: number
  readonly fleet: RotationFleet | undefined
  readonly deliveries: RotationDeliveryOptions
}

/**
 * Validates the options of {@link createKeyRotationRouter} (`TypeError` naming the option).
 *
 * @internal
 */
export function normalizeRouterOptions(
  options: KeyRotationRouterOptions,
): KeyRotationRouterSettings {
  optionsObject(options, 'createKeyRotationRouter: options must be an object')
  rejectUnknownKeys(options, KNOWN_OPTIONS, 'createKeyRotationRouter')
  const prepared = prepareKeyRotation(
    { ...options, secret: options.webhookSecret },
    'webhookSecret',
  )
  const verifiers = resolveVerifiers(options)
  checkSecretBindings(prepared, verifiers)
  const { clock } = prepared
  const onRotation = optionalFunction(options.onRotation, 'onRotation must be a function')
  const bodyTimeoutMs = positiveMs(options.bodyTimeoutMs, 'bodyTimeoutMs', 10_000)
  const refreshTimeoutMs = positiveMs(options.refreshTimeoutMs, 'refreshTimeoutMs', 15_000)
  const maxRememberedIds = options.maxRememberedIds ?? 1000
  if (!Number.isSafeInteger(maxRememberedIds) || maxRememberedIds < 1) {
    throw new TypeError('maxRememberedIds must be a positive integer')
  }
  const fleet = checkFleet(options.fleet, 'fleet')
  const deliveries = { verifiers, onRotation, refreshTimeoutMs, maxRememberedIds, clock, fleet }
  return { prepared, bodyTimeoutMs, fleet, deliveries }
}
