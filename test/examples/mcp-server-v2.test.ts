// examples/mcp-server-v2 (MCP SDK v2, the default for new partners) through v2's own Client:
// tools/list by scope, a write call with a read-only token is one exact 403 insufficient_scope
// naming its scope and no tool handler runs, the strategy's AuthInfo reaches tool handlers as
// ctx.http.authInfo.
import { expect } from 'chai'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'

import { startServer } from '../../examples/mcp-server-v2/server.mjs'

type Running = Awaited<ReturnType<typeof startServer>>
interface Seen {
  status: number
  challenge: string | null
  body: string
}

describe('examples/mcp-server-v2: MCP SDK v2 server, v2 client', function () {
  this.timeout(20_000)
  let server: Running
  const calls: Array<{ tool: string; authInfo: unknown }> = []
  before(async () => {
    server = await startServer({ port: 0, log: () => {}, onToolCall: (call) => calls.push(call) })
  })
  after(() => server?.close())
  beforeEach(() => {
    calls.length = 0
  })

  // As AgentPress does, a fresh token per request (the example refuses a replayed one).
  async function connect(scope: string) {
    const tokens: string[] = []
    const seen: Seen[] = []
    const transport = new StreamableHTTPClientTransport(new URL(server.mcpUrl), {
      authProvider: {
        token: async () => {
          tokens.push(server.mock.signToken({ sub: 'erin', scope }))
          return tokens.at(-1)
        },
      },
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        seen.push({
          status: response.status,
          challenge: response.headers.get('www-authenticate'),
          body: await response.clone().text(),
        })
        return response
      },
    })
    const client = new Client({ name: 'example-v2-test', version: '1.0.0' })
    await client.connect(transport)
    return { client, seen, tokens }
  }

  it('a read-only token: tools/list shows the read tool only; the write call is one exact 403 and runs nothing', async () => {
    const c = await connect('mcp:read')
    try {
      const { tools } = await c.client.listTools()
      expect(tools.map((tool) => tool.name)).to.deep.equal(['list_notes'])
      c.seen.length = 0
      const err = await c.client.callTool({ name: 'add_note', arguments: { text: 'x' } }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).to.be.instanceOf(Error)
      expect(c.seen).to.deep.equal([
        {
          status: 403,
          challenge:
            'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", ' +
            `scope="mcp:write", resource_metadata="${server.metadataUrl}"`,
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: null,
            error: {
              code: -32001,
              message: 'Insufficient scope',
              data: { reason: 'insufficient_scope' },
            },
          }),
        },
      ])
      expect(calls).to.deep.equal([])
    } finally {
      await c.client.close()
    }
  })

  it('a read-write token: both tools listed; the tools run with our AuthInfo as ctx.http.authInfo', async () => {
    const c = await connect('mcp:read mcp:write')
    try {
      const { tools } = await c.client.listTools()
      expect(tools.map((tool) => tool.name)).to.deep.equal(['list_notes', 'add_note'])
      const added = await c.client.callTool({ name: 'add_note', arguments: { text: 'hello' } })
      expect(added.content).to.deep.equal([
        { type: 'text', text: JSON.stringify({ user: 'erin', added: 'hello', count: 1 }) },
      ])
      const listed = await c.client.callTool({ name: 'list_notes', arguments: {} })
      expect(listed.content).to.deep.equal([
        { type: 'text', text: JSON.stringify({ user: 'erin', notes: ['hello'] }) },
      ])
      expect(calls.map((call) => call.tool)).to.deep.equal(['add_note', 'list_notes'])
      const authInfo = calls[0]!.authInfo as Record<string, unknown>
      expect(Object.keys(authInfo).sort()).to.deep.equal(
        ['clientId', 'expiresAt', 'extra', 'resource', 'scopes', 'token'].sort(),
      )
      expect(authInfo).to.deep.include({
        token: c.tokens.at(-2),
        clientId: server.mock.extProvider,
        scopes: ['mcp:read', 'mcp:write'],
      })
      expect(String(authInfo.resource)).to.equal(server.mcpUrl)
    } finally {
      await c.client.close()
    }
  })

  it('no token → 401 with the challenge naming the metadata; a foreign Origin → 403', async () => {
    const none = await fetch(server.mcpUrl, { method: 'POST' })
    expect([none.status, none.headers.get('www-authenticate')]).to.deep.equal([
      401,
      `Bearer realm="mcp", resource_metadata="${server.metadataUrl}"`,
    ])
    const foreign = await fetch(server.mcpUrl, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${server.mock.signToken()}`,
        Origin: 'https://evil.example',
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    })
    expect(foreign.status).to.equal(403)
    expect(calls).to.deep.equal([])
  })
})
