// The commands a newcomer runs: `npm run demo` and `npm start`, spawned as a user would, with no
// AgentPress environment set. Bounded: every child is killed when its deadline passes.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SERVER = fileURLToPath(
  new URL('../../examples/express-mcp-server/server.mjs', import.meta.url),
)

/** The environment minus everything the example reads, so the tests see a fresh shell. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of Object.keys(env)) {
    if (
      name.startsWith('AGENTPRESS_') ||
      name === 'MCP_AUDIENCE' ||
      name === 'PORT' ||
      name === 'HOST'
    ) {
      delete env[name]
    }
  }
  return { ...env, ...extra }
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function spawnIn(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  // Own process group, so the whole tree (npm → sh → node) can be stopped by its id.
  return spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(-child.pid!, signal)
  } catch {
    // Already gone.
  }
}

function runToEnd(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawnIn(command, args, env)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL')
      reject(
        new Error(
          `${command} ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`,
        ),
      )
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Starts a long-running command and resolves once `marker` appears on stdout. */
function runUntil(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  marker: string,
  timeoutMs: number,
): Promise<{ child: ChildProcess; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnIn(command, args, env)
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL')
      reject(new Error(`no "${marker}" within ${timeoutMs} ms\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk))
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk
      if (stdout.includes(marker)) {
        clearTimeout(timer)
        resolve({ child, stdout })
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before "${marker}"\n${stdout}\n${stderr}`))
    })
  })
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    killGroup(child)
  })
}

