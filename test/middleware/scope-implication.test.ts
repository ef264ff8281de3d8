// Opt-in scope implication (`implies: { 'notes:write': ['notes:read'] }`): off by default (flat sets,
// §2), and when declared, applied in every place scopes are checked — the strategy's
// requiredScopes, route scopes (passport.authenticate / authenticatePartner), requireScopes and
// the MCP scope gate — on real Express 4, Express 5 and Connect apps. Challenges still name the
// scopes the route requires.
import { expect } from 'chai'
import express5 from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  AgentPressPartnerStrategy,
  authenticatePartner,
  requireScopes,
  type ScopeImplication,
} from 'passport-agentpress-partner'
import { requireMcpScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

import { buildApp, newPassport, STACKS } from '../support/stacks.js'
import { listen, type Listening } from '../support/wire.js'

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void

const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp'
const IMPLIES: ScopeImplication = { 'notes:admin': ['notes:write'], 'notes:write': ['notes:read'] }
const challenge = (scope: string) =>
  `Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="${scope}", resource_metadata="${PRM}"`
const ok: Handler = (_req, res) => {
  res.setHeader('Content-Type', 'application/json')
  res.end('{"ok":true}')
}
const LIST_NOTES = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'list_notes', arguments: {} },
})

describe('scope implication (implies)', () => {
  describe('options, checked at creation', () => {
    const cases: Array<[string, () => unknown, string]> = [
      [
        'strategy: not an object',
        () =>
          new AgentPressPartnerStrategy(
            { verifier: { verifyToken: async () => ({}) as never }, implies: ['a'] as never },
            () => {},
          ),
        "options.implies must be an object: scope → the scopes it implies, e.g. { 'notes:write': ['notes:read'] }",
      ],
      [
        'requireScopes: a key with a space',
        () => requireScopes('notes:read', { implies: { 'a b': ['c'] } }),
        'requireScopes() options.implies["a b"]: the key must be an RFC 6749 scope token (no spaces)',
      ],
      [
        'requireScopes: an unknown option',
        () => requireScopes('notes:read', { implied: {} } as never),
        'Unknown requireScopes() option: implied',
      ],
      [
        'gate: implied scopes not a list',
        () => requireMcpScopes({ implies: { 'notes:write': 'notes:read' } as never }),
        'requireMcpScopes() options.implies["notes:write"] must be an array of scope strings, not a string: use ["notes:read"]',
      ],
    ]
    for (const [what, make, message] of cases) {
      it(`refuses ${what}`, () => {
        expect(make).to.throw(TypeError).with.property('message', message)
      })
    }
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
      let server: Listening
      before(async () => {
        const strategy = (implies: ScopeImplication | undefined, requiredScopes?: string[]) =>
          new AgentPressPartnerStrategy(
            { partnerMcp: mock.partnerMcp, realm: 'mcp', implies, requiredScopes },
            async (claims) => ({ id: claims.sub }),
          )
        const flat = strategy(undefined)
        const hierarchical = strategy(IMPLIES)
        const passport = newPassport()
        passport.use('flat', strategy(undefined))
        passport.use('hier', strategy(IMPLIES))
        const json = express5.json() as Handler
        const gate = { tools: { list_notes: ['notes:read'] } }
        const routes: Array<[string, Handler[]]> = [
          // the strategy's requiredScopes
          ['/required/off', [authenticatePartner(strategy(undefined, ['notes:read'])), ok]],
          ['/required/on', [authenticatePartner(strategy(IMPLIES, ['notes:read'])), ok]],
          // route scopes, through authenticatePartner and through passport.authenticate
          ['/route/off', [authenticatePartner(flat, { scope: ['notes:read'] }), ok]],
          ['/route/on', [authenticatePartner(hierarchical, { scope: ['notes:read'] }), ok]],
          [
            '/passport-route/off',
            [
              passport.authenticate('flat', { session: false, scope: ['notes:read'] }) as Handler,
              ok,
            ],
          ],
          [
            '/passport-route/on',
            [
              passport.authenticate('hier', { session: false, scope: ['notes:read'] }) as Handler,
              ok,
            ],
          ],
          // requireScopes: inherited from the strategy, or its own option
          ['/require/off', [authenticatePartner(flat), requireScopes('notes:read'), ok]],
          ['/require/on', [authenticatePartner(hierarchical), requireScopes('notes:read'), ok]],
          [
            '/require/own',
            [authenticatePartner(flat), requireScopes('notes:read', { implies: IMPLIES }), ok],
          ],
          [
            '/require/forced-flat',
            [authenticatePartner(hierarchical), requireScopes('notes:read', { implies: {} }), ok],
          ],
          // the MCP scope gate: inherited, or its own option
          ['/gate/off', [authenticatePartner(flat), json, requireMcpScopes(gate), ok]],
          ['/gate/on', [authenticatePartner(hierarchical), json, requireMcpScopes(gate), ok]],
          [
            '/gate/own',
            [authenticatePartner(flat), json, requireMcpScopes({ ...gate, implies: IMPLIES }), ok],
          ],
        ]
        server = await listen(
          buildApp(
            stack,
            routes.map(([path, handlers]) => ({ path, handlers })),
          ),
        )
      })
      after(async () => {
        await server.close()
      })

      const call = async (path: string, scope: string) => {
        const res = await fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${mock.signToken({ scope })}`,
            'Content-Type': 'application/json',
          },
          body: LIST_NOTES,
        })
        return { status: res.status, challenge: res.headers.get('www-authenticate') }
      }

      const places = ['/required', '/route', '/passport-route', '/require', '/gate']
      for (const place of places) {
        it(`${place}: off → notes:write does not satisfy notes:read (403 naming notes:read)`, async () => {
          expect(await call(`${place}/off`, 'notes:write')).to.deep.equal({
            status: 403,
            challenge: challenge('notes:read'),
          })
        })
        it(`${place}: on → notes:write and (transitively) notes:admin satisfy notes:read; others still get 403 naming notes:read`, async () => {
          expect(await call(`${place}/on`, 'notes:write')).to.deep.equal({
            status: 200,
            challenge: null,
          })
          expect(await call(`${place}/on`, 'notes:admin')).to.deep.equal({
            status: 200,
            challenge: null,
          })
          expect(await call(`${place}/on`, 'other:scope')).to.deep.equal({
            status: 403,
            challenge: challenge('notes:read'),
          })
        })
      }

      it('an implication declared on requireScopes or the gate itself applies behind a flat strategy', async () => {
        for (const path of ['/require/own', '/gate/own']) {
          expect(await call(path, 'notes:write')).to.deep.equal({ status: 200, challenge: null })
        }
      })

      it('implies: {} on requireScopes forces flat sets behind a hierarchical strategy', async () => {
        expect(await call('/require/forced-flat', 'notes:write')).to.deep.equal({
          status: 403,
          challenge: challenge('notes:read'),
        })
      })
    })
  }
})
