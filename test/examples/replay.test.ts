// The example MCP server with replay rejection on (this process's memory store): an SDK client
// that mints a fresh token per request, as AgentPress does, works through a whole session, and a
// token used twice is refused with the exact challenge and JSON-RPC body.
import { expect } from 'chai'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'

import { startServer, type RunningServer } from '../../examples/express-mcp-server/server.mjs'

describe('example MCP server with replay on', () => {
  let server: RunningServer
  before(async () => {
    server = await startServer({ port: 0, replay: 'on', log: () => {} })
  })
  after(() => server.close())

  const post = async (token: string) => {
    const res = await fetch(server.mcpUrl, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })
    return {
      status: res.status,
      challenge: res.headers.get('www-authenticate'),
      body: await res.text(),
    }
  }

  it('a fresh token per request: a whole SDK session (initialize, list, two calls) succeeds', async () => {
    let minted = 0
    const transport = new StreamableHTTPClientTransport(new URL(server.mcpUrl), {
      fetch: (input, init) => {
        const headers = new Headers(init?.headers)
        minted++
        headers.set('Authorization', `Bearer ${server.mock!.signToken({ sub: 'carol' })}`)
        return fetch(input, { ...init, headers })
      },
    })
    const client = new Client({ name: 'replay-test', version: '1.0.0' })
    await client.connect(transport)
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name)).to.deep.equal(['list_notes', 'add_note'])
    const added = await client.callTool({ name: 'add_note', arguments: { text: 'once' } })
    expect(added.isError).to.not.equal(true)
    const listed = await client.callTool({ name: 'list_notes', arguments: {} })
    expect(listed.isError).to.not.equal(true)
    await client.close()
    expect(minted).to.be.at.least(5)
  })

  it('the same token twice: 200, then 401 token_replayed with the exact challenge and body', async () => {
    const token = server.mock!.signToken()
    expect((await post(token)).status).to.equal(200)
    expect(await post(token)).to.deep.equal({
      status: 401,
      challenge: `Bearer realm="mcp", error="invalid_token", error_description="Token already used", resource_metadata="${server.metadataUrl}"`,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32001, message: 'Token already used', data: { reason: 'token_replayed' } },
      }),
    })
  })
})
