// Issue 12, defects 6–8 and the configuration that fails early. Each fails on the code before the
// fix (checked against main's lib) and passes after:
// 6. a request target such as `//a:b` made `new URL()` throw in the request listener of the mock,
//    `agentpress-mock serve` and the example's embedded mock: the process exited;
// 7. the mock's control API trusted `Host` to decide "loopback";
// 8. the example's tool-scope gate answered a non-JSON POST /mcp 500 with a stack (Express 5).
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { once } from 'node:events'
import express5 from 'express'
import { createKeyRotationRouter, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, createMockControl } from 'passport-agentpress-partner/testing'
import { startServer } from '../../examples/express-mcp-server/server.mjs'
import { startConnectApp } from '../../examples/connect-app/server.mjs'
import { startMultiOrg } from '../../examples/multi-org/server.mjs'
import { listen, rawRequest, send } from '../support/wire.js'

const express4 = createRequire(import.meta.url)('express4') as typeof express5
const CLI = new URL('../../dist/testing/cli.js', import.meta.url).pathname
const SERVER = new URL('../../examples/express-mcp-server/server.mjs', import.meta.url).pathname

// The example's untyped modules (no .d.mts), loaded by URL in `before` hooks.
const example = (file: string): Promise<Record<string, unknown>> =>
  import(new URL(`../../examples/express-mcp-server/${file}`, import.meta.url).href)

const HOSTILE = ['//a:b', 'http://x/', '*', '/%zz', '/a%2', `/${'a'.repeat(5000)}`, '//']
const BAD_TARGET =
  '{"error":"invalid_request_target","error_description":"The request target must be a path"}'

async function expectHostileTargetsRefused(port: number, stillUp: string): Promise<void> {
  for (const target of HOSTILE) {
    const res = await rawRequest(
      port,
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    )
    expect([target.slice(0, 20), res.status, res.text]).to.deep.equal([
      target.slice(0, 20),
      400,
      BAD_TARGET,
    ])
  }
  // Still up: an ordinary request is answered.
  const ok = await send(port, { path: stillUp })
  expect(ok.status).to.be.oneOf([200, 401, 404, 405])
}

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  return once(child, 'close').then(([code]) => {
    clearTimeout(timer)
    return { code: code as number | null, stdout, stderr }
  })
}

describe('regression: every server we ship survives hostile request targets (defect 6)', function () {
  this.timeout(30_000)

  it('createMockAgentPress: 400 and stays up', async () => {
    const mock = await createMockAgentPress()
    try {
      await expectHostileTargetsRefused(Number(new URL(mock.url).port), '/nothing')
      expect(new PartnerTokenVerifier(mock.partnerMcp)).to.be.instanceOf(PartnerTokenVerifier)
    } finally {
      await mock.close()
    }
  })

  it('agentpress-mock serve: 400 and stays up', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer]
      const config = JSON.parse(line.toString('utf8')) as { url: string; jwksUrl: string }
      await expectHostileTargetsRefused(
        Number(new URL(config.url).port),
        new URL(config.jwksUrl).pathname,
      )
      expect(child.exitCode).to.equal(null)
    } finally {
      child.kill('SIGTERM')
      await once(child, 'close')
    }
  })

  it('the express MCP example and its embedded mock: 400 and both stay up', async () => {
    const running = await startServer({ port: 0, log: () => {} })
    try {
      await expectHostileTargetsRefused(Number(new URL(running.url).port), '/mcp')
      await expectHostileTargetsRefused(Number(new URL(running.mock!.url).port), '/x')
    } finally {
      await running.close()
    }
  })

  it('the Connect and multi-org examples: 400 and stay up', async () => {
    const connectApp = await startConnectApp()
    const multi = await startMultiOrg()
    try {
      await expectHostileTargetsRefused(Number(new URL(connectApp.url).port), '/notes')
      await expectHostileTargetsRefused(Number(new URL(multi.url).port), '/api')
    } finally {
      await connectApp.close()
      await multi.close()
    }
  })
})

