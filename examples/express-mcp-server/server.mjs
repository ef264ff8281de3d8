/**
 * An MCP server (official SDK, Streamable HTTP, stateless) protected by AgentPress partner tokens.
 *
 *   npm start                       # embedded mock AgentPress, nothing else needed
 *   AGENTPRESS_ORG_SLUG=acme-org AGENTPRESS_EXT_PROVIDER=example \
 *   MCP_AUDIENCE=https://mcp.example.com/mcp AGENTPRESS_WEBHOOK_SECRET=whsec_… npm start
 *
 * The order of the pipeline matters:
 *   1. the key-rotation router, before any body parser (it verifies the HMAC over the raw bytes);
 *   2. the RFC 9728 metadata document (public);
 *   3. POST /mcp: authenticate (401/403/503 as JSON-RPC bodies) → parse JSON → per-tool scopes
 *      (the library's `requireToolScopes`: 403 insufficient_scope naming every scope the message
 *      or batch needs) → the MCP transport (Host and Origin checked against this server's own
 *      URL and audience: a foreign Origin is 403), which hands `req.auth` to tool handlers.
 *      `tools/list` lists only the tools the token's scopes allow (`limitToolsToScopes`).
 */
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'

import express from 'express'
import passportModule from 'passport'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import {
  agentPressErrorHandler,
  AgentPressPartnerStrategy,
  createKeyRotationRouter,
  MemoryReplayStore,
  protectedResourceMetadata,
} from 'passport-agentpress-partner'
import { readinessHandler } from 'passport-agentpress-partner/diagnostics'
import { requireToolScopes } from 'passport-agentpress-partner/mcp'
import { createMockAgentPress, createMockControl } from 'passport-agentpress-partner/testing'

import { ConfigError, configFromEnv, isLoopbackListener } from './config.mjs'
import { logThroughChannels } from './logging.mjs'
import { refuseHostileTarget } from '../request-target.mjs'
import { createMcpServer, TOOL_SCOPES } from './tools.mjs'
import { UserStore } from './users.mjs'

export const MCP_PATH = '/mcp'
export const WEBHOOK_PATH = '/webhooks/agentpress/key-rotation'
export const READY_PATH = '/readyz'
export const FLEET_PATH = '/readyz/fleet'
export const SCOPES = ['mcp:read', 'mcp:write']

/**
 * Starts the example server. Every option is optional; with no `agentpress` it runs an embedded
 * mock AgentPress (returned as `mock`). The mock's control API (`/_mock/token`, `/_mock/rotate`,
 * which `agentpress-mock token|rotate --server <url>` call) mints tokens this server accepts, so it
 * is mounted only with `mockControl: true` (`AGENTPRESS_MOCK_CONTROL=1`), and then answers loopback
 * peers without proxy forwarding headers only.
 *
 * @param {import('./server.d.mts').StartServerOptions} [options]
 * @returns {Promise<import('./server.d.mts').RunningServer>}
 */
