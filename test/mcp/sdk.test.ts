// passport-agentpress-partner/mcp: our verifier inside the MCP SDK's own requireBearerAuth, on real
// Express 5 and Express 4 apps on 127.0.0.1 against the mock AgentPress's loopback JWKS.
import { expect } from 'chai'
import express5 from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import {
  AgentPressPartnerStrategy,
  MemoryReplayStore,
  PartnerTokenError,
  PartnerTokenVerifier,
  authenticatePartner,
} from 'passport-agentpress-partner'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import { limitToolsToScopes, partnerTokenVerifier } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

import { PARTNER_TOKEN_ERROR_REASONS } from '../../dist/core/refusals/reasons.js'
import { listen, type Listening } from '../support/wire.js'
import { SPEC_DESCRIPTIONS } from '../support/spec.js'
import { flipChar, parts } from '../support/tokens.js'

const express4 = createRequire(import.meta.url)('express4') as typeof express5
type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp'

interface Answer {
  status: number
  challenge: string | null
  body: unknown
}

async function answer(url: string, token: string | undefined): Promise<Answer> {
  const res = await fetch(`${url}/mcp`, {
    method: 'POST',
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  })
  const text = await res.text()
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    body: text === '' ? '' : JSON.parse(text),
  }
}

// A token for every reason of §4, from the mock's own keys.
function badTokens(mock: MockAgentPress): Record<string, string> {
  const now = Math.floor(Date.now() / 1000)
  const good = mock.signToken()
  const [h, p, s] = parts(good)
  return {
    malformed: `${h}.${p}`,
    alg_not_allowed: mock.signToken({}, { alg: 'HS256' }),
    kid_missing_or_unknown: mock.signToken({}, { kid: 'no-such-kid' }),
    signature_invalid: `${h}.${p}.${flipChar(s, 3)}`,
    issuer_mismatch: mock.signToken({ iss: 'http://127.0.0.1:1/orgs/other' }),
    audience_mismatch: mock.signToken({ aud: 'https://other.example.com/mcp' }),
    expired: mock.signToken({ iat: now - 600, exp: now - 300 }),
    not_yet_valid: mock.signToken({ iat: now + 600, exp: now + 660 }),
    missing_claim: mock.signToken({ jti: '' }),
    ext_provider_mismatch: mock.signToken({ ext_provider: 'someone-else' }),
    // A valid token: its second use is the refusal (both verifiers below check replay).
    token_replayed: mock.signToken(),
  }
}

