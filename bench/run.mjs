// `npm run bench`: builds, then measures in one run the core verifier against the physical limit,
// every HTTP scenario side by side, and JWKS fetch behaviour; prints a table of medians and
// ratios and writes bench/RESULTS.md. Knobs: see config in lib/common.mjs (BENCH_* variables).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, release } from 'node:os'
import { join, relative } from 'node:path'
import {
  BENCH_DIR,
  canPin,
  config,
  createIdentity,
  DEFAULT_PHASES,
  fmtFixed,
  fmtInt,
  median,
} from './lib/common.mjs'
import { startJwksServer } from './lib/jwks-server.mjs'
import { makePool } from './lib/pool.mjs'
import { runJsonChild, startServer } from './lib/procs.mjs'
import { FOREIGN_LIMIT, waitForQuiet } from './lib/cpu.mjs'
import { scenarios, scenarioIds } from './http/scenarios.mjs'
import { jwksCore, jwksHttpScenario } from './jwks.mjs'
import { startBenchRedis } from './lib/redis.mjs'
import { fanoutLatency, fanoutLatencyJwksHanging } from './fleet/fanout.mjs'
import { buildNoEventsDist } from './lib/no-events.mjs'
import { CPU_SCENARIOS, CPU_TARGETS, summary } from './lib/stats.mjs'

const began = Date.now()
const say = (msg) => process.stderr.write(`${msg}\n`)
const pctText = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a')
const pin = canPin()
const identity = createIdentity()
const jwks = await startJwksServer(identity.publicJwk)
const workDir = mkdtempSync(join(tmpdir(), 'agentpress-bench-'))
const results = { phases: config.phases, quietWaitMs: 0 }
// One loopback Redis for the replay scenario and the fan-out phase.
const redis =
  config.phases.includes('http') || config.phases.includes('fleet')
    ? await startBenchRedis()
    : { unavailable: 'not needed' }
// Time the bench may spend waiting for other processes to go quiet and repeating disturbed runs;
// past it every measurement is taken as it comes (and its foreign CPU share is reported).
const patienceUntil = began + config.patienceSec * 1000
async function quietGate() {
  const left = patienceUntil - Date.now()
  if (left <= 0) return
  const { waitedMs } = await waitForQuiet({ maxWaitMs: Math.min(left, 15_000) })
  results.quietWaitMs += waitedMs
}

function machine() {
  let model = 'unknown'
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model
  } catch {}
  const pkg = JSON.parse(readFileSync(join(BENCH_DIR, '..', 'package.json'), 'utf8'))
  const version = (name) => {
    try {
      return JSON.parse(
        readFileSync(join(BENCH_DIR, '..', 'node_modules', name, 'package.json'), 'utf8'),
      ).version
    } catch {
      return 'n/a'
    }
  }
  return {
    cpus: (() => {
      try {
        return readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm).length
      } catch {
        return 'n/a'
      }
    })(),
    model,
    node: process.version,
    kernel: release(),
    date: new Date().toISOString(),
    pinned: pin,
    packageVersion: pkg.version,
    versions: Object.fromEntries(
      [
        'express',
        'passport',
        'jose',
        'autocannon',
        'express-oauth2-jwt-bearer',
        'passport-http-bearer',
        '@modelcontextprotocol/sdk',
        'fast-jwt',
        'get-jwks',
      ].map((n) => [n, version(n)]),
    ),
  }
}
results.machine = machine()
say(
  `bench: ${results.machine.cpus} CPU ${results.machine.model}, Node ${process.version}, ` +
    (pin ? 'server on CPU 0, load generator on CPU 1 (taskset)' : 'taskset unavailable: unpinned'),
)

// The no-events copy of dist/ (bench/lib/no-events.mjs), built once when a scenario needs it.
let noEvents
const noEventsBuild = () => (noEvents ??= buildNoEventsDist())

