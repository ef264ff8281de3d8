/**
 * OpenTelemetry metrics for passport-agentpress-partner (`passport-agentpress-partner/opentelemetry`).
 *
 * It subscribes to the package's diagnostics channels and records low-cardinality instruments:
 * every attribute value comes from a closed set (outcomes, reason codes, HTTP statuses) or from
 * configuration (issuers), never from a request. `@opentelemetry/api` is an optional peer
 * dependency: only this subpath imports it.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  metrics,
  type Attributes,
  type MeterProvider,
  type ObservableGauge,
  type ObservableResult,
} from '@opentelemetry/api'
import {
  DIAGNOSTICS_CHANNELS,
  type JwksFetchEndMessage,
  type JwksRevocationMessage,
  type JwksState,
  type RequestDecisionMessage,
  type TokenDecisionMessage,
  type WebhookDeliveryMessage,
} from '../core/diagnostics/channels.js'
import { statusesOf, type ReadinessSource } from '../core/jwks/readiness.js'
import { optionsObject, rejectUnknownKeys } from '../core/validate.js'

/** The instrument names (OpenTelemetry semantic-convention style: dotted, unit-free names). */
export const METRIC_NAMES = Object.freeze({
  /** Histogram, `s`: `verifyToken` duration by `outcome`, `reason`, `issuer`. */
  tokenVerifyDuration: 'agentpress.partner.token.verify.duration',
  /** Counter, `{request}`: strategy decisions by `outcome`, `reason`, `http.response.status_code`. */
  requestDecisions: 'agentpress.partner.request.decisions',
  /** Counter, `{fetch}`: JWKS fetches by `outcome`, `reason`, `issuer`. */
  jwksFetches: 'agentpress.partner.jwks.fetches',
  /** Histogram, `s`: JWKS fetch duration by `outcome`, `reason`, `issuer`. */
  jwksFetchDuration: 'agentpress.partner.jwks.fetch.duration',
  /** Counter, `{kid}`: revocations by `issuer`. */
  jwksRevocations: 'agentpress.partner.jwks.revocations',
  /** Counter, `{delivery}`: webhook deliveries by `outcome`, `reason`, `emergency`. */
  webhookDeliveries: 'agentpress.partner.webhook.deliveries',
  /** Gauge, `1`: 1 for each issuer's current key-set `state`, 0 for the others. */
  jwksState: 'agentpress.partner.jwks.state',
  /** Gauge, `{key}`: usable keys cached per `issuer`. */
  jwksKeys: 'agentpress.partner.jwks.keys',
} as const)

/** Options of {@link instrumentOpenTelemetry}. */
export interface OpenTelemetryOptions {
  /** Where instruments are created; default the global `metrics.getMeterProvider()`. */
  meterProvider?: MeterProvider
  /**
   * A strategy (its `verifiers`) or verifiers whose key-set state the gauges observe. Without it,
   * only the event instruments are recorded.
   */
  verifiers?: { readonly verifiers: readonly ReadinessSource[] } | readonly ReadinessSource[]
}

/** Returned by {@link instrumentOpenTelemetry}: `stop()` unsubscribes and removes the gauges. */
export interface OpenTelemetryHandle {
  stop(): void
}

const KNOWN = new Set(['meterProvider', 'verifiers'])
const STATES: readonly JwksState[] = ['cold', 'fresh', 'stale', 'unavailable']
// Seconds: verifications take microseconds when the key is cached, fetches up to the timeout.
const SECONDS_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
  5, 10,
]

function attributes(
  outcome: string,
  reason: string | null,
  issuer: string | null | undefined,
): Attributes {
  const out: Attributes = { outcome }
  if (reason !== null) out.reason = reason
  if (issuer !== null && issuer !== undefined) out.issuer = issuer
  return out
}

function sourcesOf(value: OpenTelemetryOptions['verifiers']): readonly ReadinessSource[] {
  if (value === undefined) return []
  const list = Array.isArray(value) ? value : (value as { verifiers?: unknown }).verifiers
  if (!Array.isArray(list)) {
    throw new TypeError('options.verifiers must be a strategy or an array of verifiers')
  }
  return list as readonly ReadinessSource[]
}

/**
 * Starts recording the package's metrics. Call once per process (each call subscribes again).
 *
 * @example
 * ```ts
 * import { instrumentOpenTelemetry } from 'passport-agentpress-partner/opentelemetry'
 *
 * const telemetry = instrumentOpenTelemetry({ verifiers: strategy }) // global MeterProvider
 * process.on('SIGTERM', () => telemetry.stop())
 * ```
 */
