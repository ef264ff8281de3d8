// One scenario's server process: `node server.mjs '<json config>'`. Prints `READY <port>` once
// listening on 127.0.0.1, or `UNAVAILABLE <reason>` and exits when the scenario cannot run here.
import express from 'express'
import { scenarios } from './scenarios.mjs'

const cfg = JSON.parse(process.argv[2])
const scenario = scenarios[cfg.scenario]
if (scenario === undefined) throw new Error(`unknown scenario ${cfg.scenario}`)

const app = express()
app.disable('x-powered-by')
try {
  await scenario.setup(app, cfg)
} catch (error) {
  process.stdout.write(`UNAVAILABLE ${String(error.message).replace(/\s+/g, ' ')}\n`)
  process.exit(0)
}
// Failures answer with their status and headers but are not logged (finalhandler would print every
// 401's stack, which only the JWKS phase provokes).
app.use((err, req, res, next) => {
  void next
  res.status(err.status ?? err.statusCode ?? 500)
  if (err.headers) res.set(err.headers)
  res.end()
})
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`)
})
server.keepAliveTimeout = 10_000
// The orchestrator closes stdin to stop us; a lost orchestrator must not leave a server behind.
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
setTimeout(() => process.exit(0), 15 * 60_000).unref()