/** One scenario's server process, pinned to CPU 0 (`{ unavailable }` when it cannot run here). */
function startScenarioServer(id) {
  const build = scenarios[id].noEvents ? noEventsBuild() : {}
  return startServer(
    join(BENCH_DIR, 'http', 'server.mjs'),
    {
      scenario: id,
      issuer: jwks.issuer,
      jwksUrl: jwks.jwksUrl,
      publicJwk: identity.publicJwk,
      redisUrl: redis.url,
      redisUnavailable: redis.unavailable,
      noEventsEntry: build.entry,
      noEventsUnavailable: build.unavailable,
    },
    { cpu: 0, pin },
  )
}

const cpuText = (res) => `${fmtFixed(res.serverCpuUsPerReq, 1)} µs CPU/req`

/**
 * This VM's CPU switches between speeds for seconds at a time with nothing else running (about
 * 70 µs per Ed25519 verify at full speed, 95–105 µs slowed; the server's CPU per request moves
 * with it, 1.4–1.7 ×). Every server times a fixed verify four times a second during its window
 * (`probeUs`, bench/http/server.mjs). A run whose probe is more than `config.slowLimit` over the
 * fastest probe of the phase is repeated, at most twice, within `budget` repeats in all; the run
 * with the faster probe is kept. `summary()` says how many were repeated (the report counts the
 * kept runs still slow).
 */
function speedWatch(budget) {
  let fastest = Infinity
  let repeated = 0
  const slow = (res) =>
    Number.isFinite(res.probeUs) && res.probeUs > fastest * (1 + config.slowLimit)
  const seen = (res) => {
    if (Number.isFinite(res.probeUs)) fastest = Math.min(fastest, res.probeUs)
  }
  return {
    async gate(res, again, label, describe) {
      const first = res
      seen(res)
      for (let k = 0; k < 2 && slow(res) && repeated < budget; k++) {
        repeated++
        say(
          `  ${label}: CPU slowed (probe ${fmtFixed(res.probeUs, 1)} µs, fastest ${fmtFixed(fastest, 1)} µs), repeating`,
        )
        const next = await again()
        if (next.unavailable) break
        seen(next)
        if (
          next.probeUs < res.probeUs &&
          !(next.foreign > Math.max(res.foreign ?? 0, FOREIGN_LIMIT))
        ) {
          res = next
        }
      }
      if (res !== first) {
        say(`  ${label}: kept the run with probe ${fmtFixed(res.probeUs, 1)} µs: ${describe(res)}`)
      }
      return res
    },
    summary() {
      return { fastestUs: fastest, repeated, budget, limit: config.slowLimit }
    },
  }
}

/**
 * Runs `ids` in `config.httpRounds` interleaved rounds (the order rotates every round), each run a
 * fresh server, a fresh token pool, a warm-up and the measured load; returns per scenario its
 * runs (`rounds`, each with its round index), the throughput figures and the server CPU time per
 * answered request (`cpuByRound`, NaN where a round has none).
 */
