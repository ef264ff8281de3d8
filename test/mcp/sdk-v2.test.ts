// passport-agentpress-partner/mcp/v2: our verifier inside MCP SDK v2's own requireBearerAuth
// (@modelcontextprotocol/express 2.x) on a real Express 5 app on 127.0.0.1, against the mock
// AgentPress's loopback JWKS; tool handlers of a v2 McpServer called with v2's own Client.
import { expect } from 'chai'
import express from 'express'
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { requireBearerAuth, type OAuthTokenVerifier } from '@modelcontextprotocol/express'
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node'
import { McpServer } from '@modelcontextprotocol/server'
import {
  AgentPressPartnerStrategy,
  MemoryReplayStore,
  agentPressErrorHandler,
  PartnerTokenError,
  PartnerTokenVerifier,
  authenticatePartner,
} from 'passport-agentpress-partner'
import {
  limitToolsToScopes,
  partnerTokenVerifier,
  requireToolScopes,
} from 'passport-agentpress-partner/mcp/v2'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

import { PARTNER_TOKEN_ERROR_REASONS } from '../../dist/core/refusals/reasons.js'
import { packOnce, repoRoot } from '../support/pack.js'
import { SPEC_DESCRIPTIONS } from '../support/spec.js'
import { flipChar, parts } from '../support/tokens.js'
import { listen, type Listening } from '../support/wire.js'

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp'

async function answer(url: string, token: string | undefined) {
  const res = await fetch(`${url}/mcp`, {
    method: 'POST',
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  })
  const text = await res.text()
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    body: text === '' ? '' : (JSON.parse(text) as unknown),
  }
}

// A token for every reason of §4, from the mock's own keys.
function badTokens(mock: MockAgentPress): Record<string, string> {
  const now = Math.floor(Date.now() / 1000)
  const [h, p, s] = parts(mock.signToken())
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
    token_replayed: mock.signToken(),
  }
}

