// Regression (issue 26, item 8): the example MCP server mounted its embedded mock's control API
// (`/_mock/token`, `/_mock/rotate`) on every start, so anything that could reach the server as a
// loopback peer (a reverse proxy on the same machine, a container port mapping) could mint tokens
// the server accepts. The control API is now off unless asked for (`AGENTPRESS_MOCK_CONTROL=1`,
// `startServer({ mockControl: true })`): without it every control route is a 404 exactly like any
// unknown path, and the startup log says in one line why it is off and how to turn it on.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'

import { startServer, type RunningServer } from '../../examples/express-mcp-server/server.mjs'
import { ConfigError, configFromEnv } from '../../examples/express-mcp-server/config.mjs'
import { startServer as startV2 } from '../../examples/mcp-server-v2/server.mjs'
import { finalhandlerPage } from '../support/stacks.js'

const SERVER = fileURLToPath(
  new URL('../../examples/express-mcp-server/server.mjs', import.meta.url),
)
const CLI = fileURLToPath(new URL('../../dist/testing/cli.js', import.meta.url))

const OFF_LINE =
  'mock control API off: /_mock/token and /_mock/rotate would mint tokens this server accepts ' +
  'for any loopback peer (a reverse proxy on this machine too), so they are never served by ' +
  'default; set AGENTPRESS_MOCK_CONTROL=1 (startServer({ mockControl: true })) to use ' +
  '`agentpress-mock token|rotate|check --issuer` against this server'
const ON_LINE =
  'mock control API on (AGENTPRESS_MOCK_CONTROL=1): /_mock/token and /_mock/rotate mint tokens ' +
  'this server accepts, for loopback peers without proxy forwarding headers only'

const json = { 'content-type': 'application/json' }

/** What Express answers a path nothing is mounted on. */
async function expectUnknownPath(res: Response, method: string, path: string): Promise<void> {
  expect(res.status).to.equal(404)
  expect(res.headers.get('content-type')).to.equal('text/html; charset=utf-8')
  expect(await res.text()).to.equal(finalhandlerPage(`Cannot ${method} ${path}`, 404))
}

