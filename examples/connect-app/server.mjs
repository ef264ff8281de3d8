/**
 * The same protection in a plain Connect app (no Express): a small notes API where reading needs
 * `mcp:read` and writing needs `mcp:write`. Everything the package provides is plain
 * `(req, res, next)` middleware, so it mounts in Connect unchanged.
 *
 *   node examples/connect-app/server.mjs      # embedded mock AgentPress, prints curl commands
 */
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'

import connect from 'connect'
import {
  AgentPressPartnerStrategy,
  authenticatePartner,
  createKeyRotationRouter,
  protectedResourceMetadata,
  requireScopes,
} from 'passport-agentpress-partner'
import { createMockAgentPress } from 'passport-agentpress-partner/testing'
import { refuseHostileTarget } from '../request-target.mjs'

/**
 * Starts the app on 127.0.0.1 with an embedded mock AgentPress (or `options.agentpress`).
 * @param {{ port?: number, agentpress?: { issuer: string, extProvider: string, jwksUrl?: string, webhookSecret: string } }} [options]
 */
export async function startConnectApp(options = {}) {
  let handler
  // A request target that is not a plain path is 400 before any router sees it.
  const server = createServer((req, res) => refuseHostileTarget(req, res) || handler(req, res))
  await new Promise((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}`
  const audience = `${url}/notes`

  const mock = options.agentpress
    ? undefined
    : await createMockAgentPress({ audience, sub: 'alice' })
  const trust = options.agentpress ?? {
    issuer: mock.issuer,
    jwksUrl: mock.jwksUrl,
    extProvider: mock.extProvider,
    webhookSecret: mock.webhookSecret,
  }

  const prm = protectedResourceMetadata({
    resource: audience,
    authorizationServers: [trust.issuer],
    scopesSupported: ['mcp:read', 'mcp:write'],
  })
  const users = new Map() // `${ext_provider} ${sub}` → user, provisioned on first contact
  const strategy = new AgentPressPartnerStrategy(
    {
      partnerMcp: {
        issuer: trust.issuer,
        audience,
        expectedExtProvider: trust.extProvider,
        ...(trust.jwksUrl ? { jwksUrl: trust.jwksUrl } : {}),
      },
      realm: 'notes',
      resourceMetadataUrl: prm.url,
    },
    (claims, done) => {
      const key = `${claims.ext_provider} ${claims.sub}`
      if (!users.has(key))
        users.set(key, { id: `usr_${users.size + 1}`, externalId: claims.sub, notes: [] })
      done(null, users.get(key))
    },
  )

  const app = connect()
  // Before anything that reads the body: the router verifies the HMAC over the raw bytes.
  app.use(
    '/webhooks/agentpress/key-rotation',
    createKeyRotationRouter({ webhookSecret: trust.webhookSecret, strategy }),
  )
  app.use(prm)
  app.use('/notes', authenticatePartner(strategy)) // no Passport; JSON bodies on every refusal
  const canRead = requireScopes('mcp:read')
  const canWrite = requireScopes('mcp:write')
  app.use('/notes', (req, res, next) =>
    (req.method === 'POST' ? canWrite : canRead)(req, res, next),
  )
  app.use('/notes', (req, res) => {
    const user = req.user
    const send = (status, body) => {
      res.statusCode = status
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify(body))
    }
    if (req.url !== '/' && req.url !== '') return send(404, { error: 'not_found' })
    if (req.method === 'GET') return send(200, { user: user.id, notes: user.notes })
    if (req.method !== 'POST') return send(405, { error: 'method_not_allowed' })
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => {
      text += chunk
      if (text.length > 1000) req.destroy()
    })
    req.on('end', () => {
      user.notes.push(text)
      send(201, { user: user.id, notes: user.notes })
    })
  })
  handler = app

  return {
    url,
    audience,
    mock,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await mock?.close()
    },
  }
}

/** Runs the example and prints what to try. */
async function main() {
  const app = await startConnectApp({ port: Number(process.env.PORT ?? 3001) })
  const reader = app.mock.signToken({ scope: 'mcp:read', exp: Math.floor(Date.now() / 1000) + 600 })
  const writer = app.mock.signToken({
    scope: 'mcp:read mcp:write',
    exp: Math.floor(Date.now() / 1000) + 600,
  })
  console.log(
    [
      `Connect notes API on ${app.audience}, trusting the embedded mock AgentPress ${app.mock.issuer}`,
      '(tokens below are valid for 10 minutes)',
      '',
      'Read (mcp:read):',
      `  curl -s ${app.audience} -H 'Authorization: Bearer ${reader}'`,
      'Write with the read-only token → 403 insufficient_scope:',
      `  curl -si ${app.audience} -X POST -d 'hello' -H 'Authorization: Bearer ${reader}'`,
      'Write (mcp:write):',
      `  curl -s ${app.audience} -X POST -d 'hello' -H 'Authorization: Bearer ${writer}'`,
      '',
      'Press Ctrl+C to stop.',
    ].join('\n'),
  )
  const stop = () => void app.close()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

// No top-level await: test runners that load this module through a CommonJS transform choke on it.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}