async function httpRounds(ids, rRaw, phase) {
  const http = Object.fromEntries(ids.map((id) => [id, { rounds: [] }]))
  // No verifying server can answer faster than one core verifies: size pools so none repeats.
  const bound = Math.max(rRaw ?? 0, 15_000) * 1.15
  const poolFile = join(workDir, 'pool.txt')
  // One run of one scenario: fresh server, fresh pool, warm-up, measured load.
  const runOnce = async (id) => {
    await quietGate()
    jwks.reset()
    const server = await startScenarioServer(id)
    if (server.unavailable) return server
    try {
      const size = scenarios[id].verifies
        ? Math.ceil(bound * (config.duration + config.warmup))
        : 20_000
      // Freshly signed right before the scenario: exp = iat + 600 covers the run.
      const pool = await makePool(size, {
        privateKeyPem: identity.privateKeyPem,
        issuer: jwks.issuer,
      })
      writeFileSync(poolFile, pool.join('\n'), 'latin1')
      const res = await runJsonChild(
        join(BENCH_DIR, 'http', 'loadgen.mjs'),
        {
          port: server.port,
          controlPort: server.controlPort,
          poolFile,
          connections: config.connections,
          duration: config.duration,
          warmup: config.warmup,
          serverPid: server.pid,
          serverCpu: pin ? 0 : null,
          loadCpu: pin ? 1 : null,
        },
        { cpu: 1, pin, timeoutMs: (config.duration + config.warmup) * 1000 + 60_000 },
      )
      res.jwksFetches = jwks.fetches
      res.probeUs = res.serverWindow?.probeUs
      res.foreign = Math.max(res.foreignServerCpu || 0, res.foreignLoadCpu || 0)
      return res
    } finally {
      await server.stop()
    }
  }
  // Other processes on this machine (tests, builds) can steal CPU mid-run: a run where they
  // took more than FOREIGN_LIMIT of either CPU is repeated once, within a bounded retry budget.
  let retries = Math.ceil(ids.length * config.httpRounds * 0.5)
  // The machine itself can run slow: a run whose speed probe says so is repeated (speedWatch).
  const speed = speedWatch(Math.ceil(ids.length * config.httpRounds * 0.5))
  for (let r = 0; r < config.httpRounds; r++) {
    // rotate the order every round so drift does not favour one scenario
    const order = ids.map((_, i) => ids[(i + r) % ids.length])
    for (const id of order) {
      if (http[id].unavailable) continue
      let res = await runOnce(id)
      if (res.unavailable) {
        http[id].unavailable = res.unavailable
        say(`  ${id}: unavailable (${res.unavailable})`)
        continue
      }
      if (res.foreign > FOREIGN_LIMIT && retries > 0 && Date.now() < patienceUntil) {
        retries--
        say(`  round ${r + 1} ${id}: ${pctText(res.foreign)} foreign CPU load, repeating`)
        const again = await runOnce(id)
        if (!again.unavailable && !(again.foreign > res.foreign)) res = again
      }
      res = await speed.gate(res, () => runOnce(id), `round ${r + 1} ${id}`, cpuText)
      res.round = r
      http[id].rounds.push(res)
      say(
        `  round ${r + 1} ${id.padEnd(22)} ${fmtInt(res.rps).padStart(7)} req/s  ` +
          `${fmtFixed(res.serverCpuUsPerReq, 1).padStart(6)} µs CPU/req (server busy ${pctText(res.serverBusy)}, probe ${fmtFixed(res.probeUs, 1)} µs)  ` +
          `p50 ${res.latencyP50} ms p99 ${res.latencyP99} ms  non2xx ${res.non2xx} errors ${res.errors}  ` +
          `jwks ${res.jwksFetches}  foreign ${pctText(res.foreign)}` +
          `${res.poolWrapped && scenarios[id].verifies ? '  TOKENS REUSED' : ''}`,
      )
    }
  }
  // Runs kept before the phase's fastest probe was known are judged again against it.
  for (const id of ids) {
    const rs = http[id].rounds
    for (let i = 0; i < rs.length; i++) {
      const again = await speed.gate(
        rs[i],
        () => runOnce(id),
        `round ${rs[i].round + 1} ${id}`,
        cpuText,
      )
      rs[i] = Object.assign(again, { round: rs[i].round })
    }
  }
  results.speed = { ...results.speed, [phase]: speed.summary() }
  // per-round ratios to the floor measured in the same round
  for (let r = 0; r < config.httpRounds; r++) {
    const raw = http.raw?.rounds.find((x) => x.round === r)
    if (raw === undefined) continue
    for (const id of ids) {
      const x = http[id].rounds.find((y) => y.round === r)
      if (x !== undefined) (http[id].ratios ??= []).push(x.rps / raw.rps)
    }
  }
  for (const id of ids) {
    const rs = http[id].rounds
    if (rs.length === 0) continue
    const cpuByRound = Array.from(
      { length: config.httpRounds },
      (_, r) => rs.find((x) => x.round === r)?.serverCpuUsPerReq ?? NaN,
    )
    Object.assign(http[id], {
      rps: median(rs.map((x) => x.rps)),
      min: Math.min(...rs.map((x) => x.rps)),
      max: Math.max(...rs.map((x) => x.rps)),
      p50: median(rs.map((x) => x.latencyP50)),
      p99: median(rs.map((x) => x.latencyP99)),
      non2xx: rs.reduce((a, x) => a + x.non2xx + x.errors + x.timeouts, 0),
      jwksFetches: Math.max(...rs.map((x) => x.jwksFetches)),
      reused: scenarios[id].verifies && rs.some((x) => x.poolWrapped > 0),
      ratio: http[id].ratios ? median(http[id].ratios) : undefined,
      foreign: median(rs.map((x) => x.foreign)),
      serverBusy: median(rs.map((x) => x.serverBusy).filter(Number.isFinite)),
      cpuByRound,
      cpu: summary(cpuByRound),
    })
  }
  return http
}

