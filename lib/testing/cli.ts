#!/usr/bin/env node
/**
 * `agentpress-mock`: a mock AgentPress for local work against a running MCP server.
 *
 * How `token` and `rotate` reach the keys of a running `serve`: they don't. The private keys never
 * leave the `serve` process, a `createMockAgentPress` on the chosen port; it answers the control
 * API of `createMockControl` (`/_mock/…`) on the same loopback port as its JWKS, and the other
 * commands are its clients. The same API is what the example MCP server mounts beside its embedded
 * mock when asked to (`AGENTPRESS_MOCK_CONTROL=1`), so `token`/`rotate` work against `npm start`
 * too. See `testing/mock-control.ts` for why it is safe to leave on a loopback port.
 *
 * Exit codes: 0 success; 1 the command ran and failed (server unreachable, webhook refused);
 * 2 usage error.
 */
import { readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { join } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'

import type { KeyRotationEvent } from '../core/key-rotation/event.js'
import { isLoopbackHost } from '../core/validate.js'
import { DEFAULT_MAX_TOKEN_LIFETIME_SEC } from '../core/verifier/options.js'
import { sendJson } from '../http/connect.js'
import {
  startMockAgentPress,
  type MockAgentPress,
  type MockAgentPressOptions,
} from './mock-agentpress.js'
import { createMockControl, MOCK_CONTROL_PATH, type MockControlHandler } from './mock-control.js'
import type { WebhookDeliveryResult } from './webhook.js'
import { runCheck } from './check/check.js'
import { formatJson, formatTable } from './check/report.js'

const NAME = 'agentpress-mock'
const DEFAULT_PORT = 4010

const USAGE = `Usage: ${NAME} <command> [options]

A mock AgentPress (Ed25519 JWKS, token minter, key rotation) for local development.
It listens on 127.0.0.1 only.

Commands:
  serve   Start a mock AgentPress and keep it running.
          --port N              port on 127.0.0.1 (default ${DEFAULT_PORT}; 0 picks a free one)
          --org SLUG            org slug in the issuer URL (default mock-org)
          --audience URL        aud of minted tokens: your MCP server's URL
                                (default http://127.0.0.1:3000/mcp)
          --ext-provider NAME   ext_provider of minted tokens (default example-partner)
          --webhook-secret S    secret rotation webhooks are signed with (default: random whsec_…)
          --sub ID              default sub of minted tokens (default user-123)
          --scope "A B"         default scope of minted tokens (default "mcp:read mcp:write")
          --json                print the configuration as one JSON line instead of text

  token   Mint a token from a running mock and print it (stdout: the token only).
          --server URL          the mock, e.g. http://127.0.0.1:${DEFAULT_PORT} (required)
          --sub ID              sub claim
          --scope "A B"         scope claim (space-separated)
          --ttl SECONDS         lifetime (default 60, at most ${DEFAULT_MAX_TOKEN_LIFETIME_SEC}: the verifier's cap);
                                --ttl=-120 mints an expired token
          --audience URL        aud claim
          --claim NAME=VALUE    any claim; VALUE is JSON when it parses, else a string (repeatable)
          --omit NAME           leave a claim out, e.g. --omit jti (repeatable)
          --json                print {"token":…,"claims":…} instead of the bare token

  rotate  Rotate the mock's signing key and deliver the signed webhook.
          --server URL          the mock (required)
          --webhook URL         your key-rotation receiver; without it the rotation is only published
          --emergency           withdraw the retired key at once (default: overlap window)

  check   Probe a running MCP server from outside: discovery, hostile tokens, Origin, webhook.
          ${NAME} check <url of the MCP endpoint> [options]
          --webhook URL         also probe the key-rotation webhook route
          --webhook-secret S    a staging/dev webhook secret: bad bodies are then validly signed
          --issuer URL          a mock AgentPress the server trusts (\`serve\`, or npm start's own
                                URL): also the positive path (valid token, missing scope, replay,
                                emergency rotation; the rotation changes the mock's keys)
          --tool NAME           the tool the missing-scope probe calls (default: the first listed)
          --ext-provider NAME   ext_provider of crafted tokens when there is no --issuer
          --timeout MS          deadline of each request (default 8000)
          --json                print the report as JSON
          Exit status 0 when no probe failed, 1 when one did.

Examples:
  ${NAME} serve --port ${DEFAULT_PORT} --audience http://127.0.0.1:3000/mcp
  TOKEN=$(${NAME} token --server http://127.0.0.1:${DEFAULT_PORT} --sub alice --scope mcp:read)
  ${NAME} rotate --server http://127.0.0.1:${DEFAULT_PORT} \\
    --webhook http://127.0.0.1:3000/webhooks/agentpress/key-rotation
  ${NAME} check https://mcp.example.com/mcp --webhook https://mcp.example.com/webhooks/agentpress/key-rotation

Exit status: 0 success, 1 failure, 2 usage error.
`

/** A mistake in the command line: printed with a hint, exit 2. */
class UsageError extends Error {}
/** The command ran and failed: printed, exit 1. */
class CommandError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>

function parse(args: string[], options: ParseArgsConfig['options']): Values {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

function str(values: Values, name: string): string | undefined {
  const value = values[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0)
    throw new UsageError(`--${name} needs a value`)
  return value
}

function int(values: Values, name: string, min: number, max: number): number | undefined {
  const text = str(values, name)
  if (text === undefined) return undefined
  if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(
      `--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
    )
  }
  return Number(text)
}

function httpUrl(value: string, name: string, loopbackOnly: boolean): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`--${name} must be an absolute URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--${name} must be an http: or https: URL`)
  }
  if (loopbackOnly && !isLoopbackHost(url.hostname)) {
    throw new UsageError(`--${name} must be a loopback URL (the mock listens on 127.0.0.1 only)`)
  }
  return url
}

// ---------------------------------------------------------------------------------------------
// serve

type ServeConfig = Pick<
  MockAgentPress,
  'url' | 'issuer' | 'jwksUrl' | 'audience' | 'extProvider' | 'webhookSecret' | 'currentKid'
>

/**
 * The `serve` process's mock: `createMockAgentPress` on the chosen port, serving its JWKS (GET and
 * HEAD only) at the issuer it announces, and the control API of `createMockControl` on the same
 * port; any other path is 404 `{"error":"not found"}`.
 */
async function startServe(options: MockAgentPressOptions): Promise<MockAgentPress> {
  let control: MockControlHandler | undefined
  const notFound = (res: ServerResponse): void => sendJson(res, 404, '{"error":"not found"}')
  const mock = await startMockAgentPress(options, (req, res, _path, jwks) => {
    if (!jwks) {
      control!(req, res, () => notFound(res))
      return true
    }
    if (req.method === 'GET' || req.method === 'HEAD') return false
    res.statusCode = 405
    res.setHeader('Allow', 'GET, HEAD')
    res.end()
    return true
  })
  control = createMockControl(mock)
  return mock
}

async function serve(args: string[]): Promise<void> {
  const values = parse(args, {
    port: { type: 'string' },
    org: { type: 'string' },
    audience: { type: 'string' },
    'ext-provider': { type: 'string' },
    'webhook-secret': { type: 'string' },
    sub: { type: 'string' },
    scope: { type: 'string' },
    json: { type: 'boolean' },
  })
  const port = int(values, 'port', 0, 65535) ?? DEFAULT_PORT
  const orgSlug = str(values, 'org') ?? 'mock-org'
  if (!/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(orgSlug)) {
    throw new UsageError('--org must be lower-case letters, digits and hyphens')
  }
  const audience = str(values, 'audience')
  if (audience !== undefined) httpUrl(audience, 'audience', false)
  const webhookSecret = str(values, 'webhook-secret')
  if (
    webhookSecret !== undefined &&
    (webhookSecret.length < 16 || webhookSecret.trim() !== webhookSecret)
  ) {
    throw new UsageError(
      '--webhook-secret must be at least 16 characters, with no leading or trailing spaces',
    )
  }

  let mock: MockAgentPress
  try {
    mock = await startServe({
      port,
      orgSlug,
      ...(audience === undefined ? {} : { audience }),
      ...(values['ext-provider'] === undefined
        ? {}
        : { extProvider: str(values, 'ext-provider')! }),
      ...(webhookSecret === undefined ? {} : { webhookSecret }),
      ...(values.sub === undefined ? {} : { sub: str(values, 'sub')! }),
      ...(values.scope === undefined ? {} : { scope: str(values, 'scope')! }),
    })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    // Only the listen can fail with a system error code; anything else is not a listen failure.
    if (typeof code !== 'string') throw err
    throw new CommandError(
      code === 'EADDRINUSE'
        ? `port ${port} is already in use (try --port 0)`
        : `cannot listen: ${(err as Error).message}`,
    )
  }
  const config: ServeConfig = Object.freeze({
    url: mock.url,
    issuer: mock.issuer,
    jwksUrl: mock.jwksUrl,
    audience: mock.audience,
    extProvider: mock.extProvider,
    webhookSecret: mock.webhookSecret,
    currentKid: mock.currentKid,
  })

  // Handlers first, output second: a parent that reads the banner may signal at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      void mock.close().then(resolve, resolve)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(config)}\n`)
  } else {
    const webhook = 'http://127.0.0.1:3000/webhooks/agentpress/key-rotation'
    process.stdout.write(
      [
        `Mock AgentPress listening on ${config.url} (127.0.0.1 only)`,
        `  issuer:          ${config.issuer}`,
        `  JWKS:            ${config.jwksUrl}`,
        `  audience (aud):  ${config.audience}`,
        `  ext_provider:    ${config.extProvider}`,
        `  webhook secret:  ${config.webhookSecret}`,
        `  current kid:     ${config.currentKid}`,
        '',
        'Point the example MCP server (or yours, with the same variables) at it:',
        `  AGENTPRESS_ISSUER=${config.issuer} MCP_AUDIENCE=${config.audience} \\`,
        `  AGENTPRESS_EXT_PROVIDER=${config.extProvider} AGENTPRESS_WEBHOOK_SECRET=${config.webhookSecret} npm start`,
        'Several instances as one fleet: the same line plus REDIS_URL=redis://127.0.0.1:6379 and a',
        'PORT of its own for each instance (docs/fleet.md).',
        '',
        'Mint a token:',
        `  ${NAME} token --server ${config.url} --sub alice --scope "mcp:read mcp:write"`,
        'Rotate the signing key and tell your server:',
        `  ${NAME} rotate --server ${config.url} --webhook ${webhook}`,
        '',
        'Press Ctrl+C to stop.',
        '',
      ].join('\n'),
    )
  }

  await stopped
}

// ---------------------------------------------------------------------------------------------
// token, rotate: clients of a running `serve`

async function callControl(
  server: URL,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const target = new URL(`${MOCK_CONTROL_PATH}/${path}`, server)
  let response: Response
  try {
    response = await fetch(target, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(20_000),
    })
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code
    throw new CommandError(
      `cannot reach the mock at ${server.origin}${cause ? ` (${cause})` : ''}: is \`${NAME} serve\` running?`,
    )
  }
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  if (!response.ok || parsed === null || typeof parsed !== 'object') {
    const reason = (parsed as { error?: unknown } | undefined)?.error
    throw new CommandError(
      `${server.origin} answered ${response.status}${typeof reason === 'string' ? `: ${reason}` : ''}` +
        (response.status === 404
          ? ` (no control API there: is it \`${NAME} serve\`? The example server serves it only with AGENTPRESS_MOCK_CONTROL=1)`
          : ''),
    )
  }
  return parsed as Record<string, unknown>
}

