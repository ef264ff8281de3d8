// The example MCP server as MCP asks: tools/list by scope, one 403 per request naming every scope
// it needs (batches included) through the official SDK client's own transport, and the transport's
// Origin / Host validation (DNS rebinding) for the configured host.
import { expect } from 'chai'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js'

import { request } from 'node:http'

import { startServer, type RunningServer } from '../../examples/express-mcp-server/server.mjs'
import { send } from '../support/wire.js'

describe('examples/express-mcp-server: MCP-native authorization', function () {
  this.timeout(20_000)

  let server: RunningServer
  const toolCalls: string[] = []
  before(async () => {
    server = await startServer({
      port: 0,
      log: () => {},
      onToolCall: (call) => toolCalls.push(call.tool),
    })
  })
  after(async () => {
    await server?.close()
  })
  beforeEach(() => {
    toolCalls.length = 0
  })

  async function sdkClient(scope: string) {
    const seen: { status?: number; challenge?: string | null; body?: string } = {}
    const token = server.mock!.signToken({ sub: 'erin', scope })
    const transport = new StreamableHTTPClientTransport(new URL(server.mcpUrl), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        seen.status = response.status
        seen.challenge = response.headers.get('www-authenticate')
        seen.body = await response.clone().text()
        return response
      },
    })
    const client = new Client({ name: 'mcp-native-test', version: '1.0.0' })
    await client.connect(transport)
    return { client, transport, seen }
  }

  const insufficient = (scope: string) =>
    'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", ' +
    `scope="${scope}", resource_metadata="${server.metadataUrl}"`
  const refusalBody = {
    jsonrpc: '2.0',
    id: null,
    error: { code: -32001, message: 'Insufficient scope', data: { reason: 'insufficient_scope' } },
  }

  it('tools/list with a read-only token lists only the read tools; the write call is one exact 403', async () => {
    const c = await sdkClient('mcp:read')
    try {
      const { tools } = await c.client.listTools()
      expect(tools.map((tool) => tool.name)).to.deep.equal(['list_notes'])
      const err = await c.client.callTool({ name: 'add_note', arguments: { text: 'x' } }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).to.be.instanceOf(StreamableHTTPError).with.property('code', 403)
      expect([c.seen.status, c.seen.challenge, JSON.parse(c.seen.body!)]).to.deep.equal([
        403,
        insufficient('mcp:write'),
        refusalBody,
      ])
      expect(toolCalls).to.deep.equal([])
    } finally {
      await c.client.close()
    }
  })

  it('a batch sent by the SDK transport mixing allowed and forbidden calls → one 403 naming the union; no handler ran', async () => {
    const c = await sdkClient('other:scope')
    try {
      const call = (id: number, name: string, args: Record<string, unknown>) => ({
        jsonrpc: '2.0' as const,
        id,
        method: 'tools/call',
        params: { name, arguments: args },
      })
      const err = await c.transport
        .send([call(10, 'add_note', { text: 'x' }), call(11, 'list_notes', {})])
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(err).to.be.instanceOf(StreamableHTTPError).with.property('code', 403)
      expect([c.seen.status, c.seen.challenge, JSON.parse(c.seen.body!)]).to.deep.equal([
        403,
        insufficient('mcp:read mcp:write'),
        refusalBody,
      ])
      expect(toolCalls).to.deep.equal([])
      expect(server.users.list().find((u) => u.externalId === 'erin')?.notes ?? []).to.deep.equal(
        [],
      )
    } finally {
      await c.client.close()
    }
  })

  const listBody = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
  const post = (headers: Array<[string, string]>) =>
    send(Number(new URL(server.url).port), {
      method: 'POST',
      path: '/mcp',
      headers: [
        ['Authorization', `Bearer ${server.mock!.signToken({ scope: 'mcp:read' })}`],
        ['Content-Type', 'application/json'],
        ['Accept', 'application/json, text/event-stream'],
        ...headers,
      ],
      body: listBody,
    })

  it('a foreign Origin → 403 from the transport, with a valid token; nothing ran', async () => {
    const res = await post([['Origin', 'http://evil.example']])
    expect(res.status).to.equal(403)
    expect(res.get('www-authenticate')).to.equal(undefined)
    expect(JSON.parse(res.text)).to.deep.equal({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Invalid Origin header: http://evil.example' },
      id: null,
    })
  })

  it('a foreign Host → 403 from the transport (DNS rebinding)', async () => {
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        server.mcpUrl,
        {
          method: 'POST',
          agent: false,
          headers: {
            Host: 'rebound.example:80',
            Authorization: `Bearer ${server.mock!.signToken({ scope: 'mcp:read' })}`,
            'Content-Type': 'application/json',
            Accept: 'application/json, text/event-stream',
          },
        },
        (response) => {
          let text = ''
          response.setEncoding('utf8')
          response.on('data', (chunk: string) => (text += chunk))
          response.on('end', () => resolve({ status: response.statusCode!, text }))
        },
      )
      req.setTimeout(10_000, () => req.destroy(new Error('no answer')))
      req.on('error', reject)
      req.end(listBody)
    })
    expect(res.status).to.equal(403)
    expect(JSON.parse(res.text)).to.deep.equal({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Invalid Host header: rebound.example:80' },
      id: null,
    })
  })

  it('its own Origin (127.0.0.1 or localhost), or none (AgentPress calls server to server), is served', async () => {
    const localhost = `localhost:${new URL(server.url).port}`
    for (const headers of [
      [['Origin', new URL(server.url).origin]],
      [],
      [['Origin', `http://${localhost}`]],
    ] as Array<Array<[string, string]>>) {
      const res = await post(headers)
      expect(res.status).to.equal(200)
      const body = JSON.parse(res.text) as { result: { tools: Array<{ name: string }> } }
      expect(body.result.tools.map((tool) => tool.name)).to.deep.equal(['list_notes'])
    }
  })
})
