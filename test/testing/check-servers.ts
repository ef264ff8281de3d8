// Servers for the `check` tests: a correct partner MCP server on Express 4, Express 5 or Connect
// (the package's strategy, metadata, rotation router and tool gate, the mock's control API, an
// Origin check), and the same server with one deliberate flaw, each a mistake partners make.
import connect from 'connect'
import express5 from 'express'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'

import {
  AgentPressPartnerStrategy,
  MemoryReplayStore,
  PartnerTokenError,
  PartnerTokenVerifier,
  authenticatePartner,
  createKeyRotationRouter,
  protectedResourceMetadata,
} from 'passport-agentpress-partner'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, createMockControl } from 'passport-agentpress-partner/testing'
import type { Stack } from '../support/stacks.js'

const express4 = createRequire(import.meta.url)('express4') as typeof express5

export type Flaw =
  | 'accepts-alg-none'
  | 'error-on-bad-signature'
  | 'no-metadata'
  | 'fetches-jku'
  | 'webhook-accepts-unsigned'
  | 'ignores-aud'

export interface PartnerServer {
  readonly url: string
  readonly mcpUrl: string
  readonly webhookUrl: string
  close(): Promise<void>
}

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void

const WEBHOOK_PATH = '/webhooks/agentpress/key-rotation'

function json(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify(body))
}

function headerOf(req: IncomingMessage): Record<string, unknown> | undefined {
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
  try {
    return JSON.parse(Buffer.from(token!.split('.')[0]!, 'base64url').toString()) as Record<
      string,
      unknown
    >
  } catch {
    return undefined
  }
}

export async function startPartnerServer(stack: Stack, flaw?: Flaw): Promise<PartnerServer> {
  let app: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  const server = createServer((req, res) => app!(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const mcpUrl = `${url}/mcp`
  const mock = await createMockAgentPress({ audience: mcpUrl, sub: 'alice' })
  const partnerMcp = {
    issuer: mock.issuer,
    jwksUrl: mock.jwksUrl,
    audience: mcpUrl,
    expectedExtProvider: mock.extProvider,
  }
  const prm = protectedResourceMetadata({
    resource: mcpUrl,
    authorizationServers: [mock.issuer],
    scopesSupported: ['mcp:read'],
  })
  const strategy = new AgentPressPartnerStrategy(
    {
      partnerMcp: { ...partnerMcp, replay: new MemoryReplayStore() },
      resourceMetadataUrl: prm.url,
    },
    async (claims) => ({ id: claims.sub }),
  )
  // The flawed servers' own second opinion on a token.
  const lenient = new PartnerTokenVerifier(partnerMcp)

  const mcp: Handler = (req, res) => {
    // Streamable HTTP: servers MUST validate Origin; this one serves no browser origin.
    if (req.headers.origin !== undefined && req.headers.origin !== url) {
      return json(res, 403, {
        jsonrpc: '2.0',
        id: null,
        error: { code: -32000, message: 'Origin' },
      })
    }
    const body = (req as IncomingMessage & { body?: { id?: unknown; method?: unknown } }).body
    const result =
      body?.method === 'tools/list'
        ? { tools: [{ name: 'list_notes', inputSchema: { type: 'object' } }] }
        : body?.method === 'tools/call'
          ? { content: [{ type: 'text', text: '[]' }] }
          : {
              protocolVersion: '2025-06-18',
              capabilities: { tools: {} },
              serverInfo: { name: 't', version: '1' },
            }
    json(res, 200, { jsonrpc: '2.0', id: body?.id ?? null, result })
  }
  const ok: Handler = (_req, res) =>
    json(res, 200, { jsonrpc: '2.0', id: 1, result: { served: true } })

  // The flaw, mounted before the real pipeline of its route.
  const mcpFlaws: Handler[] = []
  const webhookFlaws: Handler[] = []
  if (flaw === 'accepts-alg-none') {
    mcpFlaws.push((req, res, next) => (headerOf(req)?.alg === 'none' ? ok(req, res, next) : next()))
  } else if (flaw === 'fetches-jku') {
    mcpFlaws.push((req, _res, next) => {
      const jku = headerOf(req)?.jku
      if (typeof jku !== 'string') return next()
      fetch(jku, { signal: AbortSignal.timeout(2000) }).then(
        () => next(),
        () => next(),
      )
    })
  } else if (flaw === 'error-on-bad-signature' || flaw === 'ignores-aud') {
    mcpFlaws.push((req, res, next) => {
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
      if (token === undefined) return next()
      lenient.verifyToken(token).then(
        () => next(),
        (err: unknown) => {
          const reason = err instanceof PartnerTokenError ? err.reason : undefined
          if (flaw === 'error-on-bad-signature' && reason === 'signature_invalid') {
            return json(res, 500, { error: 'internal error' })
          }
          if (flaw === 'ignores-aud' && reason === 'audience_mismatch') return ok(req, res, next)
          next()
        },
      )
    })
  } else if (flaw === 'webhook-accepts-unsigned') {
    webhookFlaws.push((req, res, next) =>
      req.headers['x-agentpress-signature'] === undefined ? json(res, 200, { ok: true }) : next(),
    )
  }

  const rotation = createKeyRotationRouter({ webhookSecret: mock.webhookSecret, strategy })
  const control = createMockControl(mock)
  const mcpPipeline = [
    ...mcpFlaws,
    authenticatePartner(strategy, { body: 'jsonrpc' }) as Handler,
    express5.json() as unknown as Handler,
    requireToolScopes({ list_notes: ['mcp:read'] }) as Handler,
    mcp,
  ]
  const global: Handler[] = [...(flaw === 'no-metadata' ? [] : [prm as Handler]), control]
  if (stack === 'connect') {
    const c = connect()
    for (const h of global) c.use(h as connect.NextHandleFunction)
    for (const h of [...webhookFlaws, rotation as Handler])
      c.use(WEBHOOK_PATH, h as connect.NextHandleFunction)
    for (const h of mcpPipeline) c.use('/mcp', h as connect.NextHandleFunction)
    app = c
  } else {
    const e = stack === 'express4' ? express4() : express5()
    for (const h of global) e.use(h as express5.RequestHandler)
    e.use(WEBHOOK_PATH, ...([...webhookFlaws, rotation] as unknown as express5.RequestHandler[]))
    e.post('/mcp', ...(mcpPipeline as unknown as express5.RequestHandler[]))
    app = e
  }
  return {
    url,
    mcpUrl,
    webhookUrl: `${url}${WEBHOOK_PATH}`,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await mock.close()
    },
  }
}