describe('examples: the mock control API is served only when asked for (AGENTPRESS_MOCK_CONTROL)', () => {
  describe('startServer() without mockControl (the default)', () => {
    let server: RunningServer
    const lines: string[] = []
    before(async () => {
      server = await startServer({ port: 0, log: (line) => lines.push(line) })
    })
    after(() => server.close())

    it('no control route answers: each is a 404 like any unknown path, and nothing rotates', async () => {
      const kid = server.mock!.currentKid
      const requests: Array<[string, string, RequestInit]> = [
        ['POST', '/_mock/token', { method: 'POST', headers: json, body: '{"sub":"mallory"}' }],
        ['POST', '/_mock/rotate', { method: 'POST', headers: json, body: '{"emergency":true}' }],
        ['GET', '/_mock/config', {}],
        ['GET', '/_mock', {}],
        ['POST', '/no-such-path', { method: 'POST', headers: json, body: '{}' }],
      ]
      for (const [method, path, init] of requests) {
        await expectUnknownPath(await fetch(`${server.url}${path}`, init), method, path)
      }
      expect(server.mock!.currentKid).to.equal(kid)
      expect(server.mock!.keys.map((k) => k.kid)).to.deep.equal([kid])
    })

    it('the startup log says, in one line, that it is off, why, and how to turn it on', () => {
      expect(lines.filter((line) => line.includes('control API'))).to.deep.equal([OFF_LINE])
    })

    it('agentpress-mock token --server <its URL> fails (exit 1) instead of minting', async () => {
      const result = await runCli(['token', '--server', server.url])
      expect(result.stdout).to.equal('')
      expect(result.stderr).to.include(
        `${server.url} answered 404 (no control API there: is it \`agentpress-mock serve\`? ` +
          'The example server serves it only with AGENTPRESS_MOCK_CONTROL=1)',
      )
      expect(result.code).to.equal(1)
    })
  })

  describe('startServer({ mockControl: true }): as before, loopback only, forwarding refused', () => {
    let server: RunningServer
    const lines: string[] = []
    before(async () => {
      server = await startServer({ port: 0, mockControl: true, log: (line) => lines.push(line) })
    })
    after(() => server.close())

    it('mints a token this server accepts', async () => {
      const res = await fetch(`${server.url}/_mock/token`, {
        method: 'POST',
        headers: json,
        body: '{"sub":"bob","scope":"mcp:read"}',
      })
      expect(res.status).to.equal(200)
      const { token, claims } = (await res.json()) as {
        token: string
        claims: { sub: string; scope: string; iss: string }
      }
      expect([claims.sub, claims.scope, claims.iss]).to.deep.equal([
        'bob',
        'mcp:read',
        server.issuer,
      ])
      const call = await fetch(server.mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      })
      expect(call.status).to.equal(200)
    })

    it('a request carrying a proxy forwarding header is 403, whatever else it says', async () => {
      for (const [name, value] of [
        ['x-forwarded-for', '203.0.113.9'],
        ['forwarded', 'for=203.0.113.9'],
        ['via', '1.1 nginx'],
      ]) {
        const res = await fetch(`${server.url}/_mock/token`, {
          method: 'POST',
          headers: { ...json, [name!]: value! },
          body: '{}',
        })
        expect(res.status, name).to.equal(403)
        expect(await res.json()).to.deep.equal({
          error: 'proxied requests are not allowed: the control API is loopback only',
        })
      }
    })

    it('the startup log says it is on, in one line', () => {
      expect(lines.filter((line) => line.includes('control API'))).to.deep.equal([ON_LINE])
    })
  })

  it('mockControl with a configured issuer (no embedded mock) is a configuration error', async () => {
    let error: unknown
    try {
      const server = await startServer({
        port: 0,
        log: () => {},
        warmUp: false,
        mockControl: true,
        agentpress: { issuer: 'https://api.agent.press/orgs/acme-org', extProvider: 'example' },
      })
      await server.close()
    } catch (err) {
      error = err
    }
    expect(error).to.be.instanceOf(ConfigError)
    expect((error as Error).message).to.equal(
      'mockControl (AGENTPRESS_MOCK_CONTROL) serves the embedded mock AgentPress, and there is ' +
        'none with a configured issuer: unset it, or unset AGENTPRESS_ISSUER / AGENTPRESS_ORG_SLUG',
    )
  })

  it('AGENTPRESS_MOCK_CONTROL: 1/true/on/yes turn it on, 0/false/off/no or unset keep it off, anything else exits 2', () => {
    expect(configFromEnv({}).mockControl).to.equal(false)
    for (const on of ['1', 'true', 'on', 'yes', 'TRUE']) {
      expect(configFromEnv({ AGENTPRESS_MOCK_CONTROL: on }).mockControl, on).to.equal(true)
    }
    for (const off of ['0', 'false', 'off', 'no', '']) {
      expect(configFromEnv({ AGENTPRESS_MOCK_CONTROL: off }).mockControl, off).to.equal(false)
    }
    expect(() => configFromEnv({ AGENTPRESS_MOCK_CONTROL: 'please' })).to.throw(
      ConfigError,
      'AGENTPRESS_MOCK_CONTROL must be 1 (serve the mock control API) or 0 (default), got "please"',
    )
    expect(() =>
      configFromEnv({
        AGENTPRESS_MOCK_CONTROL: '1',
        AGENTPRESS_ISSUER: 'https://api.agent.press/orgs/acme-org',
        AGENTPRESS_EXT_PROVIDER: 'example',
      }),
    ).to.throw(
      ConfigError,
      'AGENTPRESS_MOCK_CONTROL serves the embedded mock AgentPress, and there is none with ' +
        'AGENTPRESS_ISSUER or AGENTPRESS_ORG_SLUG set: unset one of them',
    )
  })

  describe('the example as a process (node examples/express-mcp-server/server.mjs)', () => {
    it('no AGENTPRESS_MOCK_CONTROL: the line is printed and /_mock/token is 404', async () => {
      const { child, stdout, url } = await startExample({})
      try {
        expect(stdout.split('\n')).to.include(OFF_LINE)
        await expectUnknownPath(
          await fetch(`${url}/_mock/token`, { method: 'POST', headers: json, body: '{}' }),
          'POST',
          '/_mock/token',
        )
      } finally {
        await stop(child)
      }
    })

    it('AGENTPRESS_MOCK_CONTROL=1: agentpress-mock token --server <its URL> mints', async () => {
      const { child, stdout, url } = await startExample({ AGENTPRESS_MOCK_CONTROL: '1' })
      try {
        expect(stdout.split('\n')).to.include(ON_LINE)
        const result = await runCli(['token', '--server', url, '--sub', 'carol', '--json'])
        expect(result.code, result.stderr).to.equal(0)
        const { claims } = JSON.parse(result.stdout) as { claims: { sub: string } }
        expect(claims.sub).to.equal('carol')
      } finally {
        await stop(child)
      }
    })
  })

  it('the SDK v2 example never serves the control API', async () => {
    const server = await startV2({ port: 0, log: () => {} })
    try {
      for (const url of [server.url, server.mock.url]) {
        const res = await fetch(`${url}/_mock/token`, { method: 'POST', headers: json, body: '{}' })
        expect(res.status, url).to.equal(404)
      }
    } finally {
      await server.close()
    }
  })
})

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

function startExample(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; stdout: string; url: string }> {
  return new Promise((resolve, reject) => {
    const clean = { ...process.env }
    for (const name of Object.keys(clean)) {
      if (name.startsWith('AGENTPRESS_') || name === 'MCP_AUDIENCE' || name === 'HOST') {
        delete clean[name]
      }
    }
    const child = spawn(process.execPath, [SERVER], {
      env: { ...clean, PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the example did not start within 60 s: ${stdout}`))
    }, 60_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk
      if (!stdout.includes('Press Ctrl+C to stop.')) return
      clearTimeout(timer)
      const url = /^MCP server:\s+(http:\/\/127\.0\.0\.1:\d+)\/mcp$/m.exec(stdout)![1]!
      resolve({ child, stdout, url })
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the example exited with ${code}: ${stdout}`))
    })
  })
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}