export async function startServer(options = {}) {
  const {
    port = 3000,
    host = '127.0.0.1',
    autoProvision = true,
    warmUp = true,
    onToolCall,
    log = console.log,
    redisUrl,
    replay = redisUrl === undefined ? 'off' : 'on',
    mockControl = false,
  } = options

  if (typeof mockControl !== 'boolean') {
    throw new ConfigError(`mockControl must be true or false, got ${String(mockControl)}`)
  }
  if (mockControl && options.agentpress !== undefined) {
    throw new ConfigError(
      'mockControl (AGENTPRESS_MOCK_CONTROL) serves the embedded mock AgentPress, and there is ' +
        'none with a configured issuer: unset it, or unset AGENTPRESS_ISSUER / AGENTPRESS_ORG_SLUG',
    )
  }

  if (options.agentpress === undefined && redisUrl !== undefined) {
    throw new ConfigError(
      'redisUrl with the embedded mock AgentPress: each instance would trust only its own mock ' +
        "(its own issuer, keys and webhook secret) and refuse the others' tokens and relays; " +
        'pass agentpress (one shared issuer, e.g. `agentpress-mock serve`) to form a fleet',
    )
  }
  if (options.agentpress === undefined && !isLoopbackListener(host)) {
    throw new ConfigError(
      `host ${host}: the embedded mock AgentPress's control API mints tokens this server accepts, ` +
        'so it is served on a loopback host only (127.0.0.1, localhost or ::1); pass agentpress ' +
        'to trust a real issuer and listen elsewhere',
    )
  }
  // Listen first: with port 0 the audience (this server's URL) is known only afterwards.
  let app
  const server = createServer((req, res) => {
    // Nothing a client writes as request target may reach a router that could throw on it.
    if (refuseHostileTarget(req, res)) return
    if (app !== undefined) return app(req, res)
    res.statusCode = 503
    res.end()
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${server.address().port}`
  const audience = options.audience ?? `${url.replace('0.0.0.0', '127.0.0.1')}${MCP_PATH}`

  let mock
  let fleet
  let stopLogging = () => {}
  let trust = options.agentpress
  let webhookSecret = trust?.webhookSecret ?? options.webhookSecret
  try {
    if (trust === undefined) {
      mock = await createMockAgentPress({
        audience,
        ...(options.extProvider === undefined ? {} : { extProvider: options.extProvider }),
        ...(webhookSecret === undefined ? {} : { webhookSecret }),
        sub: 'alice',
      })
      trust = { issuer: mock.issuer, jwksUrl: mock.jwksUrl, extProvider: mock.extProvider }
      webhookSecret = mock.webhookSecret
    }

    // Several instances: rotations, revocations and used tokens shared through Redis.
    if (redisUrl !== undefined) fleet = await startFleet(redisUrl, log)
    const replayStore = replay === 'off' ? undefined : (fleet ?? new MemoryReplayStore())
    const users = new UserStore({ autoProvision })
    const prm = protectedResourceMetadata({
      resource: audience,
      authorizationServers: [trust.issuer],
      scopesSupported: SCOPES,
      resourceName: 'AgentPress partner MCP example',
    })
    const strategy = new AgentPressPartnerStrategy(
      {
        partnerMcp: {
          issuer: trust.issuer,
          audience,
          expectedExtProvider: trust.extProvider,
          ...(trust.jwksUrl === undefined ? {} : { jwksUrl: trust.jwksUrl }),
          ...(replayStore === undefined ? {} : { replay: replayStore }),
        },
        realm: 'mcp',
        resourceMetadataUrl: prm.url,
      },
      // Users are AgentPress's (ext_provider, sub); null would answer 403 user_not_provisioned.
      async (claims) => users.resolve(claims),
    )
    // A private Passport instance: several servers in one process never share strategies.
    const passport = new passportModule.Passport()
    passport.use(strategy)

    const built = express()
    built.disable('x-powered-by')
    // 1. Before any body parser: the router reads and HMAC-checks the raw body itself.
    if (webhookSecret !== undefined) {
      built.use(
        WEBHOOK_PATH,
        // Rotations and refusals are logged from the diagnostics channels (logging.mjs).
        createKeyRotationRouter({
          webhookSecret,
          strategy,
          ...(fleet === undefined ? {} : { fleet }),
        }),
      )
    }
    // 2. RFC 9728 Protected Resource Metadata, at the URL every challenge advertises.
    built.use(prm)
    if (fleet !== undefined) {
      // Several instances: the fleet's state and counters; not ready until Redis is up and the
      // stored revocations are applied (then the keys decide, below).
      built.get(FLEET_PATH, (_req, res) => {
        res
          .status(fleet.state === 'ready' ? 200 : 503)
          .json({ state: fleet.state, problem: fleet.problem, ...fleet.stats })
      })
      built.get(READY_PATH, (_req, res, next) => {
        if (fleet.state === 'ready') return next()
        res
          .status(503)
          .set('Retry-After', '5')
          .json({ ready: false, fleet: fleet.state, problem: fleet.problem })
      })
    }
    // Readiness for a load balancer: 200 while every issuer's keys can answer (stale included).
    built.get(READY_PATH, readinessHandler(strategy))
    // Local development only, and only when asked for: mint tokens / rotate keys of the embedded
    // mock over loopback. Off, /_mock/… is a 404 like any path nothing is mounted on.
    if (mock !== undefined && mockControl) built.use(createMockControl(mock))
    // 3. The MCP endpoint. The transport's DNS-rebinding protection (Streamable HTTP: servers
    // MUST validate Origin) accepts only this server's own host and origin, and the audience's
    // when it is a public URL in front of it; a request without Origin (AgentPress calls
    // server-to-server) passes.
    const allowed = [new URL(url), new URL(audience)]
    // Bound to 127.0.0.1: `localhost` names the same server (browsers and curl use either).
    if (new URL(url).hostname === '127.0.0.1') {
      allowed.push(new URL(url.replace('127.0.0.1', 'localhost')))
    }
    const allowedHosts = [...new Set(allowed.map((u) => u.host))]
    const allowedOrigins = [...new Set(allowed.map((u) => u.origin))]
    const tools = requireToolScopes(TOOL_SCOPES)
    built.post(
      MCP_PATH,
      // failWithError: every refusal (and the tool gate's 403) reaches agentPressErrorHandler below,
      // which writes the JSON-RPC body MCP clients read.
      passport.authenticate('agentpress-partner', { session: false, failWithError: true }),
      express.json({ limit: '1mb' }),
      tools,
      async (req, res, next) => {
        // Stateless Streamable HTTP: a fresh server and transport per request, each request
        // authenticated by its own token; tools/list shows what this token may call.
        const mcp = createMcpServer({ onToolCall, tools, authInfo: req.auth })
        const transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: undefined,
          enableJsonResponse: true,
          enableDnsRebindingProtection: true,
          allowedHosts,
          allowedOrigins,
        })
        res.on('close', () => {
          void transport.close()
          void mcp.close()
        })
        try {
          await mcp.connect(transport)
          await transport.handleRequest(req, res, req.body)
        } catch (err) {
          next(err)
        }
      },
    )
    built.use(MCP_PATH, agentPressErrorHandler({ body: 'jsonrpc' }))
    // A body express.json() could not read is the client's mistake: a JSON-RPC error with the
    // parser's status, never the framework's HTML page (which prints the stack in development).
    built.use(MCP_PATH, (err, _req, res, next) => {
      const type = typeof err?.type === 'string' ? err.type : ''
      if (res.headersSent || !/^(entity|encoding|charset|request)\./.test(type)) return next(err)
      const parse = type === 'entity.parse.failed'
      res.status(Number.isInteger(err.status) ? err.status : 400).json({
        jsonrpc: '2.0',
        error: {
          code: parse ? -32700 : -32000,
          message: parse ? 'Parse error: Invalid JSON' : 'Unreadable request body',
        },
        id: null,
      })
    })
    // Stateless: no server-initiated SSE stream (GET) and no session to delete (DELETE).
    built.all(MCP_PATH, (_req, res) => {
      res
        .status(405)
        .set('Allow', 'POST')
        .json({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32000, message: 'Method not allowed' },
        })
    })
    // Stored revocations are applied before the first request is answered.
    await fleet?.start()
    // Fetch the keys before taking traffic; an outage is logged, never fatal (503 until it ends).
    stopLogging = logThroughChannels(log, { issuers: [trust.issuer] })
    if (mock !== undefined) log(mockControl ? MOCK_CONTROL_ON : MOCK_CONTROL_OFF)
    const warm = warmUp ? await strategy.warmUp() : { issuers: [] }
    for (const status of warm.issuers) {
      log(
        status.state === 'fresh'
          ? `signing keys ready for ${status.issuer} (${status.keyCount} key(s))`
          : `signing keys not reachable at boot for ${status.issuer}: ${status.lastFailureReason}`,
      )
    }
    app = built

    return {
      url,
      mcpUrl: `${url}${MCP_PATH}`,
      audience,
      issuer: trust.issuer,
      metadataUrl: prm.url,
      webhookUrl: webhookSecret === undefined ? undefined : `${url}${WEBHOOK_PATH}`,
      readyUrl: `${url}${READY_PATH}`,
      mock,
      users,
      strategy,
      fleet,
      async close() {
        stopLogging()
        server.closeAllConnections()
        await new Promise((resolve) => server.close(resolve))
        await fleet?.close()
        await mock?.close()
      },
    }
  } catch (err) {
    stopLogging()
    server.close()
    await fleet?.close()
    await mock?.close()
    throw err
  }
}

// One line each in the startup log: whether the embedded mock's control API is served, and why.
const MOCK_CONTROL_OFF =
  'mock control API off: /_mock/token and /_mock/rotate would mint tokens this server accepts ' +
  'for any loopback peer (a reverse proxy on this machine too), so they are never served by ' +
  'default; set AGENTPRESS_MOCK_CONTROL=1 (startServer({ mockControl: true })) to use ' +
  '`agentpress-mock token|rotate|check --issuer` against this server'
const MOCK_CONTROL_ON =
  'mock control API on (AGENTPRESS_MOCK_CONTROL=1): /_mock/token and /_mock/rotate mint tokens ' +
  'this server accepts, for loopback peers without proxy forwarding headers only'

// The fleet lives in a subpath whose peer dependency (`redis`) is optional: loaded only when used.
async function startFleet(redisUrl, log) {
  const { createRedisFleet, RedisFleetDamagedError } =
    await import('passport-agentpress-partner/redis')
  const fleet = createRedisFleet({
    url: redisUrl,
    // Why it is not ready, on the same line: damage of the shared data, or the connection error.
    onStateChange: (state) => {
      const problem = state === 'ready' || state === 'closed' ? null : fleet.problem
      log(`fleet: ${state}${problem === null ? '' : ` (${problem})`}`)
    },
    // Refused relays and records (wrong secret, another issuer, forged) get a line each; connection
    // errors are already in the state lines.
    onError: (error) => {
      if (error instanceof RedisFleetDamagedError || /^refused /.test(error.message)) {
        log(`fleet: ${error.message}`)
      }
    },
  })
  return fleet
}

/** What `npm start` prints. */
function banner(running, config) {
  const lines = []
  if (running.mock !== undefined) {
    const token = running.mock.signToken({ exp: Math.floor(Date.now() / 1000) + 600 })
    lines.push(
      'No AGENTPRESS_ISSUER or AGENTPRESS_ORG_SLUG set: started an embedded mock AgentPress.',
      `  issuer ${running.issuer}  (trusted by this server only)`,
      '',
      `MCP server:      ${running.mcpUrl}`,
      `Metadata:        ${running.metadataUrl}`,
      `Key rotation:    ${running.webhookUrl}`,
      `Readiness:       ${running.readyUrl}`,
      '',
      'Try it (the token is valid for 10 minutes; user "alice", scopes "mcp:read mcp:write"):',
      '',
      `  curl -s ${running.mcpUrl} \\`,
      `    -H 'Authorization: Bearer ${token}' \\`,
      `    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\`,
      `    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"hello"}}}'`,
      '',
    )
    if (config.mockControl) {
      lines.push(
        'Mint more tokens (choose sub, scope, ttl; see --help):',
        `  npm run -s mock -- token --server ${running.url} --sub bob --scope mcp:read`,
        `  curl -s -X POST ${running.url}/_mock/token -H 'Content-Type: application/json' -d '{"sub":"bob","scope":"mcp:read"}'`,
        'Rotate the signing key through the signed webhook:',
        `  npm run -s mock -- rotate --server ${running.url} --webhook ${running.webhookUrl}`,
      )
    } else {
      lines.push(
        'Mint more tokens or rotate the key from another shell: restart with',
        '  AGENTPRESS_MOCK_CONTROL=1 npm start',
        `then: npm run -s mock -- token --server ${running.url} --sub bob --scope mcp:read`,
      )
    }
  } else {
    lines.push(
      `Trusting ${running.issuer} (ext_provider ${config.agentpress.extProvider})`,
      `MCP server:      ${running.mcpUrl}  (audience ${running.audience})`,
      `Metadata:        ${running.metadataUrl}`,
      running.webhookUrl === undefined
        ? 'Key rotation:    no AGENTPRESS_WEBHOOK_SECRET: webhook not mounted (new keys still arrive through the unknown-kid refetch)'
        : `Key rotation:    ${running.webhookUrl}`,
      `Readiness:       ${running.readyUrl}`,
    )
  }
  lines.push('', 'Press Ctrl+C to stop.')
  return lines.join('\n')
}

