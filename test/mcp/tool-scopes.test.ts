// requireToolScopes: the per-tool scope gate for the JSON-RPC body of /mcp, on real Express 4,
// Express 5 and Connect apps served on 127.0.0.1, after a real strategy and a real JSON parser
// (Express 5's express.json(), body-parser 2, on every stack).
import { expect } from 'chai'
import express5 from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { AgentPressPartnerStrategy, authenticatePartner } from 'passport-agentpress-partner'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import request from 'supertest'

import { listen, type Listening } from '../support/wire.js'
import { buildApp, challenges, STACKS, type Stack } from '../support/stacks.js'

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void

const TOOLS = { list_notes: ['mcp:read'], add_note: ['mcp:write'], purge: ['mcp:write', 'admin'] }
const call = (id: number, name: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
})
const refusal = {
  jsonrpc: '2.0',
  id: null,
  error: { code: -32001, message: 'Insufficient scope', data: { reason: 'insufficient_scope' } },
}
// The mock's audience is http://127.0.0.1:3000/mcp: the default resource_metadata derives from it.
const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp'
const scopeChallenge = (scope: string) =>
  `Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="${scope}", resource_metadata="${PRM}"`

describe('requireToolScopes()', () => {
  describe('options, checked at creation', () => {
    const invalid: Array<[string, unknown, string]> = [
      ['no table', undefined, 'requireToolScopes() needs an object: tool name → scopes'],
      ['an array', [['a', ['b']]], 'requireToolScopes() needs an object: tool name → scopes'],
      [
        'scopes that are not a list',
        { add_note: 'mcp:write' },
        'requireToolScopes() toolScopes["add_note"] must be an array of scope strings, not a string: use ["mcp:write"]',
      ],
      [
        'a scope with a space',
        { add_note: ['mcp:write now'] },
        'requireToolScopes() toolScopes["add_note"][0] must be a non-empty RFC 6749 scope token (%x21 / %x23-5B / %x5D-7E, no spaces)',
      ],
    ]
    for (const [what, table, message] of invalid) {
      it(`refuses ${what}`, () => {
        expect(() => requireToolScopes(table as never))
          .to.throw(TypeError)
          .with.property('message', message)
      })
    }

    it('keeps a frozen copy of the table: later mutation by the caller changes nothing', () => {
      const table = { add_note: ['mcp:write'] }
      const gate = requireToolScopes(table)
      table.add_note.push('extra')
      expect(gate.toolScopes).to.deep.equal({ add_note: ['mcp:write'] })
      expect(Object.isFrozen(gate.toolScopes)).to.equal(true)
      expect(Object.isFrozen(gate.toolScopes.add_note)).to.equal(true)
    })

    it('allows(): every scope of the tool, from AuthInfo or a list; tools outside the table are allowed', () => {
      const gate = requireToolScopes(TOOLS)
      expect(gate.allows('list_notes', { scopes: ['mcp:read'] })).to.equal(true)
      expect(gate.allows('add_note', { scopes: ['mcp:read'] })).to.equal(false)
      expect(gate.allows('purge', ['mcp:write'])).to.equal(false)
      expect(gate.allows('purge', ['admin', 'mcp:write'])).to.equal(true)
      expect(gate.allows('add_note', undefined)).to.equal(false)
      expect(gate.allows('not_in_table', undefined)).to.equal(true)
    })
  })

  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(async () => {
    await mock.close()
  })

  for (const stack of STACKS) {
    describe(`on ${stack}`, () => {
      const ran: unknown[] = []
      let app: Listening
      let unparsed: Listening
      let text: Listening

      const reached: Handler = (req, res) => {
        ran.push((req as { body?: unknown }).body)
        res.setHeader('Content-Type', 'application/json')
        res.end('{"reached":true}')
      }
      const serve = (path: string, parser: Handler | undefined) => {
        const strategy = new AgentPressPartnerStrategy(
          { partnerMcp: mock.partnerMcp, realm: 'mcp' },
          async (claims) => ({ id: claims.sub }),
        )
        const handlers = [
          authenticatePartner(strategy, { body: 'jsonrpc' }),
          ...(parser === undefined ? [] : [parser]),
          requireToolScopes(TOOLS),
          reached,
        ]
        return listen(buildApp(stack as Stack, [{ path, handlers }]))
      }
      before(async () => {
        app = await serve('/mcp', express5.json() as Handler)
        unparsed = await serve('/mcp', undefined)
        text = await serve('/mcp', express5.text({ type: '*/*' }) as Handler)
      })
      after(async () => {
        await Promise.all([app.close(), unparsed.close(), text.close()])
      })
      beforeEach(() => {
        ran.length = 0
      })
      const post = (server: Listening, scope: string, body: unknown) =>
        request(server.url)
          .post('/mcp')
          .set('Authorization', `Bearer ${mock.signToken({ scope })}`)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify(body))

      it('a tools/call of a tool the token may not call → 403 naming that tool scopes; nothing ran', async () => {
        const res = await post(app, 'mcp:read', call(1, 'add_note'))
        expect(res.status).to.equal(403)
        expect(challenges(res)).to.deep.equal([scopeChallenge('mcp:write')])
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
        expect(res.body).to.deep.equal(refusal)
        expect(ran).to.deep.equal([])
      })

      it('a batch mixing allowed and forbidden calls → one 403 naming the union, in table order', async () => {
        const res = await post(app, 'mcp:read', [
          call(1, 'purge'),
          call(2, 'list_notes'),
          call(3, 'add_note'),
        ])
        expect(res.status).to.equal(403)
        expect(challenges(res)).to.deep.equal([scopeChallenge('mcp:read mcp:write admin')])
        expect(res.body).to.deep.equal(refusal)
        expect(ran).to.deep.equal([])
      })

      it('calls within the scopes reach the handler with the parsed body', async () => {
        const batch = [call(1, 'list_notes'), call(2, 'add_note')]
        const res = await post(app, 'mcp:read mcp:write', batch)
        expect([res.status, res.text, challenges(res)]).to.deep.equal([200, '{"reached":true}', []])
        expect(ran).to.deep.equal([batch])
      })

      it('other methods, notifications, unknown tools and non-JSON-RPC values pass through', async () => {
        const bodies = [
          { jsonrpc: '2.0', id: 1, method: 'tools/list' },
          { jsonrpc: '2.0', id: 2, method: 'initialize', params: {} },
          { jsonrpc: '2.0', method: 'notifications/initialized' },
          call(3, 'no_such_tool'),
          { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 42 } },
          { jsonrpc: '2.0', id: 5, method: 'tools/call' },
          [],
          [null, 7, 'x'],
        ]
        for (const body of bodies) {
          const res = await post(app, 'other:scope', body)
          expect([res.status, res.text]).to.deep.equal([200, '{"reached":true}'])
        }
        expect(ran).to.deep.equal(bodies)
      })

      it('with no JSON parser before it: 501 with a JSON-RPC error saying so, no stack, nothing ran', async () => {
        const res = await post(unparsed, 'mcp:read mcp:write', call(1, 'add_note'))
        expect(res.status).to.equal(501)
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
        expect(res.body).to.deep.equal({
          jsonrpc: '2.0',
          id: null,
          error: {
            code: -32000,
            message: 'Server setup error: no JSON body parser before the MCP scope gate',
          },
        })
        expect(ran).to.deep.equal([])
      })

      it('a body that is not JSON is 415, with or without a parser; nothing ran', async () => {
        for (const server of [unparsed, text, app]) {
          const res = await request(server.url)
            .post('/mcp')
            .set('Authorization', `Bearer ${mock.signToken({ scope: 'mcp:read' })}`)
            .set('Content-Type', 'text/plain')
            .send(JSON.stringify(call(1, 'add_note')))
          expect(res.status).to.equal(415)
          expect(res.body).to.deep.equal({
            jsonrpc: '2.0',
            id: null,
            error: {
              code: -32000,
              message: 'Unsupported Media Type: Content-Type must be application/json',
            },
          })
        }
        expect(ran).to.deep.equal([])
      })

      it('a request without a body passes (nothing to check)', async () => {
        const res = await request(unparsed.url)
          .get('/mcp')
          .set('Authorization', `Bearer ${mock.signToken({ scope: 'mcp:read' })}`)
        expect([res.status, res.text]).to.deep.equal([200, '{"reached":true}'])
      })
    })
  }
})