describe('commands', function () {
  this.timeout(180_000)

  it('npm run demo exits 0 and prints every step', async () => {
    const { code, stdout, stderr } = await runToEnd('npm', ['run', 'demo'], cleanEnv(), 150_000)
    expect(code).to.equal(0, `${stdout}\n${stderr}`)
    const expected = [
      /^Replay rejection is on: the client mints a fresh token for every request\.$/m,
      /^\[1\/8\] Connected as alice \(scope "mcp:read"\) and listed tools: list_notes$/m,
      /^\[2\/8\] Called list_notes \(needs mcp:read\): allowed$/m,
      /^ {6}the tool handler received authInfo: clientId=example-partner, scopes=\[mcp:read\], user=usr_1 \(sub alice\)$/m,
      /^\[3\/8\] Called add_note \(needs mcp:write\) with the read-only token: refused, HTTP 403$/m,
      /^ {6}WWW-Authenticate: Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:write", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/m,
      /^\[4\/8\] Called add_note with scope "mcp:read mcp:write": allowed$/m,
      /^\[5\/8\] Connected with a tampered token \(one signature character changed\): refused, HTTP 401$/m,
      /^ {6}WWW-Authenticate: Bearer realm="mcp", error="invalid_token", error_description="Signature verification failed", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/m,
      /^\[6\/8\] Rotated the signing key ap-[0-9a-f]{12} → ap-[0-9a-f]{12} and delivered the signed webhook$/m,
      /^ {6}http:\/\/127\.0\.0\.1:\d+\/webhooks\/agentpress\/key-rotation answered 200 \{"received":true\}$/m,
      /^\[7\/8\] Called list_notes with a token signed by the new key ap-[0-9a-f]{12}: allowed$/m,
      /^ {6}JWKS fetches caused by this call: 0 \(the webhook had already brought the new key\)$/m,
      /^\[8\/8\] First-contact provisioning: one local user for \(ext_provider, sub\)$/m,
      /^ {6}usr_1 = \(example-partner, alice\), notes: \["hello from the demo"\]$/m,
      /^Demo complete: every step behaved as expected\.$/m,
    ]
    for (const line of expected) expect(stdout).to.match(line)
  })

  it('npm start (no environment) runs the example on an embedded mock; its curl token works', async () => {
    const { child, stdout } = await runUntil(
      'npm',
      ['start'],
      cleanEnv({ PORT: '0' }),
      'Press Ctrl+C to stop.',
      150_000,
    )
    try {
      expect(stdout).to.include(
        'No AGENTPRESS_ISSUER or AGENTPRESS_ORG_SLUG set: started an embedded mock AgentPress.',
      )
      const mcpUrl = /^MCP server: +(http:\/\/127\.0\.0\.1:\d+\/mcp)$/m.exec(stdout)?.[1]
      const token = /-H 'Authorization: Bearer ([\w-]+\.[\w-]+\.[\w-]+)'/.exec(stdout)?.[1]
      expect(mcpUrl, stdout).to.be.a('string')
      expect(token, stdout).to.be.a('string')
      // The control API is off: the banner says how to turn it on, and /_mock/token is a 404.
      expect(stdout).to.include('  AGENTPRESS_MOCK_CONTROL=1 npm start\n')
      const minted = await fetch(`${mcpUrl!.replace(/\/mcp$/, '')}/_mock/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      })
      expect(minted.status).to.equal(404)
      const res = await fetch(mcpUrl!, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
        },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      })
      expect(res.status).to.equal(200)
    } finally {
      await stop(child)
    }
  })

  it('AGENTPRESS_MOCK_CONTROL=1 npm start: its curl token works, and so does the printed mint command', async () => {
    const { child, stdout } = await runUntil(
      'npm',
      ['start'],
      cleanEnv({ PORT: '0', AGENTPRESS_MOCK_CONTROL: '1' }),
      'Press Ctrl+C to stop.',
      150_000,
    )
    try {
      expect(stdout).to.include(
        'No AGENTPRESS_ISSUER or AGENTPRESS_ORG_SLUG set: started an embedded mock AgentPress.',
      )
      const mcpUrl = /^MCP server: +(http:\/\/127\.0\.0\.1:\d+\/mcp)$/m.exec(stdout)?.[1]
      const token = /-H 'Authorization: Bearer ([\w-]+\.[\w-]+\.[\w-]+)'/.exec(stdout)?.[1]
      const body = /-d '(\{"jsonrpc".*\})'$/m.exec(stdout)?.[1]
      expect(mcpUrl, stdout).to.be.a('string')
      expect(token, stdout).to.be.a('string')
      expect(body, stdout).to.be.a('string')
      expect(stdout).to.include(
        `npm run -s mock -- token --server ${mcpUrl!.replace(/\/mcp$/, '')} `,
      )

      // The printed curl command, as fetch.
      const res = await fetch(mcpUrl!, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
        },
        body,
      })
      expect(res.status).to.equal(200)
      expect(res.headers.get('www-authenticate')).to.equal(null)
      const answer = (await res.json()) as {
        jsonrpc: string
        id: number
        result: { content: Array<{ text: string }> }
      }
      expect([answer.jsonrpc, answer.id]).to.deep.equal(['2.0', 1])
      expect(JSON.parse(answer.result.content[0]!.text)).to.deep.equal({
        user: { id: 'usr_1', externalId: 'alice' },
        added: 'hello',
        count: 1,
      })

      // "Mint more": the printed control endpoint.
      const minted = await fetch(`${mcpUrl!.replace(/\/mcp$/, '')}/_mock/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ sub: 'bob', scope: 'mcp:read' }),
      })
      expect(minted.status).to.equal(200)
      const mintedClaims = ((await minted.json()) as { claims: { sub: string; scope: string } })
        .claims
      expect([mintedClaims.sub, mintedClaims.scope]).to.deep.equal(['bob', 'mcp:read'])
    } finally {
      await stop(child)
    }
  })

  it('agentpress-mock serve + the example configured for it: token and rotate through the CLI', async () => {
    const cli = fileURLToPath(new URL('../../dist/testing/cli.js', import.meta.url))
    const serve = await runUntil(
      process.execPath,
      [cli, 'serve', '--port', '0', '--json'],
      cleanEnv(),
      '\n',
      20_000,
    )
    try {
      const mock = JSON.parse(serve.stdout) as {
        url: string
        issuer: string
        audience: string
        extProvider: string
        webhookSecret: string
      }
      const example = await runUntil(
        process.execPath,
        [SERVER],
        cleanEnv({
          PORT: '0',
          AGENTPRESS_ISSUER: mock.issuer,
          AGENTPRESS_EXT_PROVIDER: mock.extProvider,
          AGENTPRESS_WEBHOOK_SECRET: mock.webhookSecret,
          MCP_AUDIENCE: mock.audience,
        }),
        'Press Ctrl+C to stop.',
        20_000,
      )
      try {
        expect(example.stdout).to.include(
          `Trusting ${mock.issuer} (ext_provider ${mock.extProvider})`,
        )
        const mcpUrl = /^MCP server: +(http:\/\/127\.0\.0\.1:\d+\/mcp)/m.exec(example.stdout)![1]!
        const webhook = /^Key rotation: +(http:\S+)$/m.exec(example.stdout)![1]!
        const metadata = /^Metadata: +(http:\S+)$/m.exec(example.stdout)![1]!
        const mint = async () => {
          const minted = await runToEnd(
            process.execPath,
            [cli, 'token', '--server', mock.url, '--sub', 'dana', '--scope', 'mcp:read'],
            cleanEnv(),
            10_000,
          )
          expect(minted.code).to.equal(0, minted.stderr)
          return minted.stdout.trim()
        }
        /** tools/list with `token`: [status, WWW-Authenticate, the tool names or the body]. */
        const list = async (token: string) => {
          const res = await fetch(mcpUrl, {
            method: 'POST',
            headers: {
              Authorization: `Bearer ${token}`,
              'Content-Type': 'application/json',
              Accept: 'application/json, text/event-stream',
            },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
          })
          const body = (await res.json()) as { result?: { tools: Array<{ name: string }> } }
          return [
            res.status,
            res.headers.get('www-authenticate'),
            body.result === undefined ? body : body.result.tools.map((tool) => tool.name),
          ]
        }
        // A read-only token: tools/list shows the read tool only.
        const listed = [200, null, ['list_notes']]
        const before = await mint()
        expect(await list(before)).to.deep.equal(listed)
        const rotated = await runToEnd(
          process.execPath,
          [cli, 'rotate', '--server', mock.url, '--webhook', webhook, '--emergency'],
          cleanEnv(),
          10_000,
        )
        expect(rotated.code).to.equal(0, rotated.stderr)
        expect(rotated.stdout).to.match(
          /^Delivered: webhook \S+ answered 200 \{"received":true\}$/m,
        )
        expect(await list(await mint())).to.deep.equal(listed)
        // The emergency rotation withdrew the key the first token was signed with.
        expect(await list(before)).to.deep.equal([
          401,
          'Bearer realm="mcp", error="invalid_token", error_description="Signing key not found", ' +
            `resource_metadata="${metadata}"`,
          {
            jsonrpc: '2.0',
            id: null,
            error: {
              code: -32001,
              message: 'Signing key not found',
              data: { reason: 'kid_missing_or_unknown' },
            },
          },
        ])
      } finally {
        await stop(example.child)
      }
    } finally {
      await stop(serve.child)
    }
  })

  describe('example configuration from the environment', () => {
    it('a real issuer from org slug + environment (no fetch at startup)', async () => {
      const { child, stdout } = await runUntil(
        process.execPath,
        [SERVER],
        cleanEnv({
          PORT: '0',
          AGENTPRESS_ORG_SLUG: 'acme-org',
          AGENTPRESS_ENVIRONMENT: 'staging',
          AGENTPRESS_EXT_PROVIDER: 'example',
          MCP_AUDIENCE: 'https://mcp.example.com/mcp',
          // A real issuer: the boot warm-up would leave this machine; tests stay on loopback.
          JWKS_WARM_UP: 'false',
        }),
        'Press Ctrl+C to stop.',
        20_000,
      )
      try {
        expect(stdout).to.match(
          /^Trusting https:\/\/stg-api\.agent\.press\/orgs\/acme-org \(ext_provider example\)$/m,
        )
        expect(stdout).to.match(
          /^MCP server: +http:\/\/127\.0\.0\.1:\d+\/mcp {2}\(audience https:\/\/mcp\.example\.com\/mcp\)$/m,
        )
        expect(stdout).to.include(
          'Metadata:        https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
        )
        expect(stdout).to.include(
          'Key rotation:    no AGENTPRESS_WEBHOOK_SECRET: webhook not mounted',
        )
      } finally {
        await stop(child)
      }
    })

    const errors: ReadonlyArray<[Record<string, string>, string]> = [
      [
        { AGENTPRESS_ORG_SLUG: 'acme-org' },
        'AGENTPRESS_EXT_PROVIDER is required with a real issuer (your partner name)',
      ],
      [
        {
          AGENTPRESS_ORG_SLUG: 'acme-org',
          AGENTPRESS_ISSUER: 'https://api.agent.press/orgs/acme-org',
        },
        'set AGENTPRESS_ISSUER or AGENTPRESS_ORG_SLUG, not both',
      ],
      [
        {
          AGENTPRESS_ORG_SLUG: 'acme-org',
          AGENTPRESS_EXT_PROVIDER: 'x',
          AGENTPRESS_ENVIRONMENT: 'prod',
        },
        'AGENTPRESS_ENVIRONMENT must be "production" or "staging"',
      ],
      [{ AGENTPRESS_ENVIRONMENT: 'staging' }, 'AGENTPRESS_ENVIRONMENT needs AGENTPRESS_ORG_SLUG'],
      [{ PORT: 'eighty' }, 'PORT must be a port number, got "eighty"'],
    ]
    for (const [env, message] of errors) {
      it(`${Object.keys(env).join(' + ')} → exit 2: ${message}`, async () => {
        const { code, stdout, stderr } = await runToEnd(
          process.execPath,
          [SERVER],
          cleanEnv(env),
          20_000,
        )
        expect(code).to.equal(2)
        expect(stdout).to.equal('')
        expect(stderr).to.equal(`Configuration error: ${message}\n`)
      })
    }
  })
})