async function main() {
  let config
  try {
    config = configFromEnv(process.env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    console.error(`Configuration error: ${err.message}`)
    process.exitCode = 2
    return
  }
  let running
  try {
    running = await startServer({
      port: config.port,
      host: config.host,
      warmUp: config.warmUp,
      ...(config.audience === undefined ? {} : { audience: config.audience }),
      ...(config.extProvider === undefined ? {} : { extProvider: config.extProvider }),
      ...(config.webhookSecret === undefined ? {} : { webhookSecret: config.webhookSecret }),
      ...(config.agentpress === undefined ? {} : { agentpress: config.agentpress }),
      ...(config.redisUrl === undefined ? {} : { redisUrl: config.redisUrl }),
      ...(config.replay === undefined ? {} : { replay: config.replay }),
      mockControl: config.mockControl,
    })
  } catch (err) {
    // A TypeError from the package is a configuration it refused (e.g. a secret or URL rule).
    if (err instanceof ConfigError || err instanceof TypeError) {
      console.error(`Configuration error: ${err.message}`)
      process.exitCode = 2
      return
    }
    const hint =
      err.code === 'EADDRINUSE'
        ? ` (port ${config.port} is in use: try PORT=0 or another port)`
        : ''
    console.error(`Cannot start: ${err.message}${hint}`)
    process.exitCode = 1
    return
  }
  console.log(banner(running, config))
  const stop = () => {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
    void running.close()
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

// No top-level await: test runners that load this module through a CommonJS transform choke on it.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}