function parseClaim(text: string): [string, unknown] {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new UsageError(`--claim must be NAME=VALUE, got ${JSON.stringify(text)}`)
  const raw = text.slice(eq + 1)
  let value: unknown = raw
  try {
    value = JSON.parse(raw)
  } catch {
    // Not JSON: the string itself.
  }
  return [text.slice(0, eq), value]
}

async function token(args: string[]): Promise<void> {
  const values = parse(args, {
    server: { type: 'string' },
    sub: { type: 'string' },
    scope: { type: 'string' },
    ttl: { type: 'string' },
    audience: { type: 'string' },
    claim: { type: 'string', multiple: true },
    omit: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  })
  const serverText = str(values, 'server')
  if (serverText === undefined) throw new UsageError('token: --server URL is required')
  const server = httpUrl(serverText, 'server', true)
  const body: Record<string, unknown> = {}
  const sub = str(values, 'sub')
  if (sub !== undefined) body.sub = sub
  // An explicit empty scope is allowed: it mints a token the verifier refuses (missing_claim).
  if (typeof values.scope === 'string') body.scope = values.scope
  const ttl = int(values, 'ttl', -86_400, 86_400)
  if (ttl !== undefined && ttl > DEFAULT_MAX_TOKEN_LIFETIME_SEC) {
    throw new UsageError(
      `--ttl ${ttl} is above the verifier's token lifetime cap of ${DEFAULT_MAX_TOKEN_LIFETIME_SEC} seconds ` +
        `(maxTokenLifetimeSec): such a token is refused (missing_claim); use --ttl ${DEFAULT_MAX_TOKEN_LIFETIME_SEC} or less`,
    )
  }
  if (ttl !== undefined) body.ttlSec = ttl
  const audience = str(values, 'audience')
  if (audience !== undefined) body.audience = audience
  const claims = Object.fromEntries(((values.claim as string[] | undefined) ?? []).map(parseClaim))
  if (Object.keys(claims).length > 0) body.claims = claims
  const omit = (values.omit as string[] | undefined) ?? []
  if (omit.length > 0) body.omit = omit

  const answer = await callControl(server, 'token', body)
  process.stdout.write(
    values.json === true ? `${JSON.stringify(answer)}\n` : `${String(answer.token)}\n`,
  )
}