export function instrumentOpenTelemetry(options: OpenTelemetryOptions = {}): OpenTelemetryHandle {
  optionsObject(options, 'instrumentOpenTelemetry options must be an object')
  rejectUnknownKeys(options, KNOWN, 'instrumentOpenTelemetry')
  const provider = options.meterProvider ?? metrics.getMeterProvider()
  if (typeof (provider as { getMeter?: unknown } | null)?.getMeter !== 'function') {
    throw new TypeError('options.meterProvider must be an OpenTelemetry MeterProvider')
  }
  const sources = sourcesOf(options.verifiers)
  const meter = provider.getMeter('passport-agentpress-partner')
  const seconds = { unit: 's', advice: { explicitBucketBoundaries: SECONDS_BUCKETS } }
  const histogram = (name: string, description: string) =>
    meter.createHistogram(name, { ...seconds, description })
  const counter = (name: string, unit: string, description: string) =>
    meter.createCounter(name, { unit, description })

  const verifyDuration = histogram(
    METRIC_NAMES.tokenVerifyDuration,
    'Duration of partner-token verifications',
  )
  const requestDecisions = counter(
    METRIC_NAMES.requestDecisions,
    '{request}',
    'Requests decided by the AgentPress partner strategy',
  )
  const jwksFetches = counter(METRIC_NAMES.jwksFetches, '{fetch}', 'JWKS fetches')
  const jwksFetchDuration = histogram(METRIC_NAMES.jwksFetchDuration, 'Duration of JWKS fetches')
  const revocations = counter(
    METRIC_NAMES.jwksRevocations,
    '{kid}',
    'Signing keys revoked by emergency rotations',
  )
  const deliveries = counter(
    METRIC_NAMES.webhookDeliveries,
    '{delivery}',
    'Key-rotation webhook deliveries answered',
  )

  const listeners: [string, (message: unknown) => void][] = [
    [
      DIAGNOSTICS_CHANNELS.tokenDecision,
      (message) => {
        const m = message as TokenDecisionMessage
        verifyDuration.record(m.durationMs / 1000, attributes(m.outcome, m.reason, m.issuer))
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.requestDecision,
      (message) => {
        const m = message as RequestDecisionMessage
        const attrs = attributes(m.outcome, m.reason, null)
        if (m.status !== null) attrs['http.response.status_code'] = m.status
        requestDecisions.add(1, attrs)
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.jwksFetchEnd,
      (message) => {
        const m = message as JwksFetchEndMessage
        const attrs = attributes(m.outcome, m.reason, m.issuer)
        jwksFetches.add(1, attrs)
        jwksFetchDuration.record(m.durationMs / 1000, attrs)
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.jwksRevocation,
      (message) => revocations.add(1, { issuer: (message as JwksRevocationMessage).issuer }),
    ],
    [
      DIAGNOSTICS_CHANNELS.webhookDelivery,
      (message) => {
        const m = message as WebhookDeliveryMessage
        const attrs = attributes(m.outcome, m.reason, null)
        if (m.emergency !== null) attrs.emergency = m.emergency
        deliveries.add(1, attrs)
      },
    ],
  ]
  // A throwing subscriber would surface as an uncaught exception in the request path's process:
  // a metrics failure is dropped instead.
  for (const entry of listeners) {
    const record = entry[1]
    entry[1] = (message) => {
      try {
        record(message)
      } catch {
        // dropped
      }
    }
    subscribe(entry[0], entry[1])
  }

  const gauges: [ObservableGauge, (result: ObservableResult) => void][] = []
  if (sources.length > 0) {
    const state = meter.createObservableGauge(METRIC_NAMES.jwksState, {
      unit: '1',
      description: "1 for each issuer's current key-set state, 0 for the others",
    })
    const keys = meter.createObservableGauge(METRIC_NAMES.jwksKeys, {
      unit: '{key}',
      description: 'Usable signing keys cached per issuer',
    })
    gauges.push(
      [
        state,
        (result) => {
          for (const status of statusesOf(sources)) {
            for (const s of STATES) {
              result.observe(s === status.state ? 1 : 0, { issuer: status.issuer, state: s })
            }
          }
        },
      ],
      [
        keys,
        (result) => {
          for (const status of statusesOf(sources)) {
            result.observe(status.keyCount, { issuer: status.issuer })
          }
        },
      ],
    )
    for (const [gauge, callback] of gauges) gauge.addCallback(callback)
  }

  let stopped = false
  return Object.freeze({
    stop(): void {
      if (stopped) return
      stopped = true
      for (const [name, listener] of listeners) unsubscribe(name, listener)
      for (const [gauge, callback] of gauges) gauge.removeCallback(callback)
    },
  })
}
