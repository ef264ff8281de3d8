// requireMcpScopes: one scope gate for every MCP operation, driven by the official MCP SDK clients
// (v1 `@modelcontextprotocol/sdk`, v2 `@modelcontextprotocol/client`) against servers built with
// the matching SDK (v1 McpServer + StreamableHTTPServerTransport, v2 McpServer +
// NodeStreamableHTTPServerTransport) on real Express 4, Express 5 and Connect apps on 127.0.0.1.
// Every HTTP answer the client saw is recorded: exact status, WWW-Authenticate and body; every
// handler counts its runs, so a refused call is seen never to reach one.
import { expect } from 'chai'
import express5 from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as ClientTransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import {
  McpServer as McpServerV1,
  ResourceTemplate as ResourceTemplateV1,
} from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport as ServerTransportV1 } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as ClientTransportV2,
} from '@modelcontextprotocol/client'
import {
  McpServer as McpServerV2,
  ResourceTemplate as ResourceTemplateV2,
} from '@modelcontextprotocol/server'
import { NodeStreamableHTTPServerTransport as ServerTransportV2 } from '@modelcontextprotocol/node'
import { AgentPressPartnerStrategy, authenticatePartner } from 'passport-agentpress-partner'
import { requireMcpScopes, type McpScopeRules } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { z } from 'zod'

import { buildApp, STACKS, type Stack } from '../support/stacks.js'
import { listen, type Listening } from '../support/wire.js'

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
type Sdk = 'v1' | 'v2'

const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp'
const scopeChallenge = (scope: string) =>
  `Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="${scope}", resource_metadata="${PRM}"`
const NO_RULE_CHALLENGE = `Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", resource_metadata="${PRM}"`
const REFUSAL_BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: null,
  error: { code: -32001, message: 'Insufficient scope', data: { reason: 'insufficient_scope' } },
})

const RULES: McpScopeRules = {
  tools: {
    list_notes: ['notes:read'],
    add_note: ['notes:write'],
    // Argument-aware: writing to the shared folder needs files:share as well.
    write_file: (params) =>
      (params.arguments as { folder?: unknown } | undefined)?.folder === 'shared'
        ? ['files:write', 'files:share']
        : ['files:write'],
  },
  resources: { 'notes://public/*': ['notes:read'], 'notes://private/*': ['notes:private'] },
  prompts: { summarize: ['notes:read'], rewrite: ['notes:write'] },
}

/** Handler name → how many times it ran. */
type Runs = Record<string, number>

// One McpServer per request (stateless Streamable HTTP), built with the given SDK. `unruled`
// adds a tool that has no rule (a tool "added later").
function mcpHandler(sdk: Sdk, runs: Runs): Handler {
  const ran = (name: string) => {
    runs[name] = (runs[name] ?? 0) + 1
  }
  const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] })
  return (req, res) => {
    const Server = (sdk === 'v1' ? McpServerV1 : McpServerV2) as unknown as new (info: {
      name: string
      version: string
    }) => any
    const Template = (sdk === 'v1' ? ResourceTemplateV1 : ResourceTemplateV2) as unknown as new (
      uri: string,
      callbacks: object,
    ) => unknown
    const server = new Server({ name: 'notes', version: '1.0.0' })
    server.registerTool('list_notes', { description: 'List notes' }, async () => {
      ran('list_notes')
      return text('[]')
    })
    server.registerTool(
      'add_note',
      { description: 'Add a note', inputSchema: { text: z.string() } },
      async () => {
        ran('add_note')
        return text('added')
      },
    )
    server.registerTool(
      'write_file',
      { description: 'Write a file', inputSchema: { folder: z.string(), name: z.string() } },
      async (args: { folder: string }) => {
        ran(`write_file:${args.folder}`)
        return text('written')
      },
    )
    server.registerTool('unruled_tool', { description: 'Added without a rule' }, async () => {
      ran('unruled_tool')
      return text('ran')
    })
    server.registerResource(
      'notes',
      new Template('notes://{visibility}/{id}', {
        list: async () => ({
          resources: [
            { uri: 'notes://public/1', name: 'public note' },
            { uri: 'notes://private/2', name: 'private note' },
          ],
        }),
      }),
      { description: 'Notes' },
      async (uri: URL) => {
        ran(`read:${uri.href}`)
        return { contents: [{ uri: uri.href, text: `contents of ${uri.href}` }] }
      },
    )
    for (const name of ['summarize', 'rewrite']) {
      server.registerPrompt(name, { description: name }, async () => {
        ran(`prompt:${name}`)
        return { messages: [{ role: 'user', content: { type: 'text', text: name } }] }
      })
    }
    const transport =
      sdk === 'v1'
        ? new ServerTransportV1({ sessionIdGenerator: undefined })
        : new ServerTransportV2({ sessionIdGenerator: undefined })
    void (async () => {
      await server.connect(transport)
      await transport.handleRequest(req as never, res as never, (req as { body?: unknown }).body)
    })().catch((err) => {
      if (!res.headersSent) res.writeHead(500).end(String(err))
    })
  }
}