describe('passport-agentpress-partner/mcp: partnerTokenVerifier() in requireBearerAuth', () => {
  let mock: MockAgentPress
  const resolveUser = async (claims: { sub: string }) =>
    claims.sub === 'nobody' ? null : { id: `local-${claims.sub}` }
  const seen: unknown[] = []
  const handler: Handler = (req, res) => {
    const auth = (req as { auth?: { resource?: URL } }).auth
    seen.push(auth)
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify({ auth, resource: auth?.resource?.href }))
  }

  before(async () => {
    mock = await createMockAgentPress()
  })
  after(async () => {
    await mock.close()
  })
  beforeEach(() => {
    seen.length = 0
  })

  it('refuses a missing verifier and unknown options with exact TypeErrors', () => {
    const verifier = new PartnerTokenVerifier(mock.partnerMcp)
    const cases: Array<[() => unknown, string]> = [
      [
        () => partnerTokenVerifier(undefined as never),
        'partnerTokenVerifier() needs a verifier with a verifyToken(token) method, or a non-empty array of them',
      ],
      [
        () => partnerTokenVerifier([]),
        'partnerTokenVerifier() needs a verifier with a verifyToken(token) method, or a non-empty array of them',
      ],
      [
        () => partnerTokenVerifier(verifier, { resolveUsr: () => null } as never),
        'Unknown partnerTokenVerifier option: resolveUsr',
      ],
      [
        () => partnerTokenVerifier(verifier, { resolveUser: 'x' } as never),
        'partnerTokenVerifier() options.resolveUser must be a function',
      ],
      [
        () => partnerTokenVerifier(verifier, null as never),
        'partnerTokenVerifier() options must be an object',
      ],
    ]
    for (const [fn, message] of cases) {
      expect(fn).to.throw(TypeError).with.property('message', message)
    }
  })

  for (const [name, express] of [
    ['Express 5', express5],
    ['Express 4', express4],
  ] as const) {
    describe(`on ${name}`, () => {
      let app: Listening
      let fresh: Listening
      let freshMock: MockAgentPress
      before(async () => {
        const verifier = partnerTokenVerifier(
          new PartnerTokenVerifier({ ...mock.partnerMcp, replay: new MemoryReplayStore() }),
          { resolveUser },
        )
        const built = express()
        built.post('/mcp', requireBearerAuth({ verifier, resourceMetadataUrl: PRM }), handler)
        app = await listen(built)
        // Nothing cached and the JWKS down: the outage path.
        freshMock = await createMockAgentPress()
        const down = express()
        const downVerifier = partnerTokenVerifier(new PartnerTokenVerifier(freshMock.partnerMcp))
        down.post('/mcp', requireBearerAuth({ verifier: downVerifier }), handler)
        fresh = await listen(down)
      })
      after(async () => {
        await Promise.all([app.close(), fresh.close(), freshMock.close()])
      })

      it('every refusal reason of §4 → 401 invalid_token with its fixed description, never 500', async () => {
        const tokens = badTokens(mock)
        expect(Object.keys(tokens)).to.deep.equal([...PARTNER_TOKEN_ERROR_REASONS])
        const direct = new PartnerTokenVerifier({
          ...mock.partnerMcp,
          replay: new MemoryReplayStore(),
        })
        // The replayed token's first use, through each path, is accepted.
        expect((await direct.verifyToken(tokens.token_replayed!)).sub).to.be.a('string')
        expect((await answer(app.url, tokens.token_replayed)).status).to.equal(200)
        seen.length = 0
        for (const reason of PARTNER_TOKEN_ERROR_REASONS) {
          // The token really is refused for this reason by our verifier…
          const err = await direct.verifyToken(tokens[reason]!).then(
            () => undefined,
            (e: unknown) => e,
          )
          expect(err, reason).to.be.instanceOf(PartnerTokenError).with.property('reason', reason)
          // …and the SDK's middleware answers it as the spec's 401.
          const description = SPEC_DESCRIPTIONS[reason as keyof typeof SPEC_DESCRIPTIONS]
          expect(await answer(app.url, tokens[reason]), reason).to.deep.equal({
            status: 401,
            challenge: `Bearer error="invalid_token", error_description="${description}", resource_metadata="${PRM}"`,
            body: { error: 'invalid_token', error_description: description },
          })
        }
        expect(seen).to.deep.equal([])
      })

      it('a valid token → the handler sees the AuthInfo our strategy sets as req.auth', async () => {
        const token = mock.signToken({ sub: 'alice', scope: 'mcp:read tools:call' })
        const viaSdk = await answer(app.url, token)

        const strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, resolveUser)
        const ours = express()
        ours.post('/mcp', authenticatePartner(strategy), handler)
        const oursApp = await listen(ours)
        try {
          const viaStrategy = await answer(oursApp.url, token)
          expect(viaSdk).to.deep.equal(viaStrategy)
        } finally {
          await oursApp.close()
        }
        expect(viaSdk.status).to.equal(200)
        const body = viaSdk.body as { auth: Record<string, unknown>; resource: string }
        expect(body.resource).to.equal(mock.audience)
        expect(body.auth).to.deep.include({
          token,
          clientId: mock.extProvider,
          scopes: ['mcp:read', 'tools:call'],
        })
        expect((body.auth.extra as { user: unknown }).user).to.deep.equal({ id: 'local-alice' })
        expect(seen).to.have.length(2)
        expect((seen[0] as { resource: URL }).resource).to.be.instanceOf(URL)
      })

      it('what the SDK itself decides: no header, and exp within our clock tolerance', async () => {
        expect(await answer(app.url, undefined)).to.deep.equal({
          status: 401,
          challenge: `Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="${PRM}"`,
          body: { error: 'invalid_token', error_description: 'Missing Authorization header' },
        })
        const now = Math.floor(Date.now() / 1000)
        const late = mock.signToken({ iat: now - 65, exp: now - 5 })
        // Our verifier accepts it (30 s tolerance); the SDK compares expiresAt with its clock.
        await new PartnerTokenVerifier(mock.partnerMcp).verifyToken(late)
        expect(await answer(app.url, late)).to.deep.equal({
          status: 401,
          challenge: `Bearer error="invalid_token", error_description="Token has expired", resource_metadata="${PRM}"`,
          body: { error: 'invalid_token', error_description: 'Token has expired' },
        })
        expect(seen).to.deep.equal([])
      })

      it('user_not_provisioned → the SDK answers 400 {"error":"user_not_provisioned"} (ours: 403)', async () => {
        expect(await answer(app.url, mock.signToken({ sub: 'nobody' }))).to.deep.equal({
          status: 400,
          challenge: null,
          body: { error: 'user_not_provisioned', error_description: 'User not provisioned' },
        })
        expect(seen).to.deep.equal([])
      })

      it('JWKS outage with nothing cached → the SDK answers 500 server_error (ours: 503 + Retry-After)', async () => {
        freshMock.setJwksMode('error')
        const before = freshMock.jwksRequestCount
        expect(await answer(fresh.url, freshMock.signToken())).to.deep.equal({
          status: 500,
          challenge: null,
          body: { error: 'server_error', error_description: 'Signing keys unavailable' },
        })
        expect(freshMock.jwksRequestCount).to.equal(before + 1)
        freshMock.setJwksMode('ok')
      })
    })
  }

  it('a throwing resolveUser is the SDK 500 "Internal Server Error", with nothing of the error', async () => {
    const verifier = partnerTokenVerifier(new PartnerTokenVerifier(mock.partnerMcp), {
      resolveUser: () => {
        throw new Error('db password is hunter2')
      },
    })
    const built = express5()
    built.post('/mcp', requireBearerAuth({ verifier }), handler)
    const app = await listen(built)
    try {
      expect(await answer(app.url, mock.signToken())).to.deep.equal({
        status: 500,
        challenge: null,
        body: { error: 'server_error', error_description: 'Internal Server Error' },
      })
    } finally {
      await app.close()
    }
  })
})

