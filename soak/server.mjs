// Child process of the soak: the example MCP server (examples/express-mcp-server, embedded mock
// AgentPress) on 127.0.0.1, measured from inside. Started by soak.mjs with --expose-gc; answers
// its IPC questions (heap after GC, JWKS fetch counts) and hands over the mock's signing keys so
// the load generator can mint tokens locally.
import { startServer } from '../examples/express-mcp-server/server.mjs'

const running = await startServer({ port: 0, log: () => {} })
const mock = running.mock
// One overlap rotation before the run: the load generator delivers its webhook (one refresh),
// then replays that same delivery throughout.
const rotation = mock.rotateKeys()
const verifier = running.strategy.verifiers[0]

function heap() {
  for (let i = 0; i < 3; i++) globalThis.gc()
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss, external: m.external }
}

process.on('message', async (message) => {
  if (message?.type === 'heap') {
    process.send({
      type: 'heap',
      heap: heap(),
      jwksRequests: mock.jwksRequestCount,
      verifierFetches: verifier.jwksFetchCount,
      users: running.users.list().length,
    })
  } else if (message?.type === 'stop') {
    await running.close()
    process.exit(0)
  }
})

process.send({
  type: 'ready',
  url: running.url,
  mcpUrl: running.mcpUrl,
  webhookUrl: running.webhookUrl,
  issuer: mock.issuer,
  audience: mock.audience,
  extProvider: mock.extProvider,
  webhookSecret: mock.webhookSecret,
  rotation,
  keys: mock.keys.map((k) => ({ kid: k.kid, jwk: k.privateKey.export({ format: 'jwk' }) })),
})
