// One scenario's server process: `node server.mjs '<json config>'`. Prints `READY <port> <control>`
// once listening on 127.0.0.1, or `UNAVAILABLE <reason>` and exits when the scenario cannot run here.
//
// `<control>` is a second loopback port, outside Express, that the load generator calls to open and
// close the measured window: `GET /start` takes this process's own CPU time (process.cpuUsage(),
// every thread of it: JS, GC, libuv) and the count of answered requests; `GET /stop` answers the
// difference as JSON. CPU time per request is then what the server spent per answered request,
// whatever other processes took of the CPU meanwhile.
import { sign, verify } from 'node:crypto'
import { createServer } from 'node:http'
import express from 'express'
import { newEd25519KeyPair } from '../../dist/testing/ed25519-key.js'
import { median } from '../lib/common.mjs'
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

// The speed probe: four times a second during the window, five Ed25519 verifies of one fixed
// message (the work that dominates a request), timed one by one; the fastest of the five is that
// moment's speed of this CPU (a slower host, a busy sibling thread) whatever else runs. Its own
// CPU time is taken out of the window's.
const probeKey = newEd25519KeyPair()
const probeMessage = Buffer.alloc(256, 7)
const probeSignature = sign(null, probeMessage, probeKey.privateKey)
function probe() {
  const cpu0 = process.cpuUsage()
  let best = Infinity
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint()
    if (!verify(null, probeMessage, probeKey.publicKey, probeSignature)) throw new Error('probe')
    best = Math.min(best, Number(process.hrtime.bigint() - t0))
  }
  const cpu = process.cpuUsage(cpu0)
  window.probeCpuUs += cpu.user + cpu.system
  window.probeNs.push(best)
}

let window
const control = createServer((req, res) => {
  if (req.url === '/start') {
    window = {
      cpu: process.cpuUsage(),
      answered: counter.answered,
      t0: performance.now(),
      probeCpuUs: 0,
      probeNs: [],
      timer: setInterval(probe, 250),
    }
    res.end('{}')
  } else if (req.url === '/stop' && window !== undefined) {
    const cpu = process.cpuUsage(window.cpu)
    clearInterval(window.timer)
    res.end(
      JSON.stringify({
        // The probe's CPU is taken out of user time (verify runs in user mode).
        cpuUserUs: cpu.user - window.probeCpuUs,
        cpuSystemUs: cpu.system,
        probeUs: window.probeNs.length > 0 ? median(window.probeNs) / 1000 : undefined,
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
