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

function run(duration, port = cfg.port, connections = cfg.connections) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections,
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
async function control(what, controlPort = cfg.controlPort) {
  if (controlPort === undefined) return undefined
  const res = await fetch(`http://127.0.0.1:${controlPort}/${what}`)
  return res.json()
}

// Server CPU per answered request, and the share of one CPU the server used, in a window.
const perRequest = (w) =>
  w && w.answered > 0 ? (w.cpuUserUs + w.cpuSystemUs) / w.answered : undefined
const busy = (w) =>
  w && w.wallMs > 0 ? (w.cpuUserUs + w.cpuSystemUs) / (w.wallMs * 1000) : undefined

// Paired mode (`targets`): two servers sharing one CPU, loaded at once, half the connections each,
// their CPU windows opened and closed together. Whatever the machine does during the window
// (this VM's speed wanders ±20 % between seconds) it does to both: the difference of their CPU
// per request is what the two adapters cost, not when each happened to run.
if (Array.isArray(cfg.targets)) {
  const each = Math.max(1, Math.floor(cfg.connections / cfg.targets.length))
  await Promise.all(cfg.targets.map((t) => run(cfg.warmup, t.port, each)))
  const stop = foreignWindow(cfg.serverCpu)
  const own0 = process.cpuUsage()
  const servers0 = cfg.targets.map((t) => pidCpuMs(t.serverPid))
  await Promise.all(cfg.targets.map((t) => control('start', t.controlPort)))
  const results = await Promise.all(cfg.targets.map((t) => run(cfg.duration, t.port, each)))
  const windows = await Promise.all(cfg.targets.map((t) => control('stop', t.controlPort)))
  const ours = cfg.targets.reduce((a, t, i) => a + pidCpuMs(t.serverPid) - servers0[i], 0)
  const own = process.cpuUsage(own0)
  process.stdout.write(
    JSON.stringify({
      foreignServerCpu: stop(ours),
      loadCpuMs: (own.user + own.system) / 1000,
      poolWrapped: wrapped,
      targets: results.map((result, i) => ({
        ok2xx: result['2xx'],
        non2xx: result.non2xx,
        errors: result.errors,
        rps: result['2xx'] / result.duration,
        serverCpuUsPerReq: perRequest(windows[i]),
        serverBusy: busy(windows[i]),
        serverWindow: windows[i],
      })),
    }) + '\n',
  )
  process.exit(0)
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
