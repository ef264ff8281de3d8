// `agentpress-mock check <url>`, spawned as a user runs it, against the example server (as
// `npm start` runs it), correct servers on the three stacks, and servers with one deliberate flaw
// each: every flaw is reported by its probe's name and the exit status is 1.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'

import { startPartnerServer, type Flaw, type PartnerServer } from './check-servers.js'
import { STACKS } from '../support/stacks.js'

const CLI = fileURLToPath(new URL('../../dist/testing/cli.js', import.meta.url))
const SERVER = fileURLToPath(
  new URL('../../examples/express-mcp-server/server.mjs', import.meta.url),
)

interface Finding {
  id: string
  title: string
  result: 'pass' | 'fail' | 'warn' | 'skip'
  detail: string
}
interface Report {
  target: string
  findings: Finding[]
  summary: Record<Finding['result'], number>
  requests: number
  durationMs: number
}
interface Run {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

function run(args: string[], timeoutMs = 30_000): Promise<Run> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`check ${args.join(' ')} did not exit within ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: performance.now() - started })
    })
  })
}

async function check(args: string[]): Promise<{ run: Run; report: Report }> {
  const result = await run([...args, '--json'])
  expect(result.stderr).to.equal('')
  return { run: result, report: JSON.parse(result.stdout) as Report }
}

const ids = (report: Report, result: Finding['result']): string[] =>
  report.findings.filter((f) => f.result === result).map((f) => f.id)

const EVERY_PROBE = [
  'transport',
  'no-token',
  'prm-document',
  'prm-cors',
  'alg-none',
  'alg-hs256-public-key',
  'foreign-key-same-kid',
  'foreign-key-unknown-kid',
  'expired',
  'not-yet-valid',
  'nbf-in-future',
  'wrong-audience',
  'wrong-ext-provider',
  'malformed',
  'oversized',
  'jku-header',
  'jwk-header',
  'x5u-header',
  'duplicate-authorization',
  'foreign-origin',
  'webhook-unsigned',
  'webhook-bad-signature',
  'webhook-stale-timestamp',
  'webhook-oversized',
  'webhook-not-json',
  'valid-token',
  'missing-scope',
  'replay',
  'emergency-rotation',
]

/** The example server as `npm start` runs it (after its build), on a free port. */
function startExample(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
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
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the example did not start within 20 s: ${out}`))
    }, 20_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk
      const match = /MCP server:\s+(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(out)
      if (match === null) return
      clearTimeout(timer)
      resolve({ child, url: match[1]! })
    })
    child.on('error', reject)
  })
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

