// The load generator process: `node loadgen.mjs '<json config>'`. Reads a pool of distinct tokens
// (one per line), runs a warm-up then the measured autocannon run, each request with the next token
// of the pool, and prints one JSON line of results.
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { foreignWindow, pidCpuMs } from '../lib/cpu.mjs'

const cfg = JSON.parse(process.argv[2])
const pool = readFileSync(cfg.poolFile, 'latin1').split('\n')
let next = 0
let wrapped = 0
const authorization = () => {
  if (next >= pool.length) {
    next = 0
    wrapped++
  }
  return `Bearer ${pool[next++]}`
}

function run(duration) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${cfg.port}`,
        connections: cfg.connections,
        pipelining: 1,
        duration,
        requests: [
          {
            method: 'GET',
            path: '/mcp',
            setupRequest(req) {
              req.headers.authorization = authorization()
              return req
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    )
  })
}

// The server's own CPU window (server.mjs), opened and closed around the measured run.
async function control(what) {
  if (cfg.controlPort === undefined) return undefined
  const res = await fetch(`http://127.0.0.1:${cfg.controlPort}/${what}`)
  return res.json()
}

const warm = await run(cfg.warmup)
const usedByWarmup = next
// Foreign load: what other processes took of the server's CPU and of ours during the run.
const stop0 = foreignWindow(cfg.serverCpu)
const stop1 = foreignWindow(cfg.loadCpu)
const server0 = pidCpuMs(cfg.serverPid)
const own0 = process.cpuUsage()
await control('start')
const result = await run(cfg.duration)
const serverWindow = await control('stop')
const own = process.cpuUsage(own0)
const foreignServerCpu = stop0(pidCpuMs(cfg.serverPid) - server0)
const foreignLoadCpu = stop1((own.user + own.system) / 1000)
const sent = next - usedByWarmup + wrapped * pool.length
process.stdout.write(
  JSON.stringify({
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSec: result.duration,
    rps: result['2xx'] / result.duration,
    latencyP50: result.latency.p50,
    latencyP99: result.latency.p99,
    warmNon2xx: warm.non2xx + warm.errors,
    tokensUsed: sent,
    poolSize: pool.length,
    poolWrapped: wrapped,
    foreignServerCpu,
    foreignLoadCpu,
    // µs of server CPU (user + system, all its threads) per answered request in the window
    serverCpuUsPerReq:
      serverWindow && serverWindow.answered > 0
        ? (serverWindow.cpuUserUs + serverWindow.cpuSystemUs) / serverWindow.answered
        : undefined,
    // share of one CPU the server used: near 1 when the load saturates it, as CPU per request
    // assumes (an unsaturated server pays more per request: fewer requests per wake-up)
    serverBusy:
      serverWindow && serverWindow.wallMs > 0
        ? (serverWindow.cpuUserUs + serverWindow.cpuSystemUs) / (serverWindow.wallMs * 1000)
        : undefined,
    serverWindow,
  }) + '\n',
)