async function rotate(args: string[]): Promise<void> {
  const values = parse(args, {
    server: { type: 'string' },
    webhook: { type: 'string' },
    emergency: { type: 'boolean' },
  })
  const serverText = str(values, 'server')
  if (serverText === undefined) throw new UsageError('rotate: --server URL is required')
  const server = httpUrl(serverText, 'server', true)
  const webhook = str(values, 'webhook')
  if (webhook !== undefined) httpUrl(webhook, 'webhook', false)
  const answer = await callControl(server, 'rotate', {
    emergency: values.emergency === true,
    ...(webhook === undefined ? {} : { webhookUrl: webhook }),
  })
  const event = answer.event as KeyRotationEvent
  process.stdout.write(
    `Rotated${event.emergency ? ' (emergency: retired key withdrawn)' : ''}: ${event.retiredKid} → ${event.newCurrentKid}\n` +
      `Event: ${JSON.stringify(event)}\n`,
  )
  if (webhook === undefined) {
    process.stdout.write(
      'No --webhook given: servers will pick the new key up on their next unknown-kid refetch.\n',
    )
    return
  }
  const delivery = answer.delivery as
    (WebhookDeliveryResult & { error?: undefined }) | { error: string }
  if (delivery.error !== undefined)
    throw new CommandError(`webhook delivery to ${webhook} failed: ${delivery.error}`)
  const result = delivery as WebhookDeliveryResult
  const summary = `webhook ${webhook} answered ${result.status} ${JSON.stringify(result.body)}`
  if (result.status < 200 || result.status > 299) throw new CommandError(summary)
  process.stdout.write(`Delivered: ${summary}\n`)
}