describe('passport-agentpress-partner/mcp/v2: partnerTokenVerifier() in v2 requireBearerAuth', function () {
  this.timeout(20_000)
  let mock: MockAgentPress
  let app: Listening
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
    // The type v2 declares: our adapter is its OAuthTokenVerifier.
    const verifier: OAuthTokenVerifier = partnerTokenVerifier(
      new PartnerTokenVerifier({ ...mock.partnerMcp, replay: new MemoryReplayStore() }),
      { resolveUser },
    )
    const built = express()
    built.post('/mcp', requireBearerAuth({ verifier, resourceMetadataUrl: PRM }), handler)
    app = await listen(built)
  })
  after(async () => {
    await Promise.all([app.close(), mock.close()])
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
        () => partnerTokenVerifier(verifier, { resolveUsr: () => null } as never),
        'Unknown partnerTokenVerifier option: resolveUsr',
      ],
      [
        () => partnerTokenVerifier(verifier, { resolveUser: 'x' } as never),
        'partnerTokenVerifier() options.resolveUser must be a function',
      ],
    ]
    for (const [fn, message] of cases) {
      expect(fn).to.throw(TypeError).with.property('message', message)
    }
  })

  it('every refusal reason of §4 → 401 invalid_token with its fixed description, never 500', async () => {
    const tokens = badTokens(mock)
    expect(Object.keys(tokens)).to.deep.equal([...PARTNER_TOKEN_ERROR_REASONS])
    const direct = new PartnerTokenVerifier({ ...mock.partnerMcp, replay: new MemoryReplayStore() })
    await direct.verifyToken(tokens.token_replayed!)
    expect((await answer(app.url, tokens.token_replayed)).status).to.equal(200)
    seen.length = 0
    for (const reason of PARTNER_TOKEN_ERROR_REASONS) {
      const err = await direct.verifyToken(tokens[reason]!).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err, reason).to.be.instanceOf(PartnerTokenError).with.property('reason', reason)
      const description = SPEC_DESCRIPTIONS[reason as keyof typeof SPEC_DESCRIPTIONS]
      expect(await answer(app.url, tokens[reason]), reason).to.deep.equal({
        status: 401,
        challenge: `Bearer error="invalid_token", error_description="${description}", resource_metadata="${PRM}"`,
        body: { error: 'invalid_token', error_description: description },
      })
    }
    expect(seen).to.deep.equal([])
  })

  it('a valid token → the handler sees the AuthInfo our strategy sets, plus v2’s resourceMetadataUrl', async () => {
    const token = mock.signToken({ sub: 'alice', scope: 'mcp:read tools:call' })
    const viaSdk = await answer(app.url, token)
    const strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, resolveUser)
    const ours = express()
    ours.post('/mcp', authenticatePartner(strategy), handler)
    const oursApp = await listen(ours)
    let viaStrategy
    try {
      viaStrategy = await answer(oursApp.url, token)
    } finally {
      await oursApp.close()
    }
    expect(viaSdk.status).to.equal(200)
    const sdkBody = viaSdk.body as { auth: Record<string, unknown>; resource: string }
    // v2's middleware stamps the challenge URL it was given; every other field is ours.
    expect(sdkBody.auth.resourceMetadataUrl).to.equal(PRM)
    delete sdkBody.auth.resourceMetadataUrl
    expect(viaSdk).to.deep.equal(viaStrategy)
    expect(sdkBody.resource).to.equal(mock.audience)
    expect(sdkBody.auth).to.deep.include({
      token,
      clientId: mock.extProvider,
      scopes: ['mcp:read', 'tools:call'],
    })
    expect((sdkBody.auth.extra as { user: unknown }).user).to.deep.equal({ id: 'local-alice' })
    expect((seen[0] as { resource: URL }).resource).to.be.instanceOf(URL)
  })

  it('what v2 itself decides: no header, and exp in the past but within our 30 s tolerance', async () => {
    expect(await answer(app.url, undefined)).to.deep.equal({
      status: 401,
      challenge: `Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="${PRM}"`,
      body: { error: 'invalid_token', error_description: 'Missing Authorization header' },
    })
    const now = Math.floor(Date.now() / 1000)
    const late = mock.signToken({ iat: now - 65, exp: now - 5 })
    await new PartnerTokenVerifier(mock.partnerMcp).verifyToken(late)
    expect(await answer(app.url, late)).to.deep.equal({
      status: 401,
      challenge: `Bearer error="invalid_token", error_description="Token has expired", resource_metadata="${PRM}"`,
      body: { error: 'invalid_token', error_description: 'Token has expired' },
    })
    expect(seen).to.deep.equal([])
  })

  it('expectedResource: our audience URL matches v2’s comparison; another resource is 401', async () => {
    const verifier = partnerTokenVerifier(new PartnerTokenVerifier(mock.partnerMcp))
    const built = express()
    built.post(
      '/mcp',
      requireBearerAuth({ verifier, expectedResource: new URL(mock.audience) }),
      handler,
    )
    built.post(
      '/other/mcp',
      requireBearerAuth({ verifier, expectedResource: new URL('https://other.example.com/mcp') }),
      handler,
    )
    const two = await listen(built)
    try {
      expect((await answer(two.url, mock.signToken())).status).to.equal(200)
      const res = await fetch(`${two.url}/other/mcp`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${mock.signToken()}` },
      })
      expect([res.status, res.headers.get('www-authenticate'), await res.json()]).to.deep.equal([
        401,
        'Bearer error="invalid_token", error_description="Token was not issued for this resource"',
        { error: 'invalid_token', error_description: 'Token was not issued for this resource' },
      ])
    } finally {
      await two.close()
    }
  })

  it('user_not_provisioned → v2 answers 400 {"error":"user_not_provisioned"} (ours: 403)', async () => {
    expect(await answer(app.url, mock.signToken({ sub: 'nobody' }))).to.deep.equal({
      status: 400,
      challenge: null,
      body: { error: 'user_not_provisioned', error_description: 'User not provisioned' },
    })
    expect(seen).to.deep.equal([])
  })

  it('a throwing resolveUser is v2’s 500 "Internal Server Error", with nothing of the error', async () => {
    const verifier = partnerTokenVerifier(new PartnerTokenVerifier(mock.partnerMcp), {
      resolveUser: () => {
        throw new Error('db password is hunter2')
      },
    })
    const built = express()
    built.post('/mcp', requireBearerAuth({ verifier }), handler)
    const broken = await listen(built)
    try {
      expect(await answer(broken.url, mock.signToken())).to.deep.equal({
        status: 500,
        challenge: null,
        body: { error: 'server_error', error_description: 'Internal Server Error' },
      })
    } finally {
      await broken.close()
    }
  })
})

describe('a v2 McpServer behind our verifier or our strategy, called with v2’s Client', function () {
  this.timeout(20_000)
  let mock: MockAgentPress
  let app: Listening
  const calls: Array<{ tool: string; authInfo: Record<string, unknown> | undefined }> = []
  const gate = requireToolScopes({ list_notes: ['mcp:read'], add_note: ['mcp:write'] })

  // One stateless v2 server per request: the tool list limited to the request's scopes.
  const mcp: Handler = (req, res) => {
    const auth = (req as unknown as { auth: { scopes: string[] } }).auth
    const server = limitToolsToScopes(new McpServer({ name: 't', version: '1' }), gate, auth)
    for (const name of ['list_notes', 'add_note', 'whoami']) {
      server.registerTool(name, { description: name }, async (ctx) => {
        const authInfo = ctx.http?.authInfo as Record<string, unknown> | undefined
        calls.push({ tool: name, authInfo })
        return { content: [{ type: 'text', text: String(authInfo?.clientId) }] }
      })
    }
    const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    void server
      .connect(transport)
      .then(() => transport.handleRequest(req, res, (req as { body?: unknown }).body))
  }

  before(async () => {
    mock = await createMockAgentPress()
    const strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, resolve)
    const verifier = partnerTokenVerifier(new PartnerTokenVerifier(mock.partnerMcp), {
      resolveUser: resolve,
    })
    const built = express()
    built.post('/strategy/mcp', authenticatePartner(strategy), express.json(), gate, mcp)
    built.post(
      '/sdk/mcp',
      requireBearerAuth({ verifier, resourceMetadataUrl: PRM }),
      express.json(),
      gate,
      mcp,
    )
    // The gate's 403 on the v2 route (no strategy there to render it).
    built.use(agentPressErrorHandler())
    app = await listen(built)
  })
  after(async () => {
    await Promise.all([app.close(), mock.close()])
  })
  beforeEach(() => {
    calls.length = 0
  })
  async function resolve(claims: { sub: string }) {
    return { id: `local-${claims.sub}` }
  }

  async function client(path: string, scope: string) {
    const token = mock.signToken({ sub: 'erin', scope })
    const seen: Array<{ status: number; challenge: string | null; body: string }> = []
    const transport = new StreamableHTTPClientTransport(new URL(`${app.url}${path}`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        seen.push({
          status: response.status,
          challenge: response.headers.get('www-authenticate'),
          body: await response.clone().text(),
        })
        return response
      },
    })
    const c = new Client({ name: 'v2-test', version: '1.0.0' })
    await c.connect(transport)
    return { client: c, token, seen }
  }

  for (const path of ['/strategy/mcp', '/sdk/mcp']) {
    it(`${path}: ctx.http.authInfo carries our AuthInfo; tools/list by scope; a write call → one 403`, async () => {
      const c = await client(path, 'mcp:read')
      try {
        const { tools } = await c.client.listTools()
        expect(tools.map((tool) => tool.name)).to.deep.equal(['list_notes', 'whoami'])
        const result = await c.client.callTool({ name: 'whoami', arguments: {} })
        expect(result.content).to.deep.equal([{ type: 'text', text: mock.extProvider }])
        const authInfo = calls[0]!.authInfo!
        expect(Object.keys(authInfo).sort()).to.deep.equal(
          [
            'clientId',
            'expiresAt',
            'extra',
            'resource',
            'scopes',
            'token',
            ...(path === '/sdk/mcp' ? ['resourceMetadataUrl'] : []),
          ].sort(),
        )
        expect(authInfo).to.deep.include({
          token: c.token,
          clientId: mock.extProvider,
          scopes: ['mcp:read'],
        })
        expect(String(authInfo.resource)).to.equal(mock.audience)
        expect((authInfo.extra as { user: unknown }).user).to.deep.equal({ id: 'local-erin' })
        calls.length = 0
        c.seen.length = 0
        const err = await c.client.callTool({ name: 'add_note', arguments: {} }).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(err).to.be.instanceOf(Error)
        const refusals = c.seen.filter((s) => s.status === 403)
        expect(refusals).to.have.length(1)
        // The strategy knows its resource metadata URL (derived from the audience); the error
        // handler behind v2's middleware does not.
        const metadata = path === '/strategy/mcp' ? `, resource_metadata="${PRM}"` : ''
        expect(refusals).to.deep.equal([
          {
            status: 403,
            challenge: `Bearer error="insufficient_scope", error_description="Insufficient scope", scope="mcp:write"${metadata}`,
            body: '{"error":"insufficient_scope","error_description":"Insufficient scope"}',
          },
        ])
        expect(calls).to.deep.equal([])
      } finally {
        await c.client.close()
      }
    })
  }
})

describe('passport-agentpress-partner/mcp/v2 in a project with only MCP SDK v2 installed', function () {
  this.timeout(60_000)
  it('loads from import and require() without @modelcontextprotocol/sdk; /mcp asks for it', async () => {
    const { tarball } = await packOnce()
    const root = await mkdtemp(join(tmpdir(), 'apx-v2-only-'))
    try {
      const modules = join(root, 'node_modules')
      const pkgDir = join(modules, 'passport-agentpress-partner')
      await mkdir(join(modules, '@modelcontextprotocol'), { recursive: true })
      await mkdir(pkgDir)
      spawnSync('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1'])
      for (const name of [
        'passport-strategy',
        'express',
        '@modelcontextprotocol/server',
        '@modelcontextprotocol/express',
      ])
        await symlink(join(repoRoot, 'node_modules', name), join(modules, name))
      const script = (type: 'module' | 'commonjs') => `
        ${type === 'module' ? "import express from 'express'" : "const express = require('express')"}
        ${type === 'module' ? "import { requireBearerAuth } from '@modelcontextprotocol/express'" : "const { requireBearerAuth } = require('@modelcontextprotocol/express')"}
        ${type === 'module' ? "import { PartnerTokenVerifier } from 'passport-agentpress-partner'" : "const { PartnerTokenVerifier } = require('passport-agentpress-partner')"}
        ${type === 'module' ? "import { partnerTokenVerifier } from 'passport-agentpress-partner/mcp/v2'" : "const { partnerTokenVerifier } = require('passport-agentpress-partner/mcp/v2')"}
        ;(async () => {
          let v1
          try { ${type === 'module' ? "await import('passport-agentpress-partner/mcp')" : "require('passport-agentpress-partner/mcp')"} } catch (e) { v1 = e.code }
          const verifier = partnerTokenVerifier(new PartnerTokenVerifier({
            issuer: 'https://api.agent.press/orgs/acme', audience: 'http://127.0.0.1/mcp', expectedExtProvider: 'x',
          }))
          const app = express()
          app.post('/mcp', requireBearerAuth({ verifier }), (req, res) => res.end())
          const server = app.listen(0, '127.0.0.1', async () => {
            const r = await fetch('http://127.0.0.1:' + server.address().port + '/mcp', { method: 'POST', headers: { authorization: 'Bearer x.y.z' } })
            console.log(JSON.stringify({ v1, status: r.status, challenge: r.headers.get('www-authenticate') }))
            server.close()
          })
        })()`
      for (const type of ['module', 'commonjs'] as const) {
        const child = spawnSync(process.execPath, [`--input-type=${type}`, '-e', script(type)], {
          cwd: root,
          encoding: 'utf8',
          timeout: 20_000,
        })
        expect(child.stderr, type).to.equal('')
        expect(JSON.parse(child.stdout), type).to.deep.equal({
          v1: type === 'module' ? 'ERR_MODULE_NOT_FOUND' : 'MODULE_NOT_FOUND',
          status: 401,
          challenge: 'Bearer error="invalid_token", error_description="Malformed token"',
        })
      }
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
})