describe('passport-agentpress-partner/mcp: from import and from require()', () => {
  // The SDK's ESM and CommonJS builds have distinct error classes and requireBearerAuth tests
  // instanceof: each way of loading must throw the classes of the copy the application loaded.
  const script = (load: (name: string) => string) => `
    ${load('express')}
    ${load('@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js')}
    ${load('passport-agentpress-partner')}
    ${load('passport-agentpress-partner/mcp')}
    ${load('passport-agentpress-partner/testing')}
    ;(async () => {
      const mock = await createMockAgentPress()
      const app = express()
      const verifier = partnerTokenVerifier(new PartnerTokenVerifier(mock.partnerMcp))
      app.post('/mcp', requireBearerAuth({ verifier }), (req, res) => res.json(req.auth.scopes))
      const server = app.listen(0, '127.0.0.1', async () => {
        const url = 'http://127.0.0.1:' + server.address().port + '/mcp'
        const answers = []
        for (const token of ['x.y.z', mock.signToken()]) {
          const r = await fetch(url, { method: 'POST', headers: { authorization: 'Bearer ' + token } })
          answers.push([r.status, r.headers.get('www-authenticate'), await r.text()])
        }
        console.log(JSON.stringify(answers))
        server.close()
        await mock.close()
      })
    })()`
  const names: Record<string, string> = {
    express: 'express',
    '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js': '{ requireBearerAuth }',
    'passport-agentpress-partner': '{ PartnerTokenVerifier }',
    'passport-agentpress-partner/mcp': '{ partnerTokenVerifier }',
    'passport-agentpress-partner/testing': '{ createMockAgentPress }',
  }
  const expected = [
    [
      401,
      'Bearer error="invalid_token", error_description="Malformed token"',
      '{"error":"invalid_token","error_description":"Malformed token"}',
    ],
    [200, null, '["mcp:read","mcp:write"]'],
  ]
  for (const [type, load] of [
    ['module', (name: string) => `import ${names[name]} from '${name}'`],
    ['commonjs', (name: string) => `const ${names[name]} = require('${name}')`],
  ] as const) {
    it(`${type}: a bad token is the SDK's 401 invalid_token, a good one passes`, async () => {
      const { spawnSync } = await import('node:child_process')
      const child = spawnSync(process.execPath, [`--input-type=${type}`, '-e', script(load)], {
        encoding: 'utf8',
        timeout: 20_000,
      })
      expect(child.stderr).to.equal('')
      expect(JSON.parse(child.stdout)).to.deep.equal(expected)
    })
  }
})