/**
 * The paired CPU phase: for each target of CPU_TARGETS (a − b ≤ limit), both servers run at once,
 * pinned to the same CPU, loaded by one load generator (half the connections each), their CPU
 * windows opened and closed together; per round the difference of their CPU per answered request.
 * Which server starts first alternates. Returns per pair its rounds and figures by round.
 */
async function pairedRounds() {
  const out = {}
  const bound = 15_000 * 1.15
  const poolFile = join(workDir, 'pair-pool.txt')
  // BENCH_PAIRS=a:b,c:d compares other pairs (an A/A pair such as ours-core:ours-core shows the
  // method's own noise); default: the pairs of the CPU targets.
  const pairs = process.env.BENCH_PAIRS
    ? process.env.BENCH_PAIRS.split(',').map((p) => p.split(':'))
    : CPU_TARGETS
  // One watch for the phase: its fastest probe judges every pair's rounds.
  const speed = speedWatch(Math.ceil(pairs.length * config.pairRounds * 0.5))
  const rounds = []
  for (const [a, b] of pairs) {
    const key = `${a} vs ${b}`
    const pair = (out[key] = {
      a,
      b,
      cpuA: [],
      cpuB: [],
      busyA: [],
      busyB: [],
      probe: [],
      foreign: [],
    })
    // One round: both servers fresh, one pool, the loaded window; the one started first alternates.
    const measure = async (r) => {
      await quietGate()
      jwks.reset()
      const ids = r % 2 === 0 ? [a, b] : [b, a]
      const servers = []
      try {
        for (const id of ids) {
          const server = await startScenarioServer(id)
          servers.push(server)
          if (server.unavailable) throw new Error(`${id}: ${server.unavailable}`)
        }
        const pool = await makePool(Math.ceil(bound * (config.duration + config.warmup)), {
          privateKeyPem: identity.privateKeyPem,
          issuer: jwks.issuer,
        })
        writeFileSync(poolFile, pool.join('\n'), 'latin1')
        const res = await runJsonChild(
          join(BENCH_DIR, 'http', 'loadgen.mjs'),
          {
            targets: servers.map((s) => ({
              port: s.port,
              controlPort: s.controlPort,
              serverPid: s.pid,
            })),
            poolFile,
            connections: config.connections,
            duration: config.duration,
            warmup: config.warmup,
            serverCpu: pin ? 0 : null,
          },
          { cpu: 1, pin, timeoutMs: (config.duration + config.warmup) * 1000 + 60_000 },
        )
        // In an A/A pair (`a` = `b`), `a` is the server started first.
        const ra = res.targets[ids.indexOf(a)]
        const rb = res.targets[ids.lastIndexOf(b)]
        const probes = [ra, rb].map((t) => t.serverWindow?.probeUs ?? NaN)
        return { res, ra, rb, probeUs: Math.max(...probes), foreign: res.foreignServerCpu }
      } finally {
        for (const s of servers) await s.stop?.()
      }
    }
    const describe = (x) => `${a} ${cpuText(x.ra)}, ${b} ${cpuText(x.rb)}`
    const kept = []
    for (let r = 0; r < config.pairRounds; r++) {
      try {
        const got = await speed.gate(await measure(r), () => measure(r), `round ${r + 1}`, describe)
        kept.push(got)
        const bad = got.res.targets.reduce((n, t) => n + t.non2xx + t.errors, 0)
        say(
          `  round ${r + 1} ${describe(got)} (busy ${pctText(got.ra.serverBusy)} / ${pctText(got.rb.serverBusy)})  ` +
            `probe ${fmtFixed(got.probeUs, 1)} µs  non2xx+errors ${bad}  foreign ${pctText(got.foreign)}${got.res.poolWrapped ? '  TOKENS REUSED' : ''}`,
        )
      } catch (error) {
        pair.unavailable = String(error.message)
        say(`  ${key}: not measured (${pair.unavailable})`)
        break
      }
    }
    rounds.push({ pair, kept, measure, describe })
  }
  // Rounds kept before the phase's fastest probe was known are judged again against it.
  for (const { pair, kept, measure, describe } of rounds) {
    for (let r = 0; r < kept.length && !pair.unavailable; r++) {
      const label = `${pair.a} vs ${pair.b} round ${r + 1}`
      try {
        kept[r] = await speed.gate(kept[r], () => measure(r), label, describe)
      } catch (error) {
        say(`  ${label}: repeat failed (${error.message}); the first run is kept`)
      }
    }
    for (const { ra, rb, probeUs, foreign } of kept) {
      pair.cpuA.push(ra.serverCpuUsPerReq ?? NaN)
      pair.cpuB.push(rb.serverCpuUsPerReq ?? NaN)
      pair.busyA.push(ra.serverBusy ?? NaN)
      pair.busyB.push(rb.serverBusy ?? NaN)
      pair.probe.push(probeUs)
      pair.foreign.push(foreign)
    }
  }
  results.speed = { ...results.speed, pair: speed.summary() }
  return out
}

