// The example MCP server as fleet instances in their own processes (the multi-process tests):
// start one against a mock AgentPress and a Redis URL, call its /mcp, webhook and readiness, stop
// it by its process id.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { MockAgentPress } from 'passport-agentpress-partner/testing'

export const SERVER = fileURLToPath(
  new URL('../../examples/express-mcp-server/server.mjs', import.meta.url),
)
// The one URL the load balancer serves: every instance expects this audience.
export const AUDIENCE = 'http://127.0.0.1:9/mcp'
export const METADATA = 'http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp'
const TOOLS_LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} })

export interface Example {
  readonly child: ChildProcess
  readonly base: string
  stdout: string
}

export function startExample(
  mock: MockAgentPress,
  redisUrl: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<Example> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    PORT: '0',
    AGENTPRESS_ISSUER: mock.issuer,
    AGENTPRESS_EXT_PROVIDER: mock.extProvider,
    AGENTPRESS_WEBHOOK_SECRET: mock.webhookSecret,
    MCP_AUDIENCE: AUDIENCE,
    REDIS_URL: redisUrl,
    ...extraEnv,
  }
  const child = spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`example did not start within 15 s\n${stdout}\n${stderr}`))
    }, 15_000)
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk))
    const onData = (chunk: Buffer): void => {
      stdout += chunk
      const match = /MCP server:\s+(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(stdout)
      if (match && stdout.includes('Press Ctrl+C to stop.')) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        const example: Example = { child, base: match[1]!, stdout }
        child.stdout!.on('data', (more: Buffer) => (example.stdout += more))
        resolve(example)
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`example exited with ${code}\n${stdout}\n${stderr}`))
    })
  })
}

export function stopExample(example: Example): Promise<void> {
  const { child } = example
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

export interface Answer {
  status: number
  challenge: string | null
  retryAfter: string | null
  body: string
}

export async function mcp(example: Example, token: string): Promise<Answer> {
  const res = await fetch(`${example.base}/mcp`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    },
    body: TOOLS_LIST,
  })
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    retryAfter: res.headers.get('retry-after'),
    body: await res.text(),
  }
}

export const refusal = (reason: string, description: string): Answer => ({
  status: 401,
  challenge: `Bearer realm="mcp", error="invalid_token", error_description="${description}", resource_metadata="${METADATA}"`,
  retryAfter: null,
  body: JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: { code: -32001, message: description, data: { reason } },
  }),
})
export const REPLAYED = refusal('token_replayed', 'Token already used')
export const REVOKED = refusal('kid_missing_or_unknown', 'Signing key not found')
export const REPLAY_UNAVAILABLE: Answer = {
  status: 503,
  challenge: null,
  retryAfter: '5',
  body: JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: {
      code: -32001,
      message: 'Replay check unavailable',
      data: { reason: 'replay_unavailable' },
    },
  }),
}

export async function webhook(
  example: Example,
  signed: { body: string; headers: Record<string, string> },
): Promise<{ status: number; retryAfter: string | null; body: string }> {
  const res = await fetch(`${example.base}/webhooks/agentpress/key-rotation`, {
    method: 'POST',
    headers: signed.headers,
    body: signed.body,
  })
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() }
}

export async function readiness(
  example: Example,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${example.base}/readyz/fleet`)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}
