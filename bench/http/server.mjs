// One scenario's server process: `node server.mjs '<json config>'`. Prints `READY <port> <control>`
// once listening on 127.0.0.1, or `UNAVAILABLE <reason>` and exits when the scenario cannot run here.
//
// `<control>` is a second loopback port, outside Express, that the load generator calls to open and
// close the measured window: `GET /start` takes this process's own CPU time (process.cpuUsage(),
// every thread of it: JS, GC, libuv) and the count of answered requests; `GET /stop` answers the
// difference as JSON. CPU time per request is then what the server spent per answered request,
// whatever other processes took of the CPU meanwhile.
import { createServer } from 'node:http'
import express from 'express'
import { counter, scenarios } from './scenarios.mjs'

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
  counter.answered++
  res.status(err.status ?? err.statusCode ?? 500)
  if (err.headers) res.set(err.headers)
  res.end()
})

let window
const control = createServer((req, res) => {
  if (req.url === '/start') {
    window = { cpu: process.cpuUsage(), answered: counter.answered, t0: performance.now() }
    res.end('{}')
  } else if (req.url === '/stop' && window !== undefined) {
    const cpu = process.cpuUsage(window.cpu)
    res.end(
      JSON.stringify({
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        answered: counter.answered - window.answered,
        wallMs: performance.now() - window.t0,
      }),
    )
  } else {
    res.statusCode = 404
    res.end()
  }
})
await new Promise((resolve) => control.listen(0, '127.0.0.1', resolve))
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port} ${control.address().port}\n`)
})
server.keepAliveTimeout = 10_000
// The orchestrator closes stdin to stop us; a lost orchestrator must not leave a server behind.
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
setTimeout(() => process.exit(0), 15 * 60_000).unref()