try {
  // ---- (1)+(2) core ---------------------------------------------------------------------------
  if (config.phases.includes('core')) {
    say('\n== core (pinned to CPU 0)')
    await quietGate()
    results.core = await runJsonChild(
      join(BENCH_DIR, 'core.mjs'),
      {
        privateKeyPem: identity.privateKeyPem,
        publicJwk: identity.publicJwk,
        issuer: jwks.issuer,
        jwksUrl: jwks.jwksUrl,
        rounds: config.coreRounds,
        cpu: pin ? 0 : null,
        ops: config.coreOps,
        rejectOps: config.rejectOps,
      },
      { cpu: 0, pin, timeoutMs: 240_000, nodeArgs: ['--expose-gc'] },
    )
  }
  const rRaw = results.core?.medians.raw

  // ---- (3) HTTP end to end, and (3b) server CPU per request -------------------------------------
  // One runner for both: `http` measures every scenario (throughput and server CPU per request);
  // `cpu` only the scenarios the CPU targets compare, for runs that need nothing else (the lead's
  // "two runs within 3 %" check). A run with `http` covers `cpu`.
  const runCpuPhase = config.phases.includes('cpu') && !config.phases.includes('http')
  if (config.phases.includes('http') || runCpuPhase) {
    const cpuOnly = !config.phases.includes('http')
    const wanted = config.only.length > 0 ? config.only : cpuOnly ? CPU_SCENARIOS : scenarioIds
    const ids = scenarioIds.filter((id) => wanted.includes(id))
    const key = cpuOnly ? 'cpu' : 'http'
    say(
      `\n== ${cpuOnly ? 'CPU per request over HTTP' : 'HTTP'} (${config.httpRounds} rounds × ${config.duration}s + ${config.warmup}s warm-up; ${ids.join(', ')})`,
    )
    results[key] = await httpRounds(ids, rRaw, key)
  }

  // ---- (3b') CPU per request, paired: the two sides of each target loaded at once ---------------
  if (config.phases.includes('pair')) {
    say(
      `\n== CPU per request over HTTP, paired (${config.pairRounds} rounds × ${config.duration}s + ${config.warmup}s warm-up per pair)`,
    )
    results.pair = await pairedRounds()
  }

  // ---- (3c) CPU per request in process (no sockets) ----------------------------------------------
  if (config.phases.includes('inproc')) {
    const ids = scenarioIds.filter((id) =>
      (config.only.length > 0 ? config.only : CPU_SCENARIOS).includes(id),
    )
    say(
      `\n== CPU per request in process (${config.inprocRounds} rounds × ${config.inprocOps} requests in ${config.inprocProcesses} processes, turns of ${config.inprocSlice}; ${ids.join(', ')})`,
    )
    await quietGate()
    const build = ids.some((id) => scenarios[id].noEvents) ? noEventsBuild() : {}
    const warmupOps = 2000
    // Every process: its warm-up, one settling round (not counted, bench/inproc.mjs) and its rounds.
    const perScenario = warmupOps + (config.inprocRounds + 1) * config.inprocOps
    const pool = await makePool(ids.length * perScenario, {
      privateKeyPem: identity.privateKeyPem,
      issuer: jwks.issuer,
    })
    const poolFile = join(workDir, 'inproc-pool.txt')
    writeFileSync(poolFile, pool.join('\n'), 'latin1')
    // Rounds spread over `config.inprocProcesses` processes: what V8 makes of one chain differs
    // from process to process (±10 µs per request between two chains over HTTP), a difference
    // the rounds of one process all share; rounds of several processes put it in the interval.
    const processes = config.inprocProcesses
    const inproc = async (stub) => {
      const runs = []
      for (let p = 0; p < processes; p++) {
        const rounds =
          Math.floor((config.inprocRounds * (p + 1)) / processes) -
          Math.floor((config.inprocRounds * p) / processes)
        runs.push(await inprocProcess(stub, rounds))
      }
      const byId = {}
      for (const run of runs) {
        for (const [id, v] of Object.entries(run.scenarios)) {
          const to = (byId[id] ??= { cpuByRound: [], failed: 0 })
          to.cpuByRound.push(...v.cpuByRound)
          to.failed += v.failed
        }
      }
      return {
        scenarios: byId,
        unavailable: Object.assign({}, ...runs.map((r) => r.unavailable)),
        foreign: runs.flatMap((r) => r.foreign),
      }
    }
    const inprocProcess = (stub, rounds) =>
      runJsonChild(
        join(BENCH_DIR, 'inproc.mjs'),
        {
          ids,
          poolFile,
          rounds,
          // stubbed requests cost a few µs: more of them per round
          ops: stub ? config.inprocOps * 5 : config.inprocOps,
          slice: config.inprocSlice,
          warmupOps,
          stub,
          cpu: pin ? 0 : null,
          issuer: jwks.issuer,
          jwksUrl: jwks.jwksUrl,
          publicJwk: identity.publicJwk,
          noEventsEntry: build.entry,
          noEventsUnavailable: build.unavailable,
          forceGc: process.env.BENCH_INPROC_GC === '1',
        },
        {
          cpu: 0,
          pin,
          timeoutMs: 600_000,
          // BENCH_INPROC_PROFILE=1 keeps a .cpuprofile of the run in bench/.out/ (for DevTools)
          nodeArgs: [
            '--expose-gc',
            ...(process.env.BENCH_INPROC_PROFILE
              ? ['--cpu-prof', `--cpu-prof-dir=${join(BENCH_DIR, '.out')}`]
              : []),
          ],
        },
      )
    const tabulate = (got) => {
      const out = Object.fromEntries(
        Object.entries(got.scenarios).map(([id, v]) => [id, { ...v, cpu: summary(v.cpuByRound) }]),
      )
      for (const [id, why] of Object.entries(got.unavailable)) out[id] = { unavailable: why }
      return out
    }
    const got = await inproc(false)
    results.inproc = tabulate(got)
    results.inprocForeign = got.foreign
    // The same comparisons with the verification stubbed: the adapters' own work alone (diagnostic)
    const stubbed = await inproc(true)
    results.inprocStub = tabulate(stubbed)
    results.inprocStubForeign = stubbed.foreign
  }

  // ---- (4) JWKS behaviour ----------------------------------------------------------------------
  if (config.phases.includes('jwks')) {
    say(
      `\n== JWKS: cold start × ${config.coldConcurrency} concurrent, ${config.randomKidRequests} random kids`,
    )
    const opts = {
      jwks,
      identity,
      pin,
      cold: config.coldConcurrency,
      randomKids: config.randomKidRequests,
    }
    results.jwksCore = await jwksCore(opts)
    say(`  core: ${JSON.stringify(results.jwksCore)}`)
    results.jwksHttp = {}
    for (const id of scenarioIds.filter(
      (i) =>
        scenarios[i].verifies && i !== 'raw' && !scenarios[i].diagnostic && !scenarios[i].replay,
    )) {
      results.jwksHttp[id] = await jwksHttpScenario(id, opts)
      say(`  ${id}: ${JSON.stringify(results.jwksHttp[id])}`)
    }
  }

  // ---- (5) fleet fan-out across processes ------------------------------------------------------
  if (config.phases.includes('fleet')) {
    say(
      `\n== fleet: ${config.fleetRotations} emergency rotations across 3 example-server processes`,
    )
    if (redis.unavailable) results.fleet = { unavailable: redis.unavailable }
    else {
      await quietGate()
      results.fleet = await fanoutLatency({ redisUrl: redis.url, rotations: config.fleetRotations })
    }
    say(`  ${JSON.stringify(results.fleet)}`)
    say(`\n== fleet: the same with the issuer's JWKS hanging (${config.fleetRotations} rotations)`)
    if (redis.unavailable) results.fleetHanging = { unavailable: redis.unavailable }
    else {
      await quietGate()
      results.fleetHanging = await fanoutLatencyJwksHanging({
        redisUrl: redis.url,
        rotations: config.fleetRotations,
      })
    }
    say(`  ${JSON.stringify(results.fleetHanging)}`)
  }
} finally {
  await redis.stop?.()
  await jwks.close()
  rmSync(workDir, { recursive: true, force: true })
}
results.elapsedSec = (Date.now() - began) / 1000