// ---------------------------------------------------------------------------------------------
// check: probes a running server (lib/testing/check/)

async function check(args: string[]): Promise<number> {
  let parsed: { values: Values; positionals: string[] }
  try {
    parsed = parseArgs({
      args,
      options: {
        webhook: { type: 'string' },
        'webhook-secret': { type: 'string' },
        issuer: { type: 'string' },
        tool: { type: 'string' },
        'ext-provider': { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: true,
    }) as { values: Values; positionals: string[] }
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  if (positionals.length !== 1) {
    throw new UsageError('check: give exactly one URL, the MCP endpoint (e.g. https://host/mcp)')
  }
  const webhook = str(values, 'webhook')
  const issuer = str(values, 'issuer')
  const tool = str(values, 'tool')
  const extProvider = str(values, 'ext-provider')
  const webhookSecret = str(values, 'webhook-secret')
  const report = await runCheck({
    url: httpUrl(positionals[0]!, 'url', false),
    ...(webhook === undefined ? {} : { webhook: httpUrl(webhook, 'webhook', false) }),
    ...(webhookSecret === undefined ? {} : { webhookSecret }),
    // The mock's control API answers loopback peers only.
    ...(issuer === undefined ? {} : { issuer: httpUrl(issuer, 'issuer', true) }),
    ...(tool === undefined ? {} : { tool }),
    ...(extProvider === undefined ? {} : { extProvider }),
    timeoutMs: int(values, 'timeout', 100, 60_000) ?? 8000,
  })
  process.stdout.write(values.json === true ? formatJson(report) : formatTable(report))
  return report.summary.fail === 0 ? 0 : 1
}

// ---------------------------------------------------------------------------------------------

function version(): string {
  // dist/testing/cli.js is CommonJS (no import.meta); __dirname is dist/testing/.
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string
  }
  return pkg.version
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    // `agentpress-mock <command> --help` is a request for help, not a usage error.
    if (command !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
      process.stdout.write(USAGE)
      return 0
    }
    switch (command) {
      case 'serve':
        await serve(rest)
        return 0
      case 'token':
        await token(rest)
        return 0
      case 'rotate':
        await rotate(rest)
        return 0
      case 'check':
        return await check(rest)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process[command === undefined ? 'stderr' : 'stdout'].write(USAGE)
        return command === undefined ? 2 : 0
      case '--version':
      case '-v':
        process.stdout.write(`${version()}\n`)
        return 0
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${NAME}: ${err.message}\nRun '${NAME} --help' for usage.\n`)
      return 2
    }
    if (err instanceof CommandError) {
      process.stderr.write(`${NAME}: ${err.message}\n`)
      return 1
    }
    process.stderr.write(`${NAME}: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`)
    return 1
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
