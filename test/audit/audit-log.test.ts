// The audit trail through a real Express 5 + Passport + MCP SDK app: one record per decided
// request, exactly as written, for an accepted tool call, a refused token, a missing scope, a
// user not provisioned and a batch of two tools; and nothing a record must not hold.
import { createHash, createHmac } from 'node:crypto'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import express from 'express'
import passportModule from 'passport'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { z } from 'zod'

import { AgentPressPartnerStrategy, agentPressErrorHandler } from 'passport-agentpress-partner'
import {
  AUDIT_CHANNEL,
  DIAGNOSTICS_CHANNELS,
  startAuditLog,
  type AuditRecord,
} from 'passport-agentpress-partner/diagnostics'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

const KEY = 'audit-subject-key-0123456789abcdef'
const hmac = (sub: string): string =>
  `hmac-sha256:${createHmac('sha256', KEY).update(sub).digest('hex')}`
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')
const jtiOf = (token: string): string =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
const SECRET_ARGUMENT = 'the text of a private note'

describe('audit trail (startAuditLog, AUDIT_CHANNEL)', function () {
  this.timeout(20_000)
  let server: Server
  let url: string
  let mock: MockAgentPress
  let lines: string[]
  let stop: () => void

  before(async () => {
    server = express().listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    mock = await createMockAgentPress({ audience: `${url}/mcp` })
    const strategy = new AgentPressPartnerStrategy(
      { partnerMcp: mock.partnerMcp },
      async (claims) => (claims.sub === 'stranger' ? null : { id: claims.sub }),
    )
    const passport = new passportModule.Passport()
    passport.use(strategy)
    const tools = requireToolScopes({ list_notes: ['mcp:read'], add_note: ['mcp:write'] })
    const app = express()
    app.post(
      '/mcp',
      passport.authenticate('agentpress-partner', { session: false, failWithError: true }),
      express.json(),
      tools,
      async (req, res) => {
        const mcp = new McpServer({ name: 'audit-test', version: '1.0.0' })
        mcp.registerTool('list_notes', { inputSchema: {} }, async () => ({
          content: [{ type: 'text', text: '[]' }],
        }))
        mcp.registerTool('add_note', { inputSchema: { text: z.string() } }, async () => ({
          content: [{ type: 'text', text: 'added' }],
        }))
        const transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: undefined,
          enableJsonResponse: true,
        })
        res.on('close', () => void transport.close().then(() => mcp.close()))
        await mcp.connect(transport)
        await transport.handleRequest(req, res, req.body)
      },
    )
    // Plain passport.authenticate: Express gives the strategy `req.res`, so the status is the one sent.
    app.post(
      '/plain',
      passport.authenticate('agentpress-partner', { session: false }),
      (_req, res) => {
        res.status(202).json({ ok: true })
      },
    )
    // Connect-like: nothing links the request to its response (no `req.res`): published at the
    // decision, with the table's status.
    app.post(
      '/detached',
      (req, res, next) => {
        delete (req as { res?: unknown }).res
        passport.authenticate('agentpress-partner', { session: false })(req, res, next)
      },
      (_req, res) => {
        res.statusCode = 202
        res.end()
      },
    )
    app.use(agentPressErrorHandler({ body: 'jsonrpc' }))
    server.removeAllListeners('request')
    server.on('request', app)
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await mock.close()
  })
  beforeEach(() => {
    lines = []
    stop = startAuditLog({ subjectKey: KEY, write: (line) => lines.push(line) })
  })
  afterEach(() => stop())

  const call = (name: string, args: Record<string, unknown>, id = 1) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args },
  })

  async function post(
    token: string,
    body: unknown,
    headers: Record<string, string> = {},
    path = '/mcp',
  ) {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: JSON.stringify(body),
    })
    await res.text()
    return res.status
  }

  /** The records written so far (the response's finish precedes the client's read: wait for it). */
  async function records(count: number): Promise<AuditRecord[]> {
    for (let i = 0; i < 200 && lines.length < count; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(lines).to.have.length(count)
    return lines.map((line) => {
      expect(line.endsWith('\n')).to.equal(true)
      const record = JSON.parse(line) as AuditRecord & { time: string; durationMs: number }
      expect(record.time).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      expect(record.durationMs).to.be.a('number').and.at.least(0).and.below(20_000)
      return { ...record, time: 'T', durationMs: 0 }
    })
  }

  const verified = (sub: string, token: string) => ({
    issuer: mock.issuer,
    extProvider: mock.extProvider,
    subject: hmac(sub),
    jtiHash: sha256(jtiOf(token)),
  })

  it('an accepted tool call: who, which tool, 200, the traceparent', async () => {
    const token = mock.signToken({ sub: 'alice', scope: 'mcp:read mcp:write' })
    const status = await post(token, call('add_note', { text: SECRET_ARGUMENT }), {
      traceparent: TRACEPARENT,
    })
    expect(status).to.equal(200)
    expect(await records(1)).to.deep.equal([
      {
        time: 'T',
        ...verified('alice', token),
        methods: ['tools/call'],
        tools: ['add_note'],
        outcome: 'accepted',
        reason: null,
        status: 200,
        durationMs: 0,
        traceparent: TRACEPARENT,
      },
    ])
  })

  it('a refused token: no identity (nothing verified), the reason, 401', async () => {
    const token = mock.signToken({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 120 })
    expect(
      await post(token, call('list_notes', {}), { traceparent: 'not-a-traceparent' }),
    ).to.equal(401)
    expect(await records(1)).to.deep.equal([
      {
        time: 'T',
        issuer: null,
        extProvider: null,
        subject: null,
        jtiHash: null,
        methods: null,
        tools: null,
        outcome: 'refused',
        reason: 'expired',
        status: 401,
        durationMs: 0,
        traceparent: null,
      },
    ])
  })

  it('a missing scope: the verified caller, the tool it asked for, 403 insufficient_scope', async () => {
    const token = mock.signToken({ sub: 'alice', scope: 'mcp:read' })
    expect(await post(token, call('add_note', { text: SECRET_ARGUMENT }))).to.equal(403)
    expect(await records(1)).to.deep.equal([
      {
        time: 'T',
        ...verified('alice', token),
        methods: ['tools/call'],
        tools: ['add_note'],
        outcome: 'refused',
        reason: 'insufficient_scope',
        status: 403,
        durationMs: 0,
        traceparent: null,
      },
    ])
  })

  it('a user not provisioned: the verified subject, 403 user_not_provisioned (no gate ran)', async () => {
    const token = mock.signToken({ sub: 'stranger', scope: 'mcp:read' })
    expect(await post(token, call('list_notes', {}))).to.equal(403)
    expect(await records(1)).to.deep.equal([
      {
        time: 'T',
        ...verified('stranger', token),
        methods: null,
        tools: null,
        outcome: 'refused',
        reason: 'user_not_provisioned',
        status: 403,
        durationMs: 0,
        traceparent: null,
      },
    ])
  })

  it('a batch of two tool calls: one record naming both', async () => {
    const token = mock.signToken({ sub: 'alice', scope: 'mcp:read mcp:write' })
    const status = await post(token, [
      call('list_notes', {}, 1),
      call('add_note', { text: SECRET_ARGUMENT }, 2),
    ])
    const [record] = await records(1)
    expect(record).to.deep.equal({
      time: 'T',
      ...verified('alice', token),
      methods: ['tools/call', 'tools/call'],
      tools: ['list_notes', 'add_note'],
      outcome: 'accepted',
      reason: null,
      status,
      durationMs: 0,
      traceparent: null,
    })
    expect(status).to.be.oneOf([200, 400]) // the SDK decides what it makes of a batch
  })

  it('no record holds a token, a signature, an argument or a raw sub; the no-PII channels stay clean', async () => {
    const seen: string[] = []
    const onAny = (message: unknown) => seen.push(JSON.stringify(message))
    for (const name of Object.values(DIAGNOSTICS_CHANNELS)) subscribe(name, onAny)
    const raw: string[] = []
    const onAudit = (message: unknown) => raw.push(JSON.stringify(message))
    subscribe(AUDIT_CHANNEL, onAudit)
    const tokens = [
      mock.signToken({ sub: 'alice', scope: 'mcp:read mcp:write' }),
      mock.signToken({ sub: 'alice', scope: 'mcp:read' }),
      mock.signToken({ sub: 'stranger', scope: 'mcp:read' }),
      mock.signToken({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 120 }),
      mock.signToken({ sub: 'alice', scope: 'mcp:read mcp:write' }),
    ]
    try {
      await post(tokens[0]!, call('add_note', { text: SECRET_ARGUMENT }))
      await post(tokens[1]!, call('add_note', { text: SECRET_ARGUMENT }))
      await post(tokens[2]!, call('list_notes', {}))
      await post(tokens[3]!, call('add_note', { text: SECRET_ARGUMENT }))
      await post(tokens[4]!, [call('list_notes', {}), call('add_note', { text: SECRET_ARGUMENT })])
      await records(5)
    } finally {
      for (const name of Object.values(DIAGNOSTICS_CHANNELS)) unsubscribe(name, onAny)
      unsubscribe(AUDIT_CHANNEL, onAudit)
    }
    const forbidden = [
      ...tokens,
      ...tokens.map((t) => t.split('.')[2]!),
      ...tokens.map((t) => t.split('.')[1]!),
      SECRET_ARGUMENT,
      'alice',
      'stranger',
    ]
    expect(raw).to.have.length(5)
    for (const text of [...lines, ...seen, ...raw]) {
      for (const secret of forbidden) expect(text).to.not.include(secret)
    }
  })

  it('plain passport.authenticate: the status sent (req.res); without it, the decision and its table status', async () => {
    const token = mock.signToken({ sub: 'alice', scope: 'mcp:read' })
    expect(await post(token, {}, {}, '/plain')).to.equal(202)
    const expired = mock.signToken({ exp: Math.floor(Date.now() / 1000) - 120 })
    expect(await post(expired, {}, {}, '/plain')).to.equal(401)
    const detached = mock.signToken({ sub: 'alice', scope: 'mcp:read' })
    expect(await post(detached, {}, {}, '/detached')).to.equal(202)
    expect(await post(expired, {}, {}, '/detached')).to.equal(401)
    const brief = (await records(4)).map((r) => [r.subject, r.outcome, r.reason, r.status])
    expect(brief).to.deep.equal([
      [hmac('alice'), 'accepted', null, 202],
      [null, 'refused', 'expired', 401],
      [hmac('alice'), 'accepted', null, null],
      [null, 'refused', 'expired', 401],
    ])
  })

  it("subject 'raw' and 'omit'", async () => {
    stop()
    const raw: AuditRecord[] = []
    const omitted: AuditRecord[] = []
    const stopRaw = startAuditLog({ subject: 'raw', onRecord: (r) => raw.push(r) })
    const stopOmit = startAuditLog({ subject: 'omit', onRecord: (r) => omitted.push(r) })
    try {
      await post(mock.signToken({ sub: 'alice', scope: 'mcp:read' }), call('list_notes', {}))
      for (let i = 0; i < 200 && omitted.length < 1; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    } finally {
      stopRaw()
      stopOmit()
    }
    expect(raw.map((r) => r.subject)).to.deep.equal(['alice'])
    expect(omitted.map((r) => r.subject)).to.deep.equal([null])
  })

  it('a throwing sink never reaches the request; its error goes to onError', async () => {
    stop()
    const errors: unknown[] = []
    const stopThrowing = startAuditLog({
      subject: 'omit',
      write: () => {
        throw new Error('disk full')
      },
      onError: (err) => errors.push((err as Error).message),
    })
    try {
      expect(
        await post(mock.signToken({ sub: 'alice', scope: 'mcp:read' }), call('list_notes', {})),
      ).to.equal(200)
      for (let i = 0; i < 200 && errors.length < 1; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    } finally {
      stopThrowing()
    }
    expect(errors).to.deep.equal(['disk full'])
  })

  it('options: each mistake is a TypeError naming the option and the fix', () => {
    const fix =
      "startAuditLog() options.subjectKey must be at least 32 bytes (e.g. 32 random characters kept like a secret), or set subject: 'raw' or 'omit'"
    const write = () => {}
    expect(() => startAuditLog({ write })).to.throw(TypeError, fix)
    expect(() => startAuditLog({ write, subjectKey: 'short' })).to.throw(TypeError, fix)
    expect(() => startAuditLog({ subjectKey: KEY })).to.throw(
      TypeError,
      'startAuditLog() needs options.write (JSON lines) or options.onRecord (objects), or both',
    )
    expect(() => startAuditLog({ write, subject: 'plain' as 'raw' })).to.throw(
      TypeError,
      "startAuditLog() options.subject must be 'hmac', 'raw' or 'omit'",
    )
    expect(() => startAuditLog({ write, subject: 'raw', file: 'x' } as never)).to.throw(
      TypeError,
      'Unknown startAuditLog option: file',
    )
  })
})