interface Seen {
  status: number
  challenge: string | null
  body: string
}

// An official SDK client (of `sdk`) for `url`, recording every POST's answer.
async function connect(sdk: Sdk, url: string, token: string) {
  const seen: Seen[] = []
  const recording = async (input: string | URL | Request, init?: RequestInit) => {
    const response = await fetch(input, init)
    if (init?.method === 'POST') {
      seen.push({
        status: response.status,
        challenge: response.headers.get('www-authenticate'),
        body: response.ok ? '' : await response.clone().text(),
      })
    }
    return response
  }
  const options = {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: recording,
  }
  const client: any =
    sdk === 'v1'
      ? new ClientV1({ name: 'gate-test', version: '1.0.0' })
      : new ClientV2({ name: 'gate-test', version: '1.0.0' })
  const transport =
    sdk === 'v1'
      ? new ClientTransportV1(new URL(url), options)
      : new ClientTransportV2(new URL(url), options as never)
  await client.connect(transport)
  seen.length = 0 // only the calls of the test itself
  return { client, seen, close: () => client.close() as Promise<void> }
}

async function refused(promise: Promise<unknown>): Promise<void> {
  let failed = false
  try {
    await promise
  } catch {
    failed = true
  }
  expect(failed, 'the call was refused').to.equal(true)
}