describe('regression: the control API decides "loopback" by the peer address (defect 7)', () => {
  let configFromEnv: (env: Record<string, string>) => unknown
  let ConfigError: new (message: string) => Error
  before(async () => {
    ;({ configFromEnv, ConfigError } = (await example('config.mjs')) as {
      configFromEnv: typeof configFromEnv
      ConfigError: typeof ConfigError
    })
  })
  it('a spoofed Host: 127.0.0.1 from a non-loopback peer is 403; the same request from loopback mints', async () => {
    const mock = await createMockAgentPress()
    const control = createMockControl(mock)
    let peer: string | undefined
    const server = await listen((req, res) => {
      // What a container's HOST=0.0.0.0 listener sees from another host.
      if (peer !== undefined) Object.defineProperty(req.socket, 'remoteAddress', { value: peer })
      control(req, res, () => res.writeHead(404).end())
    })
    const mint = () =>
      send(server.port, {
        method: 'POST',
        path: '/_mock/token',
        headers: [['Content-Type', 'application/json']],
        body: '{}',
      })
    try {
      for (const address of ['203.0.113.9', '::ffff:10.0.0.7', '2001:db8::1']) {
        peer = address
        const res = await mint()
        expect([res.status, res.text]).to.deep.equal([
          403,
          '{"error":"control API is loopback only"}',
        ])
        const rotate = await send(server.port, {
          method: 'POST',
          path: '/_mock/rotate',
          headers: [['Content-Type', 'application/json']],
          body: '{"webhookUrl":"http://127.0.0.1:9/x"}',
        })
        expect(rotate.status).to.equal(403)
      }
      expect(mock.keys).to.have.length(1) // nothing rotated
      peer = undefined
      const ok = await mint()
      expect(ok.status).to.equal(200)
      // The DNS-rebinding checks stay: a loopback peer with a foreign Host is still refused.
      const rebound = await rawRequest(
        server.port,
        'POST /_mock/token HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n' +
          'Content-Length: 2\r\nConnection: close\r\n\r\n{}',
      )
      expect([rebound.status, rebound.text]).to.deep.equal([403, '{"error":"Host not allowed"}'])
    } finally {
      await server.close()
      await mock.close()
    }
  })

  it('the example refuses to serve the embedded mock control API on a non-loopback HOST, saying why', async () => {
    expect(() => configFromEnv({ HOST: '0.0.0.0' })).to.throw(ConfigError, /loopback HOST only/)
    let error: unknown
    try {
      await startServer({ host: '0.0.0.0', port: 0 })
    } catch (err) {
      error = err
    }
    // The example's ConfigError (the module may be loaded twice, through import and require).
    expect((error as Error).constructor.name).to.equal('ConfigError')
    expect((error as Error).message).to.match(
      /^host 0\.0\.0\.0: the embedded mock AgentPress's control API/,
    )
    const result = await run([SERVER], { HOST: '0.0.0.0', PORT: '0' })
    expect(result.code).to.equal(2)
    expect(result.stderr).to.match(
      /^Configuration error: HOST=0\.0\.0\.0 with the embedded mock AgentPress/,
    )
  })
})

describe('regression: the example tool-scope gate on a non-JSON POST /mcp (defect 8)', () => {
  const REFUSAL_415 =
    '{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Unsupported Media Type: Content-Type must be application/json"}}'
  let TOOL_SCOPES: Record<string, readonly string[]>
  before(async () => {
    ;({ TOOL_SCOPES } = (await example('tools.mjs')) as { TOOL_SCOPES: typeof TOOL_SCOPES })
  })

  it('Express 5 (the example server) and Express 4 (the same gate) answer the same clean 415, no stack', async () => {
    const running = await startServer({ port: 0, log: () => {} })
    const app4 = express4()
    app4.post(
      '/mcp',
      (req, _res, next) => {
        ;(req as unknown as { user: unknown }).user = { id: 'alice' }
        next()
      },
      express4.json(),
      requireToolScopes(TOOL_SCOPES) as unknown as express5.RequestHandler,
      (_req, res) => res.status(200).end('passed'),
    )
    const server4 = await listen(app4)
    try {
      const token = running.mock!.signToken()
      const body =
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"x"}}}'
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx']) {
        const five = await send(Number(new URL(running.url).port), {
          method: 'POST',
          path: '/mcp',
          headers: [
            ['Authorization', `Bearer ${token}`],
            ['Content-Type', type],
            ['Accept', 'application/json, text/event-stream'],
          ],
          body,
        })
        const four = await send(server4.port, {
          method: 'POST',
          path: '/mcp',
          headers: [['Content-Type', type]],
          body,
        })
        for (const res of [five, four]) {
          expect([type, res.status, res.text]).to.deep.equal([type, 415, REFUSAL_415])
          expect(res.get('content-type')).to.equal('application/json; charset=utf-8')
        }
      }
    } finally {
      await server4.close()
      await running.close()
    }
  })
})