describe('agentpress-mock check', function () {
  this.timeout(90_000)

  describe('the example server (npm start)', () => {
    let example: { child: ChildProcess; url: string } | undefined
    afterEach(async () => {
      if (example !== undefined) await stop(example.child)
      example = undefined
    })

    it('every probe passes, exit 0, in under 10 s; the table names every probe', async () => {
      example = await startExample({})
      const webhook = `${example.url}/webhooks/agentpress/key-rotation`
      const table = await run(['check', `${example.url}/mcp`, '--webhook', webhook])
      expect(table.stderr).to.equal('')
      expect(table.code, table.stdout).to.equal(0)
      expect(table.ms).to.be.below(10_000)
      expect(table.stdout).to.match(/^agentpress-mock check http:\/\/127\.0\.0\.1:\d+\/mcp\n/)
      expect(table.stdout).to.match(/\n25 passed, 0 failed, 0 warning\(s\), 1 skipped; \d+ request/)
      expect(table.stdout).to.include('PASS    alg-none')
      const { run: json, report } = await check([
        'check',
        `${example.url}/mcp`,
        '--webhook',
        webhook,
      ])
      expect(json.code).to.equal(0)
      expect(json.ms).to.be.below(10_000)
      expect(ids(report, 'fail')).to.deep.equal([])
      expect(ids(report, 'warn')).to.deep.equal([])
      expect(ids(report, 'pass')).to.deep.equal(EVERY_PROBE.slice(0, -4))
      expect(ids(report, 'skip')).to.deep.equal(['positive-path'])
      expect(report.findings.find((f) => f.id === 'jku-header')!.detail).to.equal(
        '401 invalid_token "Signature verification failed"; the trap saw no request',
      )
      expect(report.findings.find((f) => f.id === 'no-token')!.detail).to.equal(
        `401 Bearer resource_metadata="${example.url}/.well-known/oauth-protected-resource/mcp"`,
      )
    })

    it('--issuer (the embedded mock): the positive path passes too, replay and emergency rotation included', async () => {
      example = await startExample({ AGENTPRESS_REPLAY: 'on', AGENTPRESS_MOCK_CONTROL: '1' })
      const webhook = `${example.url}/webhooks/agentpress/key-rotation`
      const { run: result, report } = await check([
        'check',
        `${example.url}/mcp`,
        '--webhook',
        webhook,
        '--issuer',
        example.url,
      ])
      expect(ids(report, 'fail')).to.deep.equal([])
      expect(ids(report, 'pass')).to.deep.equal(EVERY_PROBE)
      expect(result.code).to.equal(0)
      expect(result.ms).to.be.below(10_000)
      const detail = (id: string): string => report.findings.find((f) => f.id === id)!.detail
      expect(detail('wrong-audience')).to.equal('401 invalid_token "Audience does not match"')
      expect(detail('expired')).to.equal('401 invalid_token "Token expired"')
      expect(detail('missing-scope')).to.equal(
        '403 insufficient_scope "Insufficient scope" scope="mcp:read"',
      )
      expect(detail('replay')).to.equal('second use 401 invalid_token "Token already used"')
      expect(detail('emergency-rotation')).to.equal(
        'retired kid 401 invalid_token "Signing key not found"; new kid 200',
      )
      expect(detail('foreign-origin')).to.equal('403')
    })

    it('replay off: the replay probe is a warning, not a failure (exit 0)', async () => {
      example = await startExample({ AGENTPRESS_REPLAY: 'off', AGENTPRESS_MOCK_CONTROL: '1' })
      const { run: result, report } = await check([
        'check',
        `${example.url}/mcp`,
        '--issuer',
        example.url,
      ])
      expect(ids(report, 'fail')).to.deep.equal([])
      expect(ids(report, 'warn')).to.deep.equal(['replay'])
      expect(result.code).to.equal(0)
    })
  })

  describe('a correct server on each stack: every probe passes', () => {
    for (const stack of STACKS) {
      it(stack, async () => {
        const server = await startPartnerServer(stack)
        try {
          const { run: result, report } = await check([
            'check',
            server.mcpUrl,
            '--webhook',
            server.webhookUrl,
            '--issuer',
            server.url,
          ])
          expect(report.findings.filter((f) => f.result !== 'pass')).to.deep.equal([])
          expect(ids(report, 'pass')).to.deep.equal(EVERY_PROBE)
          expect(result.code).to.equal(0)
        } finally {
          await server.close()
        }
      })
    }
  })

  describe('a flawed server is flagged by name, exit 1', () => {
    const cases: Array<[Flaw, string[], RegExp]> = [
      ['accepts-alg-none', ['alg-none'], /^ACCEPTED: 200/],
      [
        'error-on-bad-signature',
        // Node keeps the first of two Authorization lines in req.headers: that forgery is 500 too.
        [
          'foreign-key-same-kid',
          'jku-header',
          'jwk-header',
          'x5u-header',
          'duplicate-authorization',
        ],
        /^500: a bad token must be 401, never a server error/,
      ],
      ['no-metadata', ['prm-document'], /^404: expected 200 with the document$/],
      [
        'fetches-jku',
        ['jku-header'],
        /the server FETCHED the URL the token named \(1 request\(s\)\)$/,
      ],
      ['webhook-accepts-unsigned', ['webhook-unsigned'], /^ACCEPTED: 200$/],
      ['ignores-aud', ['wrong-audience'], /^ACCEPTED: 200$/],
    ]
    let server: PartnerServer | undefined
    afterEach(async () => {
      await server?.close()
      server = undefined
    })
    for (const [flaw, flagged, detail] of cases) {
      it(`${flaw} → ${flagged.join(', ')}`, async () => {
        server = await startPartnerServer('express5', flaw)
        const { run: result, report } = await check([
          'check',
          server.mcpUrl,
          '--webhook',
          server.webhookUrl,
          '--issuer',
          server.url,
        ])
        expect(ids(report, 'fail')).to.deep.equal(flagged)
        expect(report.findings.find((f) => f.id === flagged[0])!.detail).to.match(detail)
        expect(result.code).to.equal(1)
        const table = await run([
          'check',
          server.mcpUrl,
          '--webhook',
          server.webhookUrl,
          '--issuer',
          server.url,
        ])
        expect(table.code).to.equal(1)
        expect(table.stdout).to.match(new RegExp(`\\nFAIL +${flagged[0]} `))
      })
    }
  })

  describe('bounds and usage', () => {
    it('a server that never answers: one finding, no hang, exit 1', async () => {
      const silent: Server = createServer(() => {})
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`
      try {
        const { run: result, report } = await check(['check', url, '--timeout', '300'])
        expect(report.findings.map((f) => [f.id, f.result, f.detail])).to.deep.equal([
          ['transport', 'pass', 'http on a loopback host (local development)'],
          ['no-answer', 'fail', 'no answer within 300 ms; the remaining probes were not run'],
        ])
        expect(report.requests).to.equal(1)
        expect(result.code).to.equal(1)
      } finally {
        silent.closeAllConnections()
        silent.close()
      }
    })

    it('plain http to a non-loopback host is a warning', async () => {
      // 192.0.2.0/24 is TEST-NET-1: never routed, so the probe times out after the warning.
      const { report } = await check(['check', 'http://192.0.2.1/mcp', '--timeout', '200'])
      expect(report.findings[0]).to.deep.equal({
        id: 'transport',
        title: 'the MCP endpoint is served over https',
        result: 'warn',
        detail: 'plain http to a non-loopback host: tokens would cross the network in clear text',
      })
    })

    it('usage errors exit 2', async () => {
      const none = await run(['check'])
      expect(none.code).to.equal(2)
      expect(none.stderr).to.equal(
        "agentpress-mock: check: give exactly one URL, the MCP endpoint (e.g. https://host/mcp)\nRun 'agentpress-mock --help' for usage.\n",
      )
      const remote = await run([
        'check',
        'http://127.0.0.1:1/mcp',
        '--issuer',
        'https://example.com',
      ])
      expect(remote.code).to.equal(2)
      expect(remote.stderr).to.include('--issuer must be a loopback URL')
    })
  })
})
