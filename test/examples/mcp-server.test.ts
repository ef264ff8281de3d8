// End to end: the example MCP server (examples/express-mcp-server) driven by the official MCP SDK
// client through every step of `npm run demo`. The example imports the package by name, so this
// runs against dist/ (`npm run build` first, as `npm test` does).
import { expect } from 'chai'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { discoverOAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/client/auth.js'
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'

import { startServer, type RunningServer } from '../../examples/express-mcp-server/server.mjs'
import { deliverWebhook } from 'passport-agentpress-partner/testing'
import { KEY_ROTATION_ERRORS } from 'passport-agentpress-partner'
import { flipChar, parts, payloadOf } from '../support/tokens.js'

interface Seen {
  status?: number
  challenge?: string | null
  body?: string
}

/** An SDK client sending `Authorization: Bearer <token>`; `seen` records the last POST's answer. */
function clientFor(server: RunningServer, token: string) {
  const seen: Seen = {}
  const transport = new StreamableHTTPClientTransport(new URL(server.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: async (input, init) => {
      const response = await fetch(input, init)
      if (init?.method === 'POST') {
        seen.status = response.status
        seen.challenge = response.headers.get('www-authenticate')
        if (!response.ok) seen.body = await response.clone().text()
      }
      return response
    },
  })
  const client = new Client({ name: 'e2e-test-client', version: '1.0.0' })
  return { client, transport, seen }
}

async function connected(server: RunningServer, token: string) {
  const c = clientFor(server, token)
  await c.client.connect(c.transport)
  return c
}

function textOf(result: unknown): unknown {
  const content = (result as { content: Array<{ type: string; text: string }> }).content
  return JSON.parse(content.find((item) => item.type === 'text')!.text)
}

async function rejection(promise: Promise<unknown>): Promise<StreamableHTTPError> {
  try {
    await promise
  } catch (err) {
    expect(err).to.be.instanceOf(StreamableHTTPError)
    return err as StreamableHTTPError
  }
  return expect.fail('expected a rejection')
}

/** The JSON-RPC refusal body of `authenticatePartner(passport, { body: 'jsonrpc' })` (§4). */
function rpcRefusal(reason: string, message: string) {
  return { jsonrpc: '2.0', id: null, error: { code: -32001, message, data: { reason } } }
}

/** A raw JSON-RPC POST to /mcp. */
function post(server: RunningServer, token: string | undefined, body: unknown) {
  return fetch(server.mcpUrl, {
    method: 'POST',
    headers: {
      ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify(body),
  })
}

describe('examples/express-mcp-server, end to end with the MCP SDK client', function () {
  this.timeout(20_000)

  let server: RunningServer
  const toolCalls: Array<{ tool: string; authInfo: AuthInfo }> = []
  const log: string[] = []

  before(async () => {
    server = await startServer({
      port: 0,
      log: (line) => log.push(line),
      onToolCall: (call) => toolCalls.push(call as { tool: string; authInfo: AuthInfo }),
    })
  })
  after(async () => {
    await server?.close()
  })

  it('starts an embedded mock AgentPress and advertises itself (RFC 9728)', async () => {
    expect(server.mock).to.not.equal(undefined)
    expect(server.issuer).to.equal(server.mock!.issuer)
    expect(server.audience).to.equal(server.mcpUrl)
    expect(server.metadataUrl).to.equal(`${server.url}/.well-known/oauth-protected-resource/mcp`)
    const metadata = await discoverOAuthProtectedResourceMetadata(server.mcpUrl)
    expect(metadata).to.deep.equal({
      resource: server.audience,
      authorization_servers: [server.issuer],
      scopes_supported: ['mcp:read', 'mcp:write'],
      bearer_methods_supported: ['header'],
      resource_name: 'AgentPress partner MCP example',
    })
  })

  it('refuses a request without a token: 401 with no error code (RFC 6750 §3.1)', async () => {
    const res = await post(server, undefined, { jsonrpc: '2.0', id: 1, method: 'tools/list' })
    expect(res.status).to.equal(401)
    expect(res.headers.get('www-authenticate')).to.equal(
      `Bearer realm="mcp", resource_metadata="${server.metadataUrl}"`,
    )
    expect(await res.json()).to.deep.equal({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32001, message: 'No credentials', data: { reason: 'no_credentials' } },
    })
  })

  describe('the demo steps', () => {
    let readToken: string

    it('1. connects with a read-only token and lists only the tools it may call', async () => {
      readToken = server.mock!.signToken({ sub: 'alice', scope: 'mcp:read' })
      const { client } = await connected(server, readToken)
      try {
        expect(client.getServerVersion()).to.deep.include({
          name: 'agentpress-partner-example',
          version: '1.0.0',
        })
        const { tools } = await client.listTools()
        expect(tools.map((tool) => tool.name)).to.deep.equal(['list_notes'])
      } finally {
        await client.close()
      }
    })

    it('   a read-write token lists both tools', async () => {
      const token = server.mock!.signToken({ sub: 'alice', scope: 'mcp:read mcp:write' })
      const { client } = await connected(server, token)
      try {
        const { tools } = await client.listTools()
        expect(tools.map((tool) => tool.name)).to.deep.equal(['list_notes', 'add_note'])
        expect(tools[1]!.inputSchema.required).to.deep.equal(['text'])
      } finally {
        await client.close()
      }
    })

    it('2. calls the read tool; the handler gets authInfo with the scopes and the provisioned user', async () => {
      const { client } = await connected(server, readToken)
      try {
        toolCalls.length = 0
        const result = await client.callTool({ name: 'list_notes', arguments: {} })
        expect(result.isError).to.not.equal(true)
        expect(textOf(result)).to.deep.equal({
          user: { id: 'usr_1', externalId: 'alice' },
          notes: [],
        })

        expect(toolCalls).to.have.length(1)
        const { tool, authInfo } = toolCalls[0]!
        const claims = payloadOf(readToken)
        expect(tool).to.equal('list_notes')
        expect(authInfo.token).to.equal(readToken)
        expect(authInfo.clientId).to.equal('example-partner')
        expect(authInfo.scopes).to.deep.equal(['mcp:read'])
        expect(authInfo.expiresAt).to.equal(claims.exp)
        expect(authInfo.resource?.href).to.equal(server.audience)
        const extra = authInfo.extra as {
          claims: Record<string, unknown>
          user: Record<string, unknown>
        }
        expect(extra.claims).to.deep.include({
          sub: 'alice',
          iss: server.issuer,
          ext_provider: 'example-partner',
        })
        expect(extra.user).to.deep.include({
          id: 'usr_1',
          extProvider: 'example-partner',
          externalId: 'alice',
        })
      } finally {
        await client.close()
      }
    })

    it('3. is refused the write tool: HTTP 403 with the exact insufficient_scope challenge', async () => {
      const c = await connected(server, readToken)
      try {
        toolCalls.length = 0
        const err = await rejection(
          c.client.callTool({ name: 'add_note', arguments: { text: 'nope' } }),
        )
        expect(err.code).to.equal(403)
        expect(c.seen.status).to.equal(403)
        expect(c.seen.challenge).to.equal(
          'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", ' +
            `scope="mcp:write", resource_metadata="${server.metadataUrl}"`,
        )
        expect(JSON.parse(c.seen.body!)).to.deep.equal({
          jsonrpc: '2.0',
          id: null,
          error: {
            code: -32001,
            message: 'Insufficient scope',
            data: { reason: 'insufficient_scope' },
          },
        })
        // Refused before the MCP server ran anything.
        expect(toolCalls).to.have.length(0)
        expect(server.users.list()[0]!.notes).to.deep.equal([])
      } finally {
        await c.client.close()
      }
    })

    it('   …and allowed it with a token carrying mcp:write', async () => {
      const token = server.mock!.signToken({ sub: 'alice', scope: 'mcp:read mcp:write' })
      const { client } = await connected(server, token)
      try {
        toolCalls.length = 0
        const result = await client.callTool({ name: 'add_note', arguments: { text: 'hello' } })
        expect(textOf(result)).to.deep.equal({
          user: { id: 'usr_1', externalId: 'alice' },
          added: 'hello',
          count: 1,
        })
        expect(toolCalls.map((call) => [call.tool, call.authInfo.scopes])).to.deep.equal([
          ['add_note', ['mcp:read', 'mcp:write']],
        ])
      } finally {
        await client.close()
      }
    })

    it('4. refuses a tampered token: HTTP 401 invalid_token', async () => {
      const [header, payload, signature] = parts(readToken)
      const c = clientFor(server, `${header}.${payload}.${flipChar(signature, 10)}`)
      const err = await rejection(c.client.connect(c.transport))
      expect(err.code).to.equal(401)
      expect(c.seen.status).to.equal(401)
      expect(c.seen.challenge).to.equal(
        'Bearer realm="mcp", error="invalid_token", error_description="Signature verification failed", ' +
          `resource_metadata="${server.metadataUrl}"`,
      )
      expect(JSON.parse(c.seen.body!)).to.deep.equal(
        rpcRefusal('signature_invalid', 'Signature verification failed'),
      )
    })

    it('5. rotates keys through the signed webhook; the next call succeeds with the new key', async () => {
      const mock = server.mock!
      const fetches = mock.jwksRequestCount
      const event = mock.rotateKeys()
      const delivery = await deliverWebhook(server.webhookUrl!, event, {
        secret: mock.webhookSecret,
      })
      expect(delivery.status).to.equal(200)
      expect(delivery.body).to.deep.equal({ received: true })
      expect(mock.jwksRequestCount).to.equal(fetches + 1)
      expect(log.at(-1)).to.equal(
        `key rotation: signing keys refreshed for ${server.issuer} (delivery ${event.id})`,
      )

      const fresh = mock.signToken({ sub: 'alice', scope: 'mcp:read' })
      expect(JSON.parse(Buffer.from(parts(fresh)[0], 'base64url').toString()).kid).to.equal(
        event.newCurrentKid,
      )
      const { client } = await connected(server, fresh)
      try {
        const result = await client.callTool({ name: 'list_notes', arguments: {} })
        expect(textOf(result)).to.deep.equal({
          user: { id: 'usr_1', externalId: 'alice' },
          notes: ['hello'],
        })
      } finally {
        await client.close()
      }
      // The webhook had already brought the key: the call itself fetched nothing.
      expect(mock.jwksRequestCount).to.equal(fetches + 1)
    })

    it('   an emergency rotation refuses the retired key at once', async () => {
      const mock = server.mock!
      const old = mock.signToken({ sub: 'alice', scope: 'mcp:read' })
      const event = mock.rotateKeys({ emergency: true })
      const delivery = await deliverWebhook(server.webhookUrl!, event, {
        secret: mock.webhookSecret,
      })
      expect([delivery.status, delivery.body]).to.deep.equal([200, { received: true }])
      const res = await post(server, old, { jsonrpc: '2.0', id: 1, method: 'tools/list' })
      expect(res.status).to.equal(401)
      expect(res.headers.get('www-authenticate')).to.equal(
        'Bearer realm="mcp", error="invalid_token", error_description="Signing key not found", ' +
          `resource_metadata="${server.metadataUrl}"`,
      )
      expect(await res.json()).to.deep.equal(
        rpcRefusal('kid_missing_or_unknown', 'Signing key not found'),
      )
    })

    it('   a forged webhook changes nothing: 401 signature_mismatch', async () => {
      const mock = server.mock!
      const fetches = mock.jwksRequestCount
      const delivery = await deliverWebhook(
        server.webhookUrl!,
        { id: 'evt_forged', type: 'signing_key_rotation', retiredKid: 'a', newCurrentKid: 'b' },
        { secret: 'whsec_nottherightsecret0000000' },
      )
      expect([delivery.status, delivery.body]).to.deep.equal([
        401,
        {
          error: 'signature_mismatch',
          error_description: KEY_ROTATION_ERRORS.signature_mismatch.description,
        },
      ])
      expect(mock.jwksRequestCount).to.equal(fetches)
    })
  })

  describe('the per-tool scope gate on one endpoint', () => {
    it('checks every tools/call of a JSON-RPC batch and names all the scopes the batch needs', async () => {
      const token = server.mock!.signToken({ sub: 'alice', scope: 'mcp:read' })
      const res = await post(server, token, [
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'list_notes', arguments: {} },
        },
        {
          jsonrpc: '2.0',
          id: 2,
          method: 'tools/call',
          params: { name: 'add_note', arguments: { text: 'x' } },
        },
      ])
      expect(res.status).to.equal(403)
      expect(res.headers.get('www-authenticate')).to.equal(
        'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", ' +
          `scope="mcp:read mcp:write", resource_metadata="${server.metadataUrl}"`,
      )
      expect(await res.json()).to.deep.equal(rpcRefusal('insufficient_scope', 'Insufficient scope'))
    })

    it('lets other methods and unknown tool names through to the MCP server', async () => {
      // A read-only token: tools/list is not gated (it lists the read tool only).
      const token = server.mock!.signToken({ sub: 'alice', scope: 'mcp:read' })
      const list = await post(server, token, { jsonrpc: '2.0', id: 6, method: 'tools/list' })
      expect(list.status).to.equal(200)
      expect(list.headers.get('www-authenticate')).to.equal(null)
      const listed = (await list.json()) as {
        jsonrpc: string
        id: number
        result: { tools: Array<{ name: string }> }
      }
      expect([listed.jsonrpc, listed.id]).to.deep.equal(['2.0', 6])
      expect(listed.result.tools.map((tool) => tool.name)).to.deep.equal(['list_notes'])

      // A name not in the scope table passes the gate; the SDK answers it as an error result.
      const res = await post(server, token, {
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'no_such_tool', arguments: {} },
      })
      expect(res.status).to.equal(200)
      expect(res.headers.get('www-authenticate')).to.equal(null)
      expect(await res.json()).to.deep.equal({
        jsonrpc: '2.0',
        id: 7,
        result: {
          content: [{ type: 'text', text: 'MCP error -32602: Tool no_such_tool not found' }],
          isError: true,
        },
      })
    })

    it('answers GET and DELETE on /mcp with 405 (stateless server)', async () => {
      const token = server.mock!.signToken({ sub: 'alice', scope: 'mcp:read mcp:write' })
      for (const method of ['GET', 'DELETE']) {
        for (const headers of [{}, { Authorization: `Bearer ${token}` }] as Record<
          string,
          string
        >[]) {
          const res = await fetch(server.mcpUrl, { method, headers })
          expect(res.status).to.equal(405)
          expect(res.headers.get('allow')).to.equal('POST')
          expect(res.headers.get('www-authenticate')).to.equal(null)
          expect(await res.json()).to.deep.equal({
            jsonrpc: '2.0',
            id: null,
            error: { code: -32000, message: 'Method not allowed' },
          })
        }
      }
    })
  })

  describe('users', () => {
    it('provisions each (ext_provider, sub) once, on first contact', async () => {
      const token = server.mock!.signToken({ sub: 'bob', scope: 'mcp:read' })
      expect(server.users.list().map((user) => user.externalId)).to.not.include('bob')
      for (let i = 0; i < 2; i++) {
        const res = await post(server, token, {
          jsonrpc: '2.0',
          id: i,
          method: 'tools/call',
          params: { name: 'list_notes', arguments: {} },
        })
        expect(res.status).to.equal(200)
        expect(res.headers.get('www-authenticate')).to.equal(null)
        const body = (await res.json()) as { jsonrpc: string; id: number; result: unknown }
        expect([body.jsonrpc, body.id]).to.deep.equal(['2.0', i])
        // Both calls resolve to the same local user: provisioned once, found the second time.
        expect(textOf(body.result)).to.deep.equal({
          user: { id: 'usr_2', externalId: 'bob' },
          notes: [],
        })
      }
      expect(
        server.users.list().map((user) => [user.id, user.extProvider, user.externalId]),
      ).to.deep.equal([
        ['usr_1', 'example-partner', 'alice'],
        ['usr_2', 'example-partner', 'bob'],
      ])
    })

    it('without provisioning, an unknown user is 403 user_not_provisioned', async () => {
      const closed = await startServer({ port: 0, autoProvision: false, log: () => {} })
      try {
        const res = await post(closed, closed.mock!.signToken(), {
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/list',
        })
        expect(res.status).to.equal(403)
        expect(res.headers.get('www-authenticate')).to.equal(
          'Bearer realm="mcp", error="user_not_provisioned", error_description="User not provisioned", ' +
            `resource_metadata="${closed.metadataUrl}"`,
        )
        expect(await res.json()).to.deep.equal(
          rpcRefusal('user_not_provisioned', 'User not provisioned'),
        )
      } finally {
        await closed.close()
      }
    })
  })

  it('trusts a configured issuer instead of a mock (no embedded mock, no mint endpoint)', async () => {
    const other = await startServer({
      port: 0,
      log: () => {},
      agentpress: {
        issuer: server.mock!.issuer,
        extProvider: 'example-partner',
        jwksUrl: server.mock!.jwksUrl,
      },
      webhookSecret: 'whsec_configuredsecret012345678900',
    })
    try {
      expect(other.mock).to.equal(undefined)
      expect(other.issuer).to.equal(server.mock!.issuer)
      const mint = await fetch(`${other.url}/_mock/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      })
      expect(mint.status).to.equal(404)
      // The other server's audience differs from the mock's default tokens: audience_mismatch.
      const res = await post(other, server.mock!.signToken(), {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      })
      expect(res.status).to.equal(401)
      expect(res.headers.get('www-authenticate')).to.equal(
        'Bearer realm="mcp", error="invalid_token", error_description="Audience does not match", ' +
          `resource_metadata="${other.metadataUrl}"`,
      )
      expect(await res.json()).to.deep.equal(
        rpcRefusal('audience_mismatch', 'Audience does not match'),
      )
      const ok = await post(other, server.mock!.signToken({ aud: other.audience }), {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      })
      expect(ok.status).to.equal(200)
    } finally {
      await other.close()
    }
  })
})