describe('configuration that fails early (issue 12)', function () {
  this.timeout(30_000)

  it('an issuer with a trailing slash is a TypeError naming the fix', () => {
    expect(
      () =>
        new PartnerTokenVerifier({
          issuer: 'https://api.agent.press/orgs/acme/',
          audience: 'https://mcp.example.com/mcp',
          expectedExtProvider: 'example',
        }),
    ).to.throw(
      TypeError,
      'options.issuer must not end with "/" (AgentPress issuers have none): use "https://api.agent.press/orgs/acme"',
    )
  })

  it('createKeyRotationRouter refuses an unknown option (a typo must not disable a callback)', () => {
    const verifier = new PartnerTokenVerifier({
      issuer: 'https://api.agent.press/orgs/acme',
      audience: 'https://mcp.example.com/mcp',
      expectedExtProvider: 'example',
    })
    expect(() =>
      createKeyRotationRouter({
        webhookSecret: 'whsec_0123456789abcdef',
        verifiers: [verifier],
        onRotaton: () => {},
      } as never),
    ).to.throw(TypeError, 'Unknown createKeyRotationRouter option: onRotaton')
  })

  it('agentpress-mock token --ttl above the verifier cap is a usage error naming the cap', async () => {
    const result = await run([CLI, 'token', '--server', 'http://127.0.0.1:9', '--ttl', '3600'])
    expect(result.code).to.equal(2)
    expect(result.stderr).to.equal(
      "agentpress-mock: --ttl 3600 is above the verifier's token lifetime cap of 600 seconds (maxTokenLifetimeSec): such a token is refused (missing_claim); use --ttl 600 or less\nRun 'agentpress-mock --help' for usage.\n",
    )
  })

  const BAD: Array<[string, Record<string, string>, RegExp]> = [
    [
      'an http issuer',
      { AGENTPRESS_ISSUER: 'http://api.agent.press/orgs/acme', AGENTPRESS_EXT_PROVIDER: 'e' },
      /^Configuration error: AGENTPRESS_ISSUER must use https:/,
    ],
    [
      'an issuer with a trailing slash',
      { AGENTPRESS_ISSUER: 'https://api.agent.press/orgs/acme/', AGENTPRESS_EXT_PROVIDER: 'e' },
      /^Configuration error: AGENTPRESS_ISSUER must not end with "\/".*use https:\/\/api\.agent\.press\/orgs\/acme\n$/,
    ],
    [
      'a short webhook secret',
      { AGENTPRESS_WEBHOOK_SECRET: 'short' },
      /^Configuration error: AGENTPRESS_WEBHOOK_SECRET must be at least 16 characters long\n$/,
    ],
    [
      'a webhook secret with a trailing space',
      { AGENTPRESS_WEBHOOK_SECRET: 'whsec_0123456789abcdef ' },
      /^Configuration error: AGENTPRESS_WEBHOOK_SECRET must not have leading or trailing whitespace\n$/,
    ],
    [
      'an audience that is no URL',
      { MCP_AUDIENCE: 'mcp.example.com' },
      /^Configuration error: MCP_AUDIENCE must be an absolute URL/,
    ],
  ]
  for (const [label, env, message] of BAD) {
    it(`the example server: ${label} exits 2 with a message naming the variable`, async () => {
      const result = await run([SERVER], { PORT: '0', ...env })
      expect(result.code, result.stderr).to.equal(2)
      expect(result.stderr).to.match(message)
      expect(result.stderr).not.to.match(/options\.|at .*\.m?js:\d+/)
    })
  }
})
