// Child process of the fleet soak: one instance of the example MCP server (REDIS_URL mode: replay
// on, rotations fanned out) trusting the load generator's mock AgentPress. Started with
// --expose-gc; answers IPC questions about its heap and its fleet.
import { startServer } from '../examples/express-mcp-server/server.mjs'

const config = JSON.parse(process.argv[2])
const running = await startServer({
  port: 0,
  audience: config.audience,
  agentpress: {
    issuer: config.issuer,
    extProvider: config.extProvider,
    jwksUrl: config.jwksUrl,
    webhookSecret: config.webhookSecret,
  },
  redisUrl: config.redisUrl,
  log: () => {},
})

function heap() {
  for (let i = 0; i < 3; i++) globalThis.gc()
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, rss: m.rss }
}

process.on('message', async (message) => {
  if (message?.type === 'heap') {
    process.send({
      type: 'heap',
      heap: heap(),
      fleet: { state: running.fleet.state, ...running.fleet.stats },
    })
  } else if (message?.type === 'stats') {
    process.send({ type: 'stats', fleet: { state: running.fleet.state, ...running.fleet.stats } })
  } else if (message?.type === 'stop') {
    await running.close()
    process.exit(0)
  }
})
process.on('disconnect', () => process.exit(0))

process.send({
  type: 'ready',
  url: running.url,
  mcpUrl: running.mcpUrl,
  webhookUrl: running.webhookUrl,
})
