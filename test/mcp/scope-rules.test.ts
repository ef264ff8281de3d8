// requireMcpScopes: its options, the rule lookup (exact URI, templates, prefixes, catch-alls),
// batches across operation kinds, rule functions that fail (a 500 naming the rule, no stack), and
// limitToScopes (opt-in list filtering) on McpServer of SDK v1 and v2 with their own clients.
import { expect } from 'chai'
import express5 from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport as MemoryV1 } from '@modelcontextprotocol/sdk/inMemory.js'
import {
  McpServer as McpServerV1,
  ResourceTemplate as ResourceTemplateV1,
} from '@modelcontextprotocol/sdk/server/mcp.js'
import { Client as ClientV2 } from '@modelcontextprotocol/client'
import {
  InMemoryTransport as MemoryV2,
  McpServer as McpServerV2,
  ResourceTemplate as ResourceTemplateV2,
} from '@modelcontextprotocol/server'
import { AgentPressPartnerStrategy, authenticatePartner } from 'passport-agentpress-partner'
import { requireMcpScopes, type McpScopeRules } from 'passport-agentpress-partner/mcp'
import { limitToScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

import { buildApp, STACKS } from '../support/stacks.js'
import { listen, type Listening } from '../support/wire.js'

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp'
const challenge = (scope: string) =>
  `Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="${scope}", resource_metadata="${PRM}"`

const RULES: McpScopeRules = {
  tools: { list_notes: ['notes:read'], add_note: ['notes:write'] },
  resources: {
    'notes://public/*': ['notes:read'],
    'notes://private/*': ['notes:private'],
    'notes://private/pinned': ['notes:pinned'],
    'files://{folder}/{name}': ['files:read'],
    'files://shared/{name}': ['files:shared'],
  },
  prompts: { rewrite: ['notes:write'] },
  methods: { 'completion/complete': ['notes:complete'], 'tools/call': ['tools:other'] },
}

describe('requireMcpScopes(): rules, batches, failures', () => {
  describe('options, checked at creation', () => {
    const cases: Array<[string, unknown, string]> = [
      ['no rules', undefined, 'requireMcpScopes() needs an object of rules'],
      ['an unknown option', { tool: {} }, 'Unknown requireMcpScopes() option: tool'],
      [
        'a rule that is a string',
        { prompts: { rewrite: 'notes:write' } },
        'requireMcpScopes() prompts["rewrite"] must be an array of scope strings, not a string: use ["notes:write"]',
      ],
      [
        'a table that is a list',
        { tools: [] },
        'requireMcpScopes() tools must be an object: key → scopes or a rule function',
      ],
      [
        'an unclosed URI template',
        { resources: { 'notes://{id': ['a'] } },
        'requireMcpScopes() resources["notes://{id"] has an unclosed "{": a URI template (RFC 6570) closes every expression',
      ],
      [
        'failClosed not a boolean',
        { failClosed: 'yes' },
        'requireMcpScopes() options.failClosed must be a boolean',
      ],
    ]
    for (const [what, rules, message] of cases) {
      it(`refuses ${what}`, () => {
        expect(() => requireMcpScopes(rules as never))
          .to.throw(TypeError)
          .with.property('message', message)
      })
    }

    it('allows*(): the lookup the gate uses, for list filtering', () => {
      const gate = requireMcpScopes(RULES)
      expect(gate.allowsResource('notes://public/1', ['notes:read'])).to.equal(true)
      expect(gate.allowsResource('notes://private/1', ['notes:read'])).to.equal(false)
      // exact beats prefix
      expect(gate.allowsResource('notes://private/pinned', ['notes:pinned'])).to.equal(true)
      // every matching template: their scopes together
      expect(gate.allowsResource('files://shared/a', ['files:read'])).to.equal(false)
      expect(gate.allowsResource('files://shared/a', ['files:read', 'files:shared'])).to.equal(true)
      expect(gate.allowsResourceTemplate('files://{folder}/{name}', ['files:read'])).to.equal(true)
      expect(gate.allowsTool('unknown_tool', ['notes:read'])).to.equal(false) // methods catch-all
      expect(gate.allowsPrompt('other', [])).to.equal(true) // no rule, not fail-closed
      const closed = requireMcpScopes({ failClosed: true })
      expect(closed.allowsPrompt('other', ['anything'])).to.equal(false)
      expect(closed.failClosed).to.equal(true)
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
      let server: Listening
      const reached: unknown[] = []
      const ruleErrors: Array<[string, string]> = []
      before(async () => {
        const strategy = new AgentPressPartnerStrategy(
          { partnerMcp: mock.partnerMcp, realm: 'mcp' },
          async (claims) => ({ id: claims.sub }),
        )
        const end: Handler = (req, res) => {
          reached.push((req as { body?: unknown }).body)
          res.end('{"reached":true}')
        }
        const route = (path: string, rules: McpScopeRules) => ({
          path,
          handlers: [
            authenticatePartner(strategy, { body: 'jsonrpc' }),
            express5.json() as Handler,
            requireMcpScopes(rules),
            end,
          ],
        })
        const failing: McpScopeRules = {
          onRuleError: (error, rule) => ruleErrors.push([rule, (error as Error).message]),
          tools: {
            throws: () => {
              throw new Error('secret detail /srv/app/rules.js:12')
            },
            promise: (() => Promise.resolve(['a'])) as never,
            spaces: () => ['two words'],
          },
        }
        server = await listen(buildApp(stack, [route('/mcp', RULES), route('/failing', failing)]))
      })
      after(async () => {
        await server.close()
      })
      beforeEach(() => {
        reached.length = 0
        ruleErrors.length = 0
      })

      const post = async (path: string, scope: string, body: unknown) => {
        const res = await fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${mock.signToken({ scope })}`,
            'Content-Type': 'application/json',
          },
          body: JSON.stringify(body),
        })
        return {
          status: res.status,
          challenge: res.headers.get('www-authenticate'),
          body: await res.text(),
        }
      }
      const msg = (id: number, method: string, params: object) => ({
        jsonrpc: '2.0',
        id,
        method,
        params,
      })

      it('a batch across tools, resources, prompts and a catch-all → one 403 naming the union, in rule order', async () => {
        const answer = await post('/mcp', 'notes:read', [
          msg(1, 'prompts/get', { name: 'rewrite' }),
          msg(2, 'resources/read', { uri: 'notes://private/9' }),
          msg(3, 'tools/call', { name: 'list_notes', arguments: {} }),
          msg(4, 'completion/complete', { ref: { type: 'ref/prompt', name: 'rewrite' } }),
          msg(5, 'tools/call', { name: 'not_listed', arguments: {} }),
        ])
        expect(answer.status).to.equal(403)
        expect(answer.challenge).to.equal(
          challenge('notes:read notes:write notes:private notes:complete tools:other'),
        )
        expect(reached).to.deep.equal([])
      })

      it('resources: exact beats prefix; every matching template is needed', async () => {
        const read = (uri: string, scope: string) =>
          post('/mcp', scope, msg(1, 'resources/read', { uri }))
        expect((await read('notes://private/pinned', 'notes:pinned')).status).to.equal(200)
        expect((await read('files://drafts/a.txt', 'files:read')).status).to.equal(200)
        const shared = await read('files://shared/a.txt', 'files:read')
        expect([shared.status, shared.challenge]).to.deep.equal([
          403,
          challenge('files:read files:shared'),
        ])
        // resources/subscribe is gated by the same URI rules
        const subscribe = await post(
          '/mcp',
          'notes:read',
          msg(2, 'resources/subscribe', { uri: 'notes://private/1' }),
        )
        expect([subscribe.status, subscribe.challenge]).to.deep.equal([
          403,
          challenge('notes:private'),
        ])
        expect(reached).to.have.length(2)
      })

      for (const [tool, problem] of [
        ['throws', 'secret detail /srv/app/rules.js:12'],
        [
          'promise',
          'tools["promise"] returned a promise: rule functions must return the scopes synchronously',
        ],
        ['spaces', 'tools["spaces"] returned something that is not an RFC 6749 scope token'],
      ] as const) {
        it(`a rule function that ${tool === 'throws' ? 'throws' : `returns ${tool}`} → 500 naming the rule, no detail, no stack; onRuleError told`, async () => {
          const answer = await post('/failing', 'a', msg(1, 'tools/call', { name: tool }))
          expect(answer).to.deep.equal({
            status: 500,
            challenge: null,
            body: JSON.stringify({
              jsonrpc: '2.0',
              id: null,
              error: {
                code: -32603,
                message: `Internal error: the scope rule tools["${tool}"] failed`,
              },
            }),
          })
          expect(ruleErrors).to.deep.equal([[`tools["${tool}"]`, problem]])
          expect(reached).to.deep.equal([])
        })
      }
    })
  }
})

describe('limitToScopes(): opt-in list filtering', () => {
  for (const sdk of ['v1', 'v2'] as const) {
    it(`SDK ${sdk}: lists only what the token may use; without it everything is listed`, async () => {
      const gate = requireMcpScopes({
        tools: { list_notes: ['notes:read'], add_note: ['notes:write'] },
        prompts: { rewrite: ['notes:write'] },
        resources: {
          'notes://public/*': ['notes:read'],
          'notes://private/*': ['notes:private'],
          'secret://{id}': ['secret:read'],
        },
      })
      const listed = async (filter: boolean) => {
        const Server = (sdk === 'v1' ? McpServerV1 : McpServerV2) as unknown as new (
          info: object,
        ) => any
        const Template = (sdk === 'v1'
          ? ResourceTemplateV1
          : ResourceTemplateV2) as unknown as new (uri: string, callbacks: object) => unknown
        const plain = new Server({ name: 'notes', version: '1.0.0' })
        const server = filter ? limitToScopes(plain, gate, { scopes: ['notes:read'] }) : plain
        const ok = async () => ({ content: [] })
        server.registerTool('list_notes', { description: 'l' }, ok)
        server.registerTool('add_note', { description: 'a' }, ok)
        server.registerTool('no_rule', { description: 'n' }, ok)
        const prompt = async () => ({ messages: [] })
        server.registerPrompt('rewrite', { description: 'r' }, prompt)
        server.registerPrompt('summarize', { description: 's' }, prompt)
        const read = async (uri: URL) => ({ contents: [{ uri: uri.href, text: '' }] })
        server.registerResource('readme', 'notes://public/readme', {}, read)
        server.registerResource('diary', 'notes://private/diary', {}, read)
        server.registerResource(
          'notes',
          new Template('notes://{visibility}/{id}', {
            list: async () => ({
              resources: [
                { uri: 'notes://public/1', name: 'one' },
                { uri: 'notes://private/2', name: 'two' },
              ],
            }),
          }),
          {},
          read,
        )
        server.registerResource(
          'secrets',
          new Template('secret://{id}', { list: undefined }),
          {},
          read,
        )
        const client: any =
          sdk === 'v1'
            ? new ClientV1({ name: 'c', version: '1' })
            : new ClientV2({ name: 'c', version: '1' })
        const [a, b] = (sdk === 'v1' ? MemoryV1 : MemoryV2).createLinkedPair()
        await Promise.all([server.connect(b), client.connect(a)])
        try {
          const names = (items: Array<{ name?: string; uri?: string }>) =>
            items.map((i) => i.uri ?? i.name).sort()
          return {
            tools: names((await client.listTools()).tools),
            prompts: names((await client.listPrompts()).prompts),
            resources: names((await client.listResources()).resources),
            templates: (await client.listResourceTemplates()).resourceTemplates
              .map((t: { uriTemplate: string }) => t.uriTemplate)
              .sort(),
          }
        } finally {
          await client.close()
        }
      }
      expect(await listed(false)).to.deep.equal({
        tools: ['add_note', 'list_notes', 'no_rule'],
        prompts: ['rewrite', 'summarize'],
        resources: [
          'notes://private/2',
          'notes://private/diary',
          'notes://public/1',
          'notes://public/readme',
        ],
        templates: ['notes://{visibility}/{id}', 'secret://{id}'],
      })
      expect(await listed(true)).to.deep.equal({
        tools: ['list_notes', 'no_rule'],
        prompts: ['summarize'],
        resources: ['notes://public/1', 'notes://public/readme'],
        templates: ['notes://{visibility}/{id}'],
      })
    })
  }

  it('refuses anything but a gate', () => {
    expect(() =>
      limitToScopes(new McpServerV1({ name: 't', version: '1' }), {} as never, undefined),
    )
      .to.throw(TypeError)
      .with.property(
        'message',
        'limitToScopes() needs the gate returned by requireMcpScopes() or requireToolScopes()',
      )
  })
})
