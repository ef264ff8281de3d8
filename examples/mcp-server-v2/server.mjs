/**
 * An MCP server on MCP TypeScript SDK v2 (`@modelcontextprotocol/server`, `/node`, `/express`),
 * stateless Streamable HTTP, protected by AgentPress partner tokens: the default for new partners.
 * (examples/express-mcp-server is the same server on SDK v1, for servers that stay on it.)
 *
 *   node examples/mcp-server-v2/server.mjs      # embedded mock AgentPress on 127.0.0.1:3001
 *
 * The pipeline of POST /mcp: our strategy (through `authenticatePartner`) (401/403/503 with the exact challenge, as
 * JSON-RPC bodies) → Host / Origin validation (DNS rebinding) → JSON body → per-tool scopes
 * (`requireToolScopes`: one 403 insufficient_scope naming every scope the message needs) → a fresh
 * v2 `McpServer` whose `tools/list` shows only what the token may call (`limitToolsToScopes`). The
 * strategy's `req.auth` reaches tool handlers as `ctx.http.authInfo`.
 */
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'

import express from 'express'
import { hostHeaderValidation, originValidation } from '@modelcontextprotocol/express'
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node'
import {
  AgentPressPartnerStrategy,
  authenticatePartner,
  MemoryReplayStore,
  protectedResourceMetadata,
} from 'passport-agentpress-partner'
import { requireToolScopes } from 'passport-agentpress-partner/mcp/v2'
import { createMockAgentPress } from 'passport-agentpress-partner/testing'

import { createMcpServer, TOOL_SCOPES } from './tools.mjs'

export const MCP_PATH = '/mcp'

/**
 * Starts the example on 127.0.0.1 with an embedded mock AgentPress (local development). For a
 * real deployment, give the strategy your org's issuer, your audience and `ext_provider` instead.
 *
 * @param {import('./server.d.mts').StartServerOptions} [options]
 * @returns {Promise<import('./server.d.mts').RunningServer>}
 */
export async function startServer({ port = 3001, log = console.log, onToolCall } = {}) {
  let app
  const server = createServer((req, res) => (app ? app(req, res) : res.writeHead(503).end()))
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  const url = `http://127.0.0.1:${server.address().port}`
  const audience = `${url}${MCP_PATH}`
  const mock = await createMockAgentPress({ audience, sub: 'alice' })

  const prm = protectedResourceMetadata({
    resource: audience,
    authorizationServers: [mock.issuer],
    scopesSupported: ['mcp:read', 'mcp:write'],
  })
  const strategy = new AgentPressPartnerStrategy(
    {
      partnerMcp: { ...mock.partnerMcp, replay: new MemoryReplayStore() },
      realm: 'mcp',
      resourceMetadataUrl: prm.url,
    },
    async (claims) => ({ id: claims.sub }),
  )
  const notes = new Map()
  const notesOf = (id) => notes.get(id) ?? notes.set(id, []).get(id)

  const tools = requireToolScopes(TOOL_SCOPES)
  const built = express()
  built.disable('x-powered-by')
  built.use(prm)
  built.post(
    MCP_PATH,
    authenticatePartner(strategy, { body: 'jsonrpc' }),
    hostHeaderValidation(['127.0.0.1', 'localhost']),
    originValidation(['127.0.0.1', 'localhost']),
    express.json({ limit: '1mb' }),
    tools,
    async (req, res, next) => {
      // Stateless: a fresh server and transport per request, each authenticated by its own token.
      const mcp = createMcpServer({ tools, authInfo: req.auth, notesOf, onToolCall })
      const transport = new NodeStreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      })
      res.on('close', () => {
        void transport.close()
        void mcp.close()
      })
      try {
        await mcp.connect(transport)
        await transport.handleRequest(req, res, req.body)
      } catch (err) {
        next(err)
      }
    },
  )
  built.all(MCP_PATH, (_req, res) => {
    res
      .status(405)
      .set('Allow', 'POST')
      .json({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32000, message: 'Method not allowed' },
      })
  })
  await strategy.warmUp()
  app = built
  log(`MCP server (SDK v2) on ${audience}, trusting the embedded mock ${mock.issuer}`)

  return {
    url,
    mcpUrl: audience,
    metadataUrl: prm.url,
    mock,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await mock.close()
    },
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const running = await startServer({ port: Number(process.env.PORT ?? 3001) })
  const stop = () => void running.close().then(() => process.exit(0))
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
