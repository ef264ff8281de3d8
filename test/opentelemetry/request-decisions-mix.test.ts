// The request-decision counter tells what was answered: a scripted mix of real requests through a
// real Express 5 app with real Passport, `requireScopes` mounted as its own middleware and
// `requireToolScopes` in the chain, exported by the real OpenTelemetry SDK's
// InMemoryMetricExporter. `accepted` equals the number of 2xx answers, and each refusal reason's
// count equals the number of answers carrying that reason. (A 403 insufficient_scope from either
// gate was counted as `accepted` before: the strategy had accepted the token first.)
import { expect } from 'chai'
import express from 'express'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import {
  AgentPressPartnerStrategy,
  agentPressErrorHandler,
  authenticatePartner,
  requireScopes,
} from 'passport-agentpress-partner'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import {
  METRIC_NAMES,
  instrumentOpenTelemetry,
  type OpenTelemetryHandle,
} from 'passport-agentpress-partner/opentelemetry'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { listen, send, type Listening } from '../support/wire.js'
import { newPassport } from '../support/stacks.js'

const AUDIENCE = 'http://127.0.0.1:3000/mcp'
const NOW = () => Math.floor(Date.now() / 1000)

describe('OpenTelemetry: request decisions count what was answered (scope gates in the chain)', function () {
  this.timeout(20_000)
  let mock: MockAgentPress
  let server: Listening
  let exporter: InMemoryMetricExporter
  let reader: PeriodicExportingMetricReader
  let provider: MeterProvider
  let telemetry: OpenTelemetryHandle

  before(async () => {
    mock = await createMockAgentPress({ audience: AUDIENCE })
    const strategy = new AgentPressPartnerStrategy(
      { partnerMcp: mock.partnerMcp, realm: 'mcp' },
      async (claims) => (claims.sub === 'ghost' ? null : { id: claims.sub }),
    )
    const passport = newPassport()
    passport.use(strategy)
    const app = express()
    const ok: express.RequestHandler = (_req, res) => {
      res.json({ ok: true })
    }
    // requireScopes as its own middleware after plain passport.authenticate().
    app.get(
      '/admin',
      passport.authenticate('agentpress-partner', { session: false, failWithError: true }),
      requireScopes('mcp:admin'),
      ok,
    )
    // requireToolScopes after authenticatePartner and a JSON parser.
    app.post(
      '/mcp',
      authenticatePartner(strategy, { body: 'jsonrpc' }),
      express.json(),
      requireToolScopes({ add_note: ['mcp:write'], list_notes: ['mcp:read'] }),
      ok,
    )
    app.use(agentPressErrorHandler({ body: 'jsonrpc' }))
    server = await listen(app)

    exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
    provider = new MeterProvider({ readers: [reader] })
    telemetry = instrumentOpenTelemetry({ meterProvider: provider })
  })
  after(async () => {
    telemetry.stop()
    await provider.shutdown()
    await server.close()
    await mock.close()
  })

  const call = (tool: string) =>
    JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool } })

  it('accepted = 2xx answers; each reason = the answers carrying it', async () => {
    const read = mock.signToken({ scope: 'mcp:read' })
    const all = () => mock.signToken({ scope: 'mcp:read mcp:write mcp:admin' })
    const expired = mock.signToken({ iat: NOW() - 200, exp: NOW() - 140 })
    const ghost = mock.signToken({ sub: 'ghost', scope: 'mcp:read mcp:write mcp:admin' })
    // [method, path, token, body?]
    const script: Array<[string, string, string | undefined, string?]> = [
      ['GET', '/admin', all()],
      ['GET', '/admin', read], // 403 from requireScopes
      ['GET', '/admin', read],
      ['GET', '/admin', undefined], // 401 no_credentials
      ['GET', '/admin', expired], // 401 expired
      ['POST', '/mcp', read, call('list_notes')],
      ['POST', '/mcp', read, call('add_note')], // 403 from requireToolScopes
      ['POST', '/mcp', all(), call('add_note')],
      ['POST', '/mcp', mock.signToken({ scope: 'mcp:read' }), call('add_note')],
      ['POST', '/mcp', ghost, call('list_notes')], // 403 user_not_provisioned
      ['POST', '/mcp', undefined, call('list_notes')],
    ]
    let twoHundreds = 0
    const reasons = new Map<string, number>()
    const statuses: number[] = []
    for (const [method, path, token, body] of script) {
      const headers: Array<[string, string]> = []
      if (token !== undefined) headers.push(['Authorization', `Bearer ${token}`])
      if (body !== undefined) headers.push(['Content-Type', 'application/json'])
      const res = await send(server.port, {
        method,
        path,
        headers,
        ...(body === undefined ? {} : { body }),
      })
      statuses.push(res.status)
      if (res.status >= 200 && res.status < 300) {
        twoHundreds++
        continue
      }
      const reason = (JSON.parse(res.text) as { error: { data: { reason: string } } }).error.data
        .reason
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    // The script answered as it says.
    expect(statuses).to.deep.equal([200, 403, 403, 401, 401, 200, 403, 200, 403, 403, 401])

    exporter.reset()
    await reader.forceFlush()
    const metric = exporter
      .getMetrics()
      .flatMap((r) => r.scopeMetrics)
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === METRIC_NAMES.requestDecisions)!
    const counted = new Map<string, number>()
    let accepted = 0
    for (const point of metric.dataPoints) {
      const { outcome, reason } = point.attributes as { outcome: string; reason?: string }
      if (outcome === 'accepted') accepted += point.value as number
      else counted.set(reason!, (counted.get(reason!) ?? 0) + (point.value as number))
    }
    expect(accepted, 'accepted = 2xx answers').to.equal(twoHundreds)
    expect([...counted].sort()).to.deep.equal([...reasons].sort())
    expect([...counted].sort()).to.deep.equal([
      ['expired', 1],
      ['insufficient_scope', 4],
      ['no_credentials', 2],
      ['user_not_provisioned', 1],
    ])
  })
})
