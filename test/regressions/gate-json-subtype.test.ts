// The tool scope gate answered a `+json` media type (`application/vnd.api+json`) on /mcp with 501
// "Server setup error" on Express 5 (its express.json() leaves req.body undefined for a type it
// skips) and passed it on to the transport on Express 4 (its parser leaves {}), which answered
// 415: one request, two answers. MCP bodies are `application/json` only, so every stack, with or
// without a JSON parser, must answer the same 415; 501 only when no JSON parser ran at all on an
// `application/json` body.
import { expect } from 'chai'
import express5 from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { AgentPressPartnerStrategy, authenticatePartner } from 'passport-agentpress-partner'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

import { buildApp, STACKS } from '../support/stacks.js'
import { listen, type Listening } from '../support/wire.js'

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
const express4 = createRequire(import.meta.url)('express4') as typeof express5

const UNSUPPORTED = {
  jsonrpc: '2.0',
  id: null,
  error: { code: -32000, message: 'Unsupported Media Type: Content-Type must be application/json' },
}
const NO_PARSER = {
  jsonrpc: '2.0',
  id: null,
  error: {
    code: -32000,
    message: 'Server setup error: no JSON body parser before the MCP scope gate',
  },
}

describe('regression: a +json media type gets the same 415 on Express 4, Express 5 and Connect', () => {
  let mock: MockAgentPress
  const servers: Listening[] = []
  const reached: unknown[] = []
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(async () => {
    await Promise.all(servers.map((s) => s.close()))
    await mock.close()
  })

  // Each stack with its own framework's JSON parser, with Express 5's, and with none.
  const parsers: Array<[string, Handler | undefined]> = [
    ["the framework's express.json()", undefined],
    ['no parser', undefined],
  ]
  for (const stack of STACKS) {
    for (const [label] of parsers) {
      describe(`${stack}, ${label}`, () => {
        let server: Listening
        before(async () => {
          const own =
            label === 'no parser'
              ? undefined
              : ((stack === 'express4' ? express4.json() : express5.json()) as Handler)
          const strategy = new AgentPressPartnerStrategy(
            { partnerMcp: mock.partnerMcp, realm: 'mcp' },
            async (claims) => ({ id: claims.sub }),
          )
          const handlers: Handler[] = [
            authenticatePartner(strategy, { body: 'jsonrpc' }),
            ...(own === undefined ? [] : [own]),
            requireToolScopes({ add_note: ['mcp:write'] }),
            (req, res) => {
              reached.push((req as { body?: unknown }).body)
              res.setHeader('Content-Type', 'application/json')
              res.end('{"reached":true}')
            },
          ]
          server = await listen(buildApp(stack, [{ path: '/mcp', handlers }]))
          servers.push(server)
        })
        beforeEach(() => {
          reached.length = 0
        })

        const post = (type: string) =>
          fetch(`${server.url}/mcp`, {
            method: 'POST',
            headers: {
              Authorization: `Bearer ${mock.signToken({ scope: 'mcp:read' })}`,
              'Content-Type': type,
            },
            body: JSON.stringify({
              jsonrpc: '2.0',
              id: 1,
              method: 'tools/call',
              params: { name: 'add_note', arguments: {} },
            }),
          })

        for (const type of [
          'application/vnd.api+json',
          'application/merge-patch+json; charset=utf-8',
          'application/json-seq',
        ]) {
          it(`Content-Type: ${type} → 415, nothing reached the transport`, async () => {
            const res = await post(type)
            expect(res.status).to.equal(415)
            expect(res.headers.get('www-authenticate')).to.equal(null)
            expect(res.headers.get('content-type')).to.equal('application/json; charset=utf-8')
            expect(await res.json()).to.deep.equal(UNSUPPORTED)
            expect(reached).to.deep.equal([])
          })
        }

        it(
          label === 'no parser'
            ? 'application/json with no JSON parser at all → 501'
            : 'application/json → checked: 403 for a tool the token may not call',
          async () => {
            const res = await post('application/json')
            if (label === 'no parser') {
              expect(res.status).to.equal(501)
              expect(await res.json()).to.deep.equal(NO_PARSER)
            } else {
              expect(res.status).to.equal(403)
              expect(res.headers.get('www-authenticate')).to.equal(
                'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:write", resource_metadata="http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp"',
              )
            }
            expect(reached).to.deep.equal([])
          },
        )
      })
    }
  }
})
