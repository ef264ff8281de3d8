// lib/express.ts: the opt-in types of `import 'passport-agentpress-partner/express'`. The type
// assertions below fail `npm test`'s typecheck if the augmentation drifts from the MCP SDK's
// AuthInfo or from what the strategy sets; the request proves the values are really there.
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { expect } from 'chai'
import express from 'express'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import 'passport-agentpress-partner/express'
import {
  AgentPressPartnerStrategy,
  authenticatePartner,
  requireScopes,
  type AgentPressAuthInfo,
  type McpAuthInfo,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import request from 'supertest'

// Both directions: ours is the SDK's shape exactly, not merely assignable to it.
export const toSdk = (auth: McpAuthInfo): AuthInfo => auth
export const fromSdk = (auth: AuthInfo): McpAuthInfo => auth
// An Express request goes to the SDK transport as it is, carrying req.auth to tool handlers.
export const handOver = (
  transport: StreamableHTTPServerTransport,
  req: express.Request,
  res: express.Response,
): Promise<void> => transport.handleRequest(req, res, req.body)

describe("import 'passport-agentpress-partner/express'", () => {
  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(() => mock.close())

  it('types req.authInfo (present: no ! or casts) and req.auth (optional, as the MCP SDKs declare it)', async () => {
    const strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, async (c) => ({
      sub: c.sub,
    }))
    const app = express()
    app.post('/mcp', authenticatePartner(strategy), requireScopes('mcp:read'), (req, res) => {
      const info: AgentPressAuthInfo = req.authInfo
      // @ts-expect-error: optional, as the MCP SDKs declare it (both declarations must agree)
      const unchecked: AuthInfo = req.auth
      void unchecked
      const auth: AuthInfo = req.auth!
      // @ts-expect-error: typed, not any: scopes are strings
      const wrong: number[] = req.authInfo.scopes
      void wrong
      res.json({
        scopes: info.scopes,
        issuer: req.authInfo.issuer === mock.partnerMcp.issuer,
        sub: req.authInfo.claims.sub,
        clientId: auth.clientId,
        resource: String(auth.resource),
        extraUser: auth.extra?.user,
      })
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const response = await request(`http://127.0.0.1:${port}`)
      .post('/mcp')
      .set('Authorization', `Bearer ${mock.signToken({ sub: 'alice' })}`)
    server.close()
    expect({ status: response.status, body: response.body as unknown }).to.deep.equal({
      status: 200,
      body: {
        scopes: ['mcp:read', 'mcp:write'],
        issuer: true,
        sub: 'alice',
        clientId: 'example-partner',
        resource: 'http://127.0.0.1:3000/mcp',
        extraUser: { sub: 'alice' },
      },
    })
  })
})