describe('requireMcpScopes() through the official MCP SDK clients', function () {
  this.timeout(30_000)
  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(async () => {
    await mock.close()
  })

  for (const sdk of ['v1', 'v2'] as const) {
    for (const stack of STACKS) {
      describe(`SDK ${sdk} on ${stack}`, () => {
        const runs: Runs = {}
        let app: Listening
        before(async () => {
          const strategy = new AgentPressPartnerStrategy(
            { partnerMcp: mock.partnerMcp, realm: 'mcp' },
            async (claims) => ({ id: claims.sub }),
          )
          const route = (path: string, rules: McpScopeRules) => ({
            path,
            handlers: [
              authenticatePartner(strategy, { body: 'jsonrpc' }),
              express5.json() as Handler,
              requireMcpScopes(rules),
              mcpHandler(sdk, runs),
            ],
          })
          app = await listen(
            buildApp(stack as Stack, [
              route('/mcp', RULES),
              route('/closed/mcp', { ...RULES, failClosed: true }),
            ]),
          )
        })
        after(async () => {
          await app.close()
        })
        beforeEach(() => {
          for (const key of Object.keys(runs)) delete runs[key]
        })

        it('a read-only token lists and reads notes://public/*, and gets one 403 for notes://private/*', async () => {
          const c = await connect(sdk, `${app.url}/mcp`, mock.signToken({ scope: 'notes:read' }))
          try {
            const listed = await c.client.listResources()
            expect(listed.resources.map((r: { uri: string }) => r.uri)).to.deep.equal([
              'notes://public/1',
              'notes://private/2',
            ])
            const read = await c.client.readResource({ uri: 'notes://public/1' })
            expect(read.contents).to.deep.equal([
              { uri: 'notes://public/1', text: 'contents of notes://public/1' },
            ])
            expect(c.seen.map((s) => s.status)).to.deep.equal([200, 200])
            c.seen.length = 0
            await refused(c.client.readResource({ uri: 'notes://private/2' }))
            expect(c.seen).to.deep.equal([
              { status: 403, challenge: scopeChallenge('notes:private'), body: REFUSAL_BODY },
            ])
            expect(runs).to.deep.equal({ 'read:notes://public/1': 1 })
          } finally {
            await c.close()
          }
        })

        it('prompts/get of a write-scoped prompt → 403 naming its scope; the read one runs', async () => {
          const c = await connect(sdk, `${app.url}/mcp`, mock.signToken({ scope: 'notes:read' }))
          try {
            const prompts = await c.client.listPrompts()
            expect(prompts.prompts.map((p: { name: string }) => p.name)).to.deep.equal([
              'summarize',
              'rewrite',
            ])
            await c.client.getPrompt({ name: 'summarize' })
            c.seen.length = 0
            await refused(c.client.getPrompt({ name: 'rewrite' }))
            expect(c.seen).to.deep.equal([
              { status: 403, challenge: scopeChallenge('notes:write'), body: REFUSAL_BODY },
            ])
            expect(runs).to.deep.equal({ 'prompt:summarize': 1 })
          } finally {
            await c.close()
          }
        })

        it('an argument-aware rule refuses exactly the calls whose arguments need more', async () => {
          const c = await connect(sdk, `${app.url}/mcp`, mock.signToken({ scope: 'files:write' }))
          try {
            for (const folder of ['private', 'drafts']) {
              const result = await c.client.callTool({
                name: 'write_file',
                arguments: { folder, name: 'a.txt' },
              })
              expect(result.content).to.deep.equal([{ type: 'text', text: 'written' }])
            }
            c.seen.length = 0
            await refused(
              c.client.callTool({ name: 'write_file', arguments: { folder: 'shared', name: 'a' } }),
            )
            expect(c.seen).to.deep.equal([
              {
                status: 403,
                challenge: scopeChallenge('files:write files:share'),
                body: REFUSAL_BODY,
              },
            ])
            expect(runs).to.deep.equal({ 'write_file:private': 1, 'write_file:drafts': 1 })
          } finally {
            await c.close()
          }
          const wide = await connect(
            sdk,
            `${app.url}/mcp`,
            mock.signToken({ scope: 'files:write files:share' }),
          )
          try {
            await wide.client.callTool({
              name: 'write_file',
              arguments: { folder: 'shared', name: 'a' },
            })
            expect(runs['write_file:shared']).to.equal(1)
          } finally {
            await wide.close()
          }
        })

        it('without failClosed a tool with no rule runs; with failClosed it is refused 403 naming no scope', async () => {
          const token = mock.signToken({ scope: 'notes:read notes:write files:write' })
          const open = await connect(sdk, `${app.url}/mcp`, token)
          try {
            await open.client.callTool({ name: 'unruled_tool', arguments: {} })
            expect(runs).to.deep.equal({ unruled_tool: 1 })
          } finally {
            await open.close()
          }
          const closed = await connect(sdk, `${app.url}/closed/mcp`, token)
          try {
            const tools = await closed.client.listTools()
            expect(tools.tools.map((t: { name: string }) => t.name)).to.include('unruled_tool')
            await closed.client.callTool({ name: 'list_notes', arguments: {} })
            closed.seen.length = 0
            await refused(closed.client.callTool({ name: 'unruled_tool', arguments: {} }))
            expect(closed.seen).to.deep.equal([
              { status: 403, challenge: NO_RULE_CHALLENGE, body: REFUSAL_BODY },
            ])
            expect(runs).to.deep.equal({ unruled_tool: 1, list_notes: 1 })
          } finally {
            await closed.close()
          }
        })
      })
    }
  }
})