// ---- (6) report ------------------------------------------------------------------------------
const report = (await import('./report.mjs')).render(results, config)
process.stdout.write(`\n${report.text}\n`)
// Only a run of every phase replaces bench/RESULTS.md; a run of some phases (e.g. `cpu` twice, to
// compare) leaves it alone and writes its own report under bench/.out/. Every run also keeps its
// raw figures, stamped, for bench/compare.mjs.
const full = DEFAULT_PHASES.every((p) => config.phases.includes(p)) && config.only.length === 0
const stamp = results.machine.date.replace(/[:.]/g, '-')
const tag = config.phases.join('+')
mkdirSync(join(BENCH_DIR, '.out'), { recursive: true })
const mdPath = full
  ? join(BENCH_DIR, 'RESULTS.md')
  : join(BENCH_DIR, '.out', `RESULTS-${tag}-${stamp}.md`)
writeFileSync(mdPath, report.markdown)
const json = JSON.stringify(results, null, 2) + '\n'
writeFileSync(join(BENCH_DIR, '.out', 'results.json'), json)
const jsonPath = join(BENCH_DIR, '.out', `results-${tag}-${stamp}.json`)
writeFileSync(jsonPath, json)
say(
  `\nwrote ${relative(process.cwd(), mdPath)} and ${relative(process.cwd(), jsonPath)} (${fmtFixed(results.elapsedSec, 0)} s)`,
)
