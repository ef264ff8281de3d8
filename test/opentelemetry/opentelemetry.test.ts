// The OpenTelemetry adapter, through the real SDK (@opentelemetry/sdk-metrics): a MeterProvider
// with an InMemoryMetricExporter behind a PeriodicExportingMetricReader that the test force-flushes,
// after a scripted mix of real requests through a real Express 5 app with real Passport.
import { expect } from 'chai'
import express from 'express'
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics'
import { AgentPressPartnerStrategy, createKeyRotationRouter } from 'passport-agentpress-partner'
import {
  METRIC_NAMES,
  instrumentOpenTelemetry,
  type OpenTelemetryHandle,
} from 'passport-agentpress-partner/opentelemetry'
import {
  createMockAgentPress,
  deliverWebhook,
  type MockAgentPress,
} from 'passport-agentpress-partner/testing'
import { listen, send, type Listening } from '../support/wire.js'
import { newPassport, passportJson } from '../support/stacks.js'

const AUDIENCE = 'http://127.0.0.1:3000/mcp'
const NOW = () => Math.floor(Date.now() / 1000)
const BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
  5, 10,
]

describe('OpenTelemetry metrics (passport-agentpress-partner/opentelemetry)', function () {
  this.timeout(20_000)
  let mock: MockAgentPress
  let down: MockAgentPress
  let server: Listening
  let strategy: AgentPressPartnerStrategy
  let downStrategy: AgentPressPartnerStrategy
  let exporter: InMemoryMetricExporter
  let reader: PeriodicExportingMetricReader
  let provider: MeterProvider
  let telemetry: OpenTelemetryHandle

  before(async () => {
    mock = await createMockAgentPress({ audience: AUDIENCE })
    down = await createMockAgentPress({ audience: AUDIENCE })
    down.setJwksMode('error')
    const verify = async (claims: { sub: string }) =>
      claims.sub === 'ghost' ? null : { id: claims.sub }
    strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp, realm: 'mcp' }, verify)
    downStrategy = new AgentPressPartnerStrategy(
      { partnerMcp: down.partnerMcp, realm: 'mcp', name: 'down' },
      verify,
    )
    const passport = newPassport()
    passport.use(strategy)
    passport.use(downStrategy)
    const app = express()
    app.use(
      '/webhooks/agentpress/key-rotation',
      createKeyRotationRouter({ webhookSecret: mock.webhookSecret, strategy }),
    )
    const ok: express.RequestHandler = (_req, res) => {
      res.json({ ok: true })
    }
    app.get('/mcp', passportJson(passport, { body: 'json' }), ok)
    app.get('/down', passportJson(passport, { body: 'json', strategy: 'down' }), ok)
    server = await listen(app)

    exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    // The interval never fires during the test: every export is a forceFlush.
    reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
    provider = new MeterProvider({ readers: [reader] })
    telemetry = instrumentOpenTelemetry({
      meterProvider: provider,
      verifiers: [...strategy.verifiers, ...downStrategy.verifiers],
    })
  })
  after(async () => {
    telemetry.stop()
    await provider.shutdown()
    await server.close()
    await mock.close()
    await down.close()
  })

  const get = async (path: string, token?: string) =>
    (
      await send(server.port, {
        method: 'GET',
        path,
        headers: token === undefined ? [] : [['Authorization', `Bearer ${token}`]],
      })
    ).status
  const hook = `/webhooks/agentpress/key-rotation`
  const deliver = async (event: Record<string, unknown>, secret = mock.webhookSecret) =>
    (await deliverWebhook(`${server.url}${hook}`, event, { secret })).status

  const collect = async (): Promise<Map<string, MetricData>> => {
    exporter.reset()
    await reader.forceFlush()
    const exported = exporter.getMetrics()
    const byName = new Map<string, MetricData>()
    for (const metric of exported.at(-1)?.scopeMetrics.flatMap((s) => s.metrics) ?? []) {
      byName.set(metric.descriptor.name, metric)
    }
    return byName
  }

  // Each data point as [attributes, count or value], sorted for comparison.
  const points = (metric: MetricData | undefined) =>
    (metric?.dataPoints ?? [])
      .map((p) => {
        const v = p.value as number | { count: number }
        return [p.attributes, typeof v === 'number' ? v : v.count] as const
      })
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
  const sorted = (rows: Array<readonly [Record<string, unknown>, number]>) =>
    [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))

  it('records every instrument with its unit, type and exact attributes after a scripted mix', async () => {
    // 1 warm-up fetch; 3 accepted; 2 expired; 1 malformed; 1 without credentials; 1 unknown user;
    // 1 outage; then webhooks: accepted, duplicate, wrong secret, emergency.
    expect((await strategy.warmUp()).ready).to.equal(true)
    for (const sub of ['a', 'b', 'c'])
      expect(await get('/mcp', mock.signToken({ sub }))).to.equal(200)
    for (let i = 0; i < 2; i++) {
      expect(await get('/mcp', mock.signToken({ iat: NOW() - 200, exp: NOW() - 140 }))).to.equal(
        401,
      )
    }
    expect(await get('/mcp', 'not-a-jwt')).to.equal(401)
    expect(await get('/mcp')).to.equal(401)
    expect(await get('/mcp', mock.signToken({ sub: 'ghost' }))).to.equal(403)
    expect(await get('/down', down.signToken())).to.equal(503)
    const rotation = mock.rotateKeys()
    expect(await deliver({ ...rotation })).to.equal(200)
    expect(await deliver({ ...rotation })).to.equal(200)
    expect(await deliver({ ...mock.rotateKeys() }, 'whsec_nottheconfiguredsecret00')).to.equal(401)
    expect(await deliver({ ...mock.rotateKeys({ emergency: true }) })).to.equal(200)

    const metrics = await collect()
    const iss = mock.issuer
    expect([...metrics.keys()].sort()).to.deep.equal(
      [
        'agentpress.partner.token.verify.duration',
        'agentpress.partner.request.decisions',
        'agentpress.partner.jwks.fetches',
        'agentpress.partner.jwks.fetch.duration',
        'agentpress.partner.jwks.revocations',
        'agentpress.partner.webhook.deliveries',
        'agentpress.partner.jwks.state',
        'agentpress.partner.jwks.keys',
      ].sort(),
    )
    const descriptor = (name: string) => {
      const m = metrics.get(name)!
      return [m.descriptor.unit, m.dataPointType]
    }
    expect(descriptor(METRIC_NAMES.tokenVerifyDuration)).to.deep.equal([
      's',
      DataPointType.HISTOGRAM,
    ])
    expect(descriptor(METRIC_NAMES.jwksFetchDuration)).to.deep.equal(['s', DataPointType.HISTOGRAM])
    expect(descriptor(METRIC_NAMES.requestDecisions)).to.deep.equal([
      '{request}',
      DataPointType.SUM,
    ])
    expect(descriptor(METRIC_NAMES.jwksFetches)).to.deep.equal(['{fetch}', DataPointType.SUM])
    expect(descriptor(METRIC_NAMES.jwksRevocations)).to.deep.equal(['{kid}', DataPointType.SUM])
    expect(descriptor(METRIC_NAMES.webhookDeliveries)).to.deep.equal([
      '{delivery}',
      DataPointType.SUM,
    ])
    expect(descriptor(METRIC_NAMES.jwksState)).to.deep.equal(['1', DataPointType.GAUGE])
    expect(descriptor(METRIC_NAMES.jwksKeys)).to.deep.equal(['{key}', DataPointType.GAUGE])

    expect(points(metrics.get(METRIC_NAMES.tokenVerifyDuration))).to.deep.equal(
      sorted([
        [{ outcome: 'accepted', issuer: iss }, 4],
        [{ outcome: 'refused', reason: 'expired', issuer: iss }, 2],
        [{ outcome: 'refused', reason: 'malformed', issuer: iss }, 1],
        [{ outcome: 'unavailable', reason: 'jwks_unavailable', issuer: down.issuer }, 1],
      ]),
    )
    // Seconds, not milliseconds: explicit buckets from 50 µs to 10 s, and a sum far below 1 s.
    for (const point of metrics.get(METRIC_NAMES.tokenVerifyDuration)!.dataPoints) {
      const value = point.value as { buckets: { boundaries: number[] }; sum: number }
      expect(value.buckets.boundaries).to.deep.equal(BUCKETS)
      expect(value.sum).to.be.greaterThan(0).and.lessThan(5)
    }
    expect(points(metrics.get(METRIC_NAMES.requestDecisions))).to.deep.equal(
      sorted([
        [{ outcome: 'accepted' }, 3],
        [{ outcome: 'refused', reason: 'expired', 'http.response.status_code': 401 }, 2],
        [{ outcome: 'refused', reason: 'malformed', 'http.response.status_code': 401 }, 1],
        [{ outcome: 'refused', reason: 'no_credentials', 'http.response.status_code': 401 }, 1],
        [
          { outcome: 'refused', reason: 'user_not_provisioned', 'http.response.status_code': 403 },
          1,
        ],
        [
          { outcome: 'unavailable', reason: 'jwks_unavailable', 'http.response.status_code': 503 },
          1,
        ],
      ]),
    )
    // Warm-up, the rotation and the emergency rotation fetched; the outage's fetch failed.
    const fetches = sorted([
      [{ outcome: 'success', issuer: iss }, 3],
      [{ outcome: 'failure', reason: 'http_status', issuer: down.issuer }, 1],
    ])
    expect(points(metrics.get(METRIC_NAMES.jwksFetches))).to.deep.equal(fetches)
    expect(points(metrics.get(METRIC_NAMES.jwksFetchDuration))).to.deep.equal(fetches)
    expect(points(metrics.get(METRIC_NAMES.jwksRevocations))).to.deep.equal([[{ issuer: iss }, 1]])
    expect(points(metrics.get(METRIC_NAMES.webhookDeliveries))).to.deep.equal(
      sorted([
        [{ outcome: 'accepted', emergency: false }, 1],
        [{ outcome: 'duplicate', emergency: false }, 1],
        [{ outcome: 'refused', reason: 'signature_mismatch' }, 1],
        [{ outcome: 'accepted', emergency: true }, 1],
      ]),
    )
    const states = (issuer: string, current: string) =>
      ['cold', 'fresh', 'stale', 'unavailable'].map(
        (state) => [{ issuer, state }, state === current ? 1 : 0] as const,
      )
    expect(points(metrics.get(METRIC_NAMES.jwksState))).to.deep.equal(
      sorted([...states(iss, 'fresh'), ...states(down.issuer, 'unavailable')]),
    )
    expect(points(metrics.get(METRIC_NAMES.jwksKeys))).to.deep.equal(
      sorted([
        [{ issuer: iss }, mock.keys.length],
        [{ issuer: down.issuer }, 0],
      ]),
    )
    // The emergency rotation withdrew every older key: one published, one cached.
    expect(mock.keys.length).to.equal(1)
  })

  it('stop() unsubscribes: later requests change no count, and the gauges stop reporting', async () => {
    const snapshot = await collect()
    const before = points(snapshot.get(METRIC_NAMES.requestDecisions))
    const fetchesBefore = points(snapshot.get(METRIC_NAMES.jwksFetches))
    telemetry.stop()
    telemetry.stop() // idempotent
    expect(await get('/mcp', mock.signToken())).to.equal(200)
    expect(await get('/mcp')).to.equal(401)
    // The outage ends: were the gauge callback still registered, `down` would now read fresh.
    const gaugeBefore = points((await collect()).get(METRIC_NAMES.jwksState))
    down.setJwksMode('ok')
    expect((await downStrategy.warmUp()).ready).to.equal(true)
    const after = await collect()
    expect(points(after.get(METRIC_NAMES.requestDecisions))).to.deep.equal(before)
    // The warm-up after stop() fetched (a success for `down`), and no count moved.
    expect(points(after.get(METRIC_NAMES.jwksFetches))).to.deep.equal(fetchesBefore)
    expect(points(after.get(METRIC_NAMES.jwksState))).to.deep.equal(gaugeBefore)
    expect(
      points(after.get(METRIC_NAMES.jwksState)).find(
        ([a]) => a.issuer === down.issuer && a.state === 'unavailable',
      )?.[1],
    ).to.equal(1)
  })

  it('validates its options once, with exact messages', () => {
    expect(() => instrumentOpenTelemetry({ meter: {} } as never)).to.throw(
      TypeError,
      'Unknown instrumentOpenTelemetry option: meter',
    )
    expect(() => instrumentOpenTelemetry({ meterProvider: {} as never })).to.throw(
      TypeError,
      'options.meterProvider must be an OpenTelemetry MeterProvider',
    )
    expect(() => instrumentOpenTelemetry({ verifiers: {} as never })).to.throw(
      TypeError,
      'options.verifiers must be a strategy or an array of verifiers',
    )
    expect(() => instrumentOpenTelemetry(null as never)).to.throw(
      TypeError,
      'instrumentOpenTelemetry options must be an object',
    )
  })
})