describe('passport-agentpress-partner/mcp: an optional peer', () => {
  it('nothing the root or /testing entry loads imports the MCP SDK; /mcp loads v1, /mcp/v2 v2', async () => {
    const { readFile } = await import('node:fs/promises')
    const { dirname, join } = await import('node:path')
    const importsOf = async (entry: string, seen = new Set<string>()): Promise<Set<string>> => {
      if (seen.has(entry)) return seen
      seen.add(entry)
      // Imports and require() calls only (the build is CommonJS under thin ESM entries): the
      // TSDoc examples that tsc keeps also mention imports.
      const text = (await readFile(entry, 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '')
      for (const [, spec] of text.matchAll(/(?:from|import|require\()\s*['"]([^'"]+)['"]/g)) {
        if (spec!.startsWith('.')) await importsOf(join(dirname(entry), spec!), seen)
        else seen.add(spec!)
      }
      return seen
    }
    const sdk = (names: Set<string>) =>
      [...names].filter((name) => name.startsWith('@modelcontextprotocol/'))
    expect(sdk(await importsOf('dist/index.js'))).to.deep.equal([])
    expect(sdk(await importsOf('dist/testing/index.js'))).to.deep.equal([])
    expect(sdk(await importsOf('dist/mcp/index.js'))).to.deep.equal([
      '@modelcontextprotocol/sdk/server/auth/errors.js',
    ])
    // The v2 entry loads v2's server package only, never the v1 package.
    expect(sdk(await importsOf('dist/mcp/v2/index.js'))).to.deep.equal([
      '@modelcontextprotocol/server',
    ])
  })
})

describe('passport-agentpress-partner/mcp: limitToolsToScopes()', () => {
  const gate = requireToolScopes({ list_notes: ['mcp:read'], add_note: ['mcp:write'] })
  const listed = async (scopes: string[] | undefined) => {
    const server = limitToolsToScopes(new McpServer({ name: 't', version: '1' }), gate, {
      scopes: scopes ?? [],
    })
    for (const name of ['list_notes', 'add_note', 'outside_table']) {
      server.registerTool(name, { description: name }, async () => ({ content: [] }))
    }
    // The SDK's own tools/list handler, as the transport would call it.
    const handlers = (
      server.server as unknown as {
        _requestHandlers: Map<string, (r: unknown, e: unknown) => Promise<{ tools: unknown[] }>>
      }
    )._requestHandlers
    const result = await handlers.get('tools/list')!({ method: 'tools/list', params: {} }, {})
    return result.tools.map((tool) => (tool as { name: string }).name)
  }

  it('lists only the tools the scopes allow; tools outside the table stay listed', async () => {
    expect(await listed(['mcp:read'])).to.deep.equal(['list_notes', 'outside_table'])
    expect(await listed(['mcp:read', 'mcp:write'])).to.deep.equal([
      'list_notes',
      'add_note',
      'outside_table',
    ])
    expect(await listed(undefined)).to.deep.equal(['outside_table'])
  })

  it('refuses anything but a requireToolScopes gate', () => {
    expect(() =>
      limitToolsToScopes(new McpServer({ name: 't', version: '1' }), {} as never, undefined),
    )
      .to.throw(TypeError)
      .with.property(
        'message',
        'limitToolsToScopes() needs the gate returned by requireToolScopes()',
      )
  })
})
