// The fleet recipe of docs/fleet.md run as written (on free ports): one `agentpress-mock serve`,
// three example instances on one real redis-server, an emergency rotation delivered to instance 1,
// the retired kid refused everywhere. And the example refuses to join a fleet with its own private
// mock. Bounded: every process group is stopped by its id.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import { startRedis, type RedisServer } from '../support/redis.js'
import { closedPort } from '../support/servers.js'
import { eventually } from '../support/fleet.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const DOC = readFileSync(new URL('../../docs/fleet.md', import.meta.url), 'utf8')
const TOOLS_LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} })

/** The recipe's commands: the sh block between the fleet-recipe markers. */
function recipe(): string[] {
  const block = /<!-- fleet-recipe:start -->\n```sh\n([\s\S]*?)```\n<!-- fleet-recipe:end -->/.exec(
    DOC,
  )
  if (block === null) throw new Error('docs/fleet.md has no fleet-recipe block')
  return block[1]!.trim().split('\n')
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of Object.keys(env)) {
    if (/^(AGENTPRESS_|MCP_AUDIENCE$|PORT$|HOST$|REDIS_URL$)/.test(name)) delete env[name]
  }
  return env
}

interface Running {
  readonly child: ChildProcess
  output: string
}

function shell(command: string, env: NodeJS.ProcessEnv = cleanEnv()): Running {
  // Own process group, so the whole tree (sh → npm → node) can be stopped by its id.
  const child = spawn('sh', ['-c', command], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const running: Running = { child, output: '' }
  child.stdout!.on('data', (chunk: Buffer) => (running.output += chunk))
  child.stderr!.on('data', (chunk: Buffer) => (running.output += chunk))
  return running
}

function stop(running: Running): Promise<void> {
  const { child } = running
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => kill(child, 'SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    kill(child, 'SIGTERM')
  })
}

function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal)
  } catch {
    // already gone
  }
}

/** Runs a command to its end (bounded); resolves with its exit code and output. */
async function run(command: string): Promise<{ code: number | null; output: string }> {
  const running = shell(command)
  const timer = setTimeout(() => kill(running.child, 'SIGKILL'), 20_000)
  const code = await new Promise<number | null>((resolve) => running.child.once('exit', resolve))
  clearTimeout(timer)
  return { code, output: running.output }
}

async function mcp(port: number, token: string): Promise<{ status: number; challenge: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    },
    body: TOOLS_LIST,
  })
  await res.arrayBuffer()
  return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '' }
}

describe('docs/fleet.md: the fleet recipe as written (processes, real redis-server)', function () {
  this.timeout(90_000)
  let redis: RedisServer
  const started: Running[] = []

  before(async () => {
    redis = await startRedis()
  })
  after(async () => {
    await Promise.all(started.map(stop))
    await redis.stop()
  })

  it('four commands: three instances, one Redis, an emergency rotation at instance 1, the retired kid refused everywhere', async () => {
    const commands = recipe()
    expect(commands).to.have.length.at.most(4)
    const mockPort = await closedPort()
    const ports = [await closedPort(), await closedPort(), await closedPort()]
    const onFreePorts = (line: string): string =>
      line
        .replaceAll('127.0.0.1:4010', `127.0.0.1:${mockPort}`)
        .replaceAll('--port 4010', `--port ${mockPort}`)
        .replaceAll('redis://127.0.0.1:6379', redis.url)
        .replace(/PORT=300([1-3])/, (_, n: string) => `PORT=${ports[Number(n) - 1]}`)
        .replace(/ &$/, '')
    for (const line of commands) {
      const running = shell(onFreePorts(line))
      started.push(running)
      await eventually(() => {
        if (running.child.exitCode !== null) throw new Error(`exited:\n${running.output}`)
        return running.output.includes('Press Ctrl+C to stop.')
      }, 20_000)
    }
    const mockUrl = `http://127.0.0.1:${mockPort}`
    const token = async (): Promise<string> => {
      const minted = await run(`npm run -s mock -- token --server ${mockUrl}`)
      expect(minted.code, minted.output).to.equal(0)
      return minted.output.trim()
    }
    // One fleet: a token accepted by instance 1 is a replay at instances 2 and 3.
    const once = await token()
    expect((await mcp(ports[0]!, once)).status).to.equal(200)
    for (const port of ports.slice(1)) {
      expect((await mcp(port, once)).challenge).to.include('Token already used')
    }
    const old = [await token(), await token(), await token()]
    const rotated = await run(
      `npm run -s mock -- rotate --server ${mockUrl} --emergency --webhook http://127.0.0.1:${ports[0]}/webhooks/agentpress/key-rotation`,
    )
    expect(rotated.code, rotated.output).to.equal(0)
    for (const [i, port] of ports.entries()) {
      await eventually(
        async () => (await mcp(port, old[i]!)).challenge.includes('Signing key not found'),
        2000,
      )
      expect((await mcp(port, await token())).status).to.equal(200)
    }
    for (const port of ports.slice(1)) {
      const res = await fetch(`http://127.0.0.1:${port}/readyz/fleet`)
      const body = (await res.json()) as Record<string, unknown>
      expect(res.status).to.equal(200)
      expect(body).to.include({ state: 'ready', problem: null, relaysApplied: 1 })
    }
  })

  it('REDIS_URL with the embedded mock: the example refuses to start and says why', async () => {
    const port = await closedPort()
    const result = await run(
      `REDIS_URL=${redis.url} PORT=${port} node examples/express-mcp-server/server.mjs`,
    )
    expect(result.code).to.equal(2)
    expect(result.output).to.include(
      "Configuration error: REDIS_URL with the embedded mock AgentPress: every instance would run its own mock (its own issuer, keys and webhook secret), so the instances could not trust each other's tokens or relays.",
    )
  })
})
