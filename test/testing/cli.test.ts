// The built `agentpress-mock` CLI (dist/cli.js), spawned as a user would run it. Needs `npm run build`.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'

import { PartnerTokenVerifier, createKeyRotationRouter } from 'passport-agentpress-partner'
import { closedPort } from '../support/servers.js'

const CLI = fileURLToPath(new URL('../../dist/testing/cli.js', import.meta.url))
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI to completion; kills it and fails after `timeoutMs`. */
function run(args: string[], timeoutMs = 30_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`agentpress-mock ${args.join(' ')} did not exit within ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

interface ServeConfig {
  url: string
  issuer: string
  jwksUrl: string
  audience: string
  extProvider: string
  webhookSecret: string
  currentKid: string
}

/** Starts `serve --json` and resolves with its configuration line. */
function startServe(args: string[]): Promise<{ child: ChildProcess; config: ServeConfig }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--json', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error('serve did not print its configuration within 30 s'))
    }, 30_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk
      const end = out.indexOf('\n')
      if (end === -1) return
      clearTimeout(timer)
      resolve({ child, config: JSON.parse(out.slice(0, end)) as ServeConfig })
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited early with ${code}`))
    })
  })
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode)
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
    child.kill('SIGTERM')
  })
}

/** A loopback receiver running the package's rotation router for `verifier`. */
async function startReceiver(
  secret: string,
  verifier: PartnerTokenVerifier,
): Promise<{ url: string; server: Server }> {
  const router = createKeyRotationRouter({ webhookSecret: secret, verifiers: [verifier] })
  const server = createServer((req, res) =>
    router(req, res, () => {
      res.statusCode = 404
      res.end()
    }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server }
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

const HINT = "Run 'agentpress-mock --help' for usage.\n"

describe('agentpress-mock CLI', function () {
  // Child processes on a loaded machine: the bounds below (30 s to start) must fit inside.
  this.timeout(60_000)

  describe('usage', () => {
    it('--help prints the usage of every command, exit 0', async () => {
      const { code, stdout, stderr } = await run(['--help'])
      expect(code).to.equal(0)
      expect(stderr).to.equal('')
      expect(stdout).to.match(/^Usage: agentpress-mock <command> \[options\]/)
      for (const command of ['serve', 'token', 'rotate'])
        expect(stdout).to.include(`\n  ${command}  `)
    })

    for (const command of ['serve', 'token', 'rotate']) {
      it(`${command} --help (and -h) prints the usage, exit 0`, async () => {
        const help = await run(['--help'])
        for (const flag of ['--help', '-h']) {
          expect(await run([command, flag])).to.deep.equal({
            code: 0,
            stdout: help.stdout,
            stderr: '',
          })
        }
      })
    }

    it('no command prints the usage to stderr, exit 2', async () => {
      const { code, stdout, stderr } = await run([])
      expect(code).to.equal(2)
      expect(stdout).to.equal('')
      expect(stderr).to.match(/^Usage: agentpress-mock/)
    })

    it('--version prints the package version', async () => {
      expect(await run(['--version'])).to.deep.equal({
        code: 0,
        stdout: `${VERSION}\n`,
        stderr: '',
      })
    })

    const usageErrors: ReadonlyArray<[string[], string]> = [
      [['mint'], 'unknown command "mint"'],
      [['serve', '--bogus'], "Unknown option '--bogus'"],
      [['serve', '--port', '70000'], '--port must be a whole number from 0 to 65535, got "70000"'],
      [['serve', '--port', 'abc'], '--port must be a whole number from 0 to 65535, got "abc"'],
      [['serve', '--org', 'Acme Org'], '--org must be lower-case letters, digits and hyphens'],
      [['serve', '--audience', 'not a url'], '--audience must be an absolute URL, got "not a url"'],
      [
        ['serve', '--webhook-secret', 'short'],
        '--webhook-secret must be at least 16 characters, with no leading or trailing spaces',
      ],
      [['token'], 'token: --server URL is required'],
      [
        ['token', '--server', 'https://api.agent.press'],
        '--server must be a loopback URL (the mock listens on 127.0.0.1 only)',
      ],
      [
        ['token', '--server', 'http://127.0.0.1:1', '--ttl', '1.5'],
        '--ttl must be a whole number from -86400 to 86400, got "1.5"',
      ],
      [
        ['token', '--server', 'http://127.0.0.1:1', '--claim', 'novalue'],
        '--claim must be NAME=VALUE, got "novalue"',
      ],
      [['rotate'], 'rotate: --server URL is required'],
      [
        ['rotate', '--server', 'http://127.0.0.1:1', '--webhook', 'ftp://x'],
        '--webhook must be an http: or https: URL',
      ],
    ]
    for (const [args, message] of usageErrors) {
      it(`${args.join(' ')} → exit 2: ${message}`, async () => {
        const { code, stdout, stderr } = await run(args)
        expect(code).to.equal(2)
        expect(stdout).to.equal('')
        expect(stderr.startsWith(`agentpress-mock: ${message}`)).to.equal(true, stderr)
        expect(stderr.endsWith(HINT)).to.equal(true, stderr)
      })
    }

    it('token against a port where nothing listens → exit 1', async () => {
      const port = await closedPort()
      const { code, stdout, stderr } = await run(['token', '--server', `http://127.0.0.1:${port}`])
      expect(code).to.equal(1)
      expect(stdout).to.equal('')
      expect(stderr).to.equal(
        `agentpress-mock: cannot reach the mock at http://127.0.0.1:${port} (ECONNREFUSED): is \`agentpress-mock serve\` running?\n`,
      )
    })
  })

  describe('serve, token, rotate', () => {
    let child: ChildProcess
    let config: ServeConfig
    let verifier: PartnerTokenVerifier

    before(async () => {
      ;({ child, config } = await startServe([
        '--org',
        'acme-org',
        '--audience',
        'http://127.0.0.1:3999/mcp',
        '--ext-provider',
        'acme-partner',
        '--webhook-secret',
        'whsec_clitestsecret01234567890',
      ]))
      verifier = new PartnerTokenVerifier({
        issuer: config.issuer,
        audience: config.audience,
        expectedExtProvider: config.extProvider,
        jwksCooldownMs: 1000,
      })
    })
    after(async () => {
      if (child) expect(await stop(child)).to.equal(0)
    })

    it('prints its configuration (loopback issuer with the chosen port and org)', () => {
      expect(config.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(config).to.deep.include({
        issuer: `${config.url}/orgs/acme-org`,
        jwksUrl: `${config.url}/orgs/acme-org/.well-known/jwks.json`,
        audience: 'http://127.0.0.1:3999/mcp',
        extProvider: 'acme-partner',
        webhookSecret: 'whsec_clitestsecret01234567890',
      })
      expect(config.currentKid).to.match(/^ap-[0-9a-f]{12}$/)
    })

    it('serves the JWKS at <issuer>/.well-known/jwks.json', async () => {
      const res = await fetch(config.jwksUrl)
      expect(res.status).to.equal(200)
      const body = (await res.json()) as { keys: Array<{ kid: string; kty: string; crv: string }> }
      expect(body.keys.map((key) => key.kid)).to.deep.equal([config.currentKid])
      expect(body.keys[0]).to.deep.include({ kty: 'OKP', crv: 'Ed25519' })
    })

    it('token mints a token the verifier accepts, with the claims asked for', async () => {
      const { code, stdout, stderr } = await run([
        'token',
        '--server',
        config.url,
        '--sub',
        'alice',
        '--scope',
        'mcp:read',
      ])
      expect(code).to.equal(0, stderr)
      expect(stdout).to.match(/^[\w-]+\.[\w-]+\.[\w-]+\n$/)
      const claims = await verifier.verifyToken(stdout.trim())
      expect(claims).to.deep.include({
        iss: config.issuer,
        aud: 'http://127.0.0.1:3999/mcp',
        ext_provider: 'acme-partner',
        sub: 'alice',
        scope: 'mcp:read',
      })
      expect(claims.exp - claims.iat).to.equal(60)
    })

    it('token --json, --ttl, --audience and --claim', async () => {
      const { code, stdout } = await run([
        'token',
        '--server',
        config.url,
        '--json',
        '--ttl',
        '300',
        '--audience',
        'https://other.example/mcp',
        '--claim',
        'tenant=t-1',
        '--claim',
        'level=3',
      ])
      expect(code).to.equal(0)
      const answer = JSON.parse(stdout) as { token: string; claims: Record<string, unknown> }
      expect(answer.claims).to.deep.include({
        aud: 'https://other.example/mcp',
        tenant: 't-1',
        level: 3,
      })
      expect((answer.claims.exp as number) - (answer.claims.iat as number)).to.equal(300)
      // The verifier of another audience refuses it.
      await verifier.verifyToken(answer.token).then(
        () => expect.fail('accepted a token for another audience'),
        (err: { reason?: string }) => expect(err.reason).to.equal('audience_mismatch'),
      )
    })

    it('token --omit and a negative --ttl mint tokens the verifier refuses', async () => {
      const omitted = await run(['token', '--server', config.url, '--omit', 'jti'])
      const expired = await run(['token', '--server', config.url, '--ttl=-120'])
      const reasons = await Promise.all(
        [omitted, expired].map((result) =>
          verifier.verifyToken(result.stdout.trim()).then(
            () => 'accepted',
            (err: { reason?: string }) => err.reason,
          ),
        ),
      )
      expect(reasons).to.deep.equal(['missing_claim', 'expired'])
    })

    it('rotate delivers a signed webhook the rotation router accepts; new-key tokens verify', async () => {
      const before = await run(['token', '--server', config.url])
      await verifier.verifyToken(before.stdout.trim())
      const receiver = await startReceiver('whsec_clitestsecret01234567890', verifier)
      try {
        const fetches = verifier.jwksFetchCount
        const { code, stdout, stderr } = await run([
          'rotate',
          '--server',
          config.url,
          '--webhook',
          receiver.url,
        ])
        expect(code).to.equal(0, stderr)
        const [rotated, event, delivered] = stdout.trimEnd().split('\n')
        expect(event).to.match(/^Event: \{/)
        const parsed = JSON.parse(event!.replace(/^Event: /, '')) as Record<string, unknown>
        expect(parsed.newCurrentKid).to.match(/^ap-[0-9a-f]{12}$/)
        expect(parsed.newCurrentKid).to.not.equal(config.currentKid)
        expect(rotated).to.equal(`Rotated: ${config.currentKid} → ${String(parsed.newCurrentKid)}`)
        expect(parsed).to.deep.include({
          type: 'signing_key_rotation',
          issuer: config.issuer,
          retiredKid: config.currentKid,
          emergency: false,
        })
        expect(delivered).to.equal(
          `Delivered: webhook ${receiver.url} answered 200 {"received":true}`,
        )
        // The webhook made the verifier refetch: the new kid is known before any token uses it.
        expect(verifier.jwksFetchCount).to.equal(fetches + 1)
        const after = await run(['token', '--server', config.url])
        await verifier.verifyToken(after.stdout.trim())
        expect(verifier.jwksFetchCount).to.equal(fetches + 1)
        // Overlap window: the retiring key still verifies.
        await verifier.verifyToken(before.stdout.trim())
      } finally {
        await closeServer(receiver.server)
      }
    })

    it('rotate --emergency withdraws the retired key at once', async () => {
      const old = await run(['token', '--server', config.url])
      await verifier.verifyToken(old.stdout.trim())
      const receiver = await startReceiver('whsec_clitestsecret01234567890', verifier)
      try {
        const { code, stdout } = await run([
          'rotate',
          '--server',
          config.url,
          '--webhook',
          receiver.url,
          '--emergency',
        ])
        expect(code).to.equal(0)
        const retired = old.stdout.trim()
        const oldKid = (
          JSON.parse(Buffer.from(retired.split('.')[0]!, 'base64url').toString()) as {
            kid: string
          }
        ).kid
        const [rotated, event] = stdout.trimEnd().split('\n')
        const newKid = (JSON.parse(event!.replace(/^Event: /, '')) as { newCurrentKid: string })
          .newCurrentKid
        expect(rotated).to.equal(
          `Rotated (emergency: retired key withdrawn): ${oldKid} → ${newKid}`,
        )
        await verifier.verifyToken(old.stdout.trim()).then(
          () => expect.fail('the retired key was still accepted'),
          (err: { reason?: string }) => expect(err.reason).to.equal('kid_missing_or_unknown'),
        )
        const jwks = (await (await fetch(config.jwksUrl)).json()) as {
          keys: Array<{ kid: string }>
        }
        expect(jwks.keys.map((key) => key.kid)).to.deep.equal([newKid])
      } finally {
        await closeServer(receiver.server)
      }
    })

    it('rotate exits 1 when the receiver refuses the webhook', async () => {
      // A receiver holding another secret answers 401 signature_mismatch.
      const receiver = await startReceiver('whsec_someothersecret0123456789000', verifier)
      try {
        const { code, stdout, stderr } = await run([
          'rotate',
          '--server',
          config.url,
          '--webhook',
          receiver.url,
        ])
        expect(code).to.equal(1)
        expect(stdout).to.match(/^Rotated: /)
        expect(stderr).to.equal(
          `agentpress-mock: webhook ${receiver.url} answered 401 ` +
            '{"error":"signature_mismatch","error_description":"Signature does not match"}\n',
        )
      } finally {
        await closeServer(receiver.server)
      }
    })

    it('rotate exits 1 when the receiver is unreachable', async () => {
      const port = await closedPort()
      const { code, stderr } = await run([
        'rotate',
        '--server',
        config.url,
        '--webhook',
        `http://127.0.0.1:${port}/`,
      ])
      expect(code).to.equal(1)
      expect(stderr).to.equal(
        `agentpress-mock: webhook delivery to http://127.0.0.1:${port}/ failed: fetch failed (ECONNREFUSED)\n`,
      )
    })

    describe('the control API refuses what a web page could send', () => {
      const post = (path: string, headers: Record<string, string>) =>
        fetch(`${config.url}${path}`, { method: 'POST', headers, body: '{}' })

      it('an Origin header → 403', async () => {
        const res = await post('/_mock/token', {
          'content-type': 'application/json',
          origin: 'https://evil.example',
        })
        expect(res.status).to.equal(403)
        expect(await res.json()).to.deep.equal({ error: 'browser requests are not allowed' })
      })

      it('a Host that is not loopback (DNS rebinding) → 403', async () => {
        const { request } = await import('node:http')
        const answer = await new Promise<[number | undefined, string]>((resolve, reject) => {
          const req = request(`${config.url}/_mock/token`, {
            method: 'POST',
            headers: { host: 'evil.example', 'content-type': 'application/json' },
          })
          req.on('response', (res) => {
            let text = ''
            res.setEncoding('utf8')
            res.on('data', (chunk: string) => (text += chunk))
            res.on('end', () => resolve([res.statusCode, text]))
          })
          req.on('error', reject)
          req.end('{}')
        })
        expect(answer).to.deep.equal([403, '{"error":"Host not allowed"}'])
      })

      it('a simple (text/plain) POST → 415', async () => {
        const currentKid = async () =>
          ((await (await fetch(`${config.url}/_mock/config`)).json()) as { currentKid: string })
            .currentKid
        const before = await currentKid()
        const res = await post('/_mock/rotate', { 'content-type': 'text/plain' })
        expect(res.status).to.equal(415)
        expect(await res.json()).to.deep.equal({ error: 'Content-Type must be application/json' })
        expect(await currentKid()).to.equal(before) // nothing rotated
      })

      it('GET on a POST route → 405 with Allow; unknown path → 404', async () => {
        const res = await fetch(`${config.url}/_mock/token`)
        expect(res.status).to.equal(405)
        expect(res.headers.get('allow')).to.equal('POST')
        expect(await res.json()).to.deep.equal({ error: 'only POST is allowed' })
        for (const path of ['/_mock/keys', '/anything']) {
          const missing = await fetch(`${config.url}${path}`)
          expect([missing.status, await missing.text()], path).to.deep.equal([
            404,
            '{"error":"not found"}',
          ])
        }
      })

      it('GET /_mock/config never reveals the webhook secret', async () => {
        const body = (await (await fetch(`${config.url}/_mock/config`)).json()) as Record<
          string,
          unknown
        >
        expect(Object.keys(body).sort()).to.deep.equal([
          'audience',
          'currentKid',
          'extProvider',
          'issuer',
          'jwksUrl',
        ])
      })
    })
  })

  it('serve on a port already in use → exit 1', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    try {
      const port = (blocker.address() as AddressInfo).port
      const { code, stderr } = await run(['serve', '--port', String(port)])
      expect(code).to.equal(1)
      expect(stderr).to.equal(`agentpress-mock: port ${port} is already in use (try --port 0)\n`)
    } finally {
      await closeServer(blocker)
    }
  })

  it('serve prints where to point a server, how to mint and how to rotate; SIGTERM → exit 0', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no banner within 30 s')), 30_000)
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk
        if (out.includes('Press Ctrl+C to stop.')) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    expect(out).to.match(
      /^Mock AgentPress listening on http:\/\/127\.0\.0\.1:\d+ \(127\.0\.0\.1 only\)\n/,
    )
    expect(out).to.include('  AGENTPRESS_ISSUER=http://127.0.0.1:')
    expect(out).to.include('agentpress-mock token --server http://127.0.0.1:')
    expect(out).to.include('agentpress-mock rotate --server http://127.0.0.1:')
    expect(await stop(child)).to.equal(0)
  })
})
