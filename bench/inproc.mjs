// In-process CPU per request, no sockets: `node inproc.mjs '<json config>'`, pinned to one CPU.
// Each scenario of http/scenarios.mjs mounts its route on a stand-in `app` that only records the
// handlers; the same middleware chain is then driven with minimal request/response objects, one
// distinct token per request, in interleaved rounds (the order rotates every round) after one
// uncounted settling round. Per scenario and round: process.cpuUsage() over the measured requests
// ÷ requests. Prints one JSON line.
//
// For fast iteration on the hot path: what Express, the router and the sockets cost is left out,
// so differences between adapters show larger here than over HTTP, never smaller.
import { readFileSync } from 'node:fs'
import { scenarios } from './http/scenarios.mjs'
import { foreignWindow } from './lib/cpu.mjs'

const cfg = JSON.parse(process.argv[2])
const log = (msg) => process.stderr.write(`  [inproc] ${msg}\n`)
const tokens = readFileSync(cfg.poolFile, 'latin1').split('\n')
let next = 0
const take = (n) => {
  // With the verification stubbed no token is verified: the pool may be reused.
  if (cfg.stub && next + n > tokens.length) next = 0
  if (next + n > tokens.length) throw new Error('inproc: token pool exhausted')
  return tokens.slice(next, (next += n))
}

// `stub`: the adapters only. PartnerTokenVerifier#verifyNow (what every scenario over our verifier
// ends in, directly or through verifyToken) answers one prepared claims object at once, in this
// package and in the no-events copy, so what remains of a request is the adapter's own work plus
// the chain; scenarios that do not use our verifier are left out.
if (cfg.stub) {
  const payload = tokens[0].split('.')[1]
  const claims = Object.freeze(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')))
  const { pathToFileURL } = await import('node:url')
  const copies = [await import('passport-agentpress-partner')]
  if (cfg.noEventsEntry !== undefined) {
    const mod = await import(pathToFileURL(cfg.noEventsEntry).href)
    copies.push(mod.default ?? mod)
  }
  for (const pkg of copies) {
    pkg.PartnerTokenVerifier.prototype.verifyNow = function verifyNowStub() {
      return claims
    }
  }
}

// The route of each scenario, as the handlers it passed to app.get('/mcp', ...).
const chains = {}
const unavailable = {}
for (const id of cfg.ids) {
  if (
    cfg.stub &&
    !scenarios[id].ours &&
    ![
      'passport-core',
      'ours-core',
      'passport-core-auth',
      'ours-core-props',
      'ours-core-props-sync',
    ].includes(id)
  )
    continue
  const app = {
    get(path, ...handlers) {
      chains[id] = handlers.flat()
    },
  }
  try {
    await scenarios[id].setup(app, cfg)
  } catch (error) {
    unavailable[id] = String(error.message)
  }
}
const ids = cfg.ids.filter((id) => chains[id] !== undefined)

// A request through a chain: resolves true when the final handler answered 2xx.
function request(chain, authorization) {
  const req = {
    method: 'GET',
    url: '/mcp',
    headers: { host: '127.0.0.1', connection: 'keep-alive', authorization },
    rawHeaders: ['Host', '127.0.0.1', 'Connection', 'keep-alive', 'Authorization', authorization],
  }
  return new Promise((resolve) => {
    const res = {
      req,
      statusCode: 200,
      headersSent: false,
      setHeader() {},
      getHeader() {},
      status(code) {
        this.statusCode = code
        return this
      },
      set() {
        return this
      },
      send() {
        this.headersSent = true
        resolve(this.statusCode < 300)
      },
      end() {
        this.headersSent = true
        resolve(this.statusCode < 300)
      },
    }
    req.res = res
    let i = 0
    const step = (err) => {
      if (err !== undefined && err !== null && err !== 'route') return resolve(false)
      const handler = chain[i++]
      if (handler === undefined) return resolve(false)
      handler(req, res, step)
    }
    step()
  })
}

// The measured loop, in a function of its own so V8 optimises it like the rest.
async function drive(chain, batch) {
  let failed = 0
  for (const token of batch) if (!(await request(chain, `Bearer ${token}`))) failed++
  return failed
}

const cpuUs = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

// Warm-up: JIT and the JWKS cache of every scenario, nothing measured.
for (const id of ids) {
  const failed = await drive(chains[id], take(cfg.warmupOps))
  if (failed > 0) log(`${id}: ${failed} of ${cfg.warmupOps} warm-up requests failed`)
}

const out = Object.fromEntries(ids.map((id) => [id, { cpuByRound: [], failed: 0 }]))
const foreign = []
// Round -1 settles, uncounted: the first round that interleaves the chains re-optimises the
// adapters' small functions (traced with --trace-opt: markGranted, hasScopes, accept, parseScope
// … compiled again during it, after 2,000 or 10,000 warm-up requests alike), and `ours-direct`
// then cost 4–12 µs per request more than in every later round (bench/RESULTS.md, 2026-12-08).
for (let r = -1; r < cfg.rounds; r++) {
  const settling = r < 0
  const order = ids.map((_, i) => ids[(i + r + ids.length) % ids.length])
  // Foreign load on our CPU, and on the other one (where none of ours runs in this phase): the
  // larger is reported.
  const stop = foreignWindow(cfg.cpu)
  const stopOther = cfg.cpu === null ? undefined : foreignWindow(1 - cfg.cpu)
  const own0 = cpuUs()
  // Interleaved in slices of `cfg.slice` requests (every scenario a slice, then the next slice of
  // each): this VM's speed wanders ±20 % between seconds with nothing else running, and a
  // slice-by-slice rotation spreads that drift over every scenario alike. Finer slices cancel more
  // of it but put the other chains' code between every few requests of one: slices of 10 with
  // all nine scenarios measured `ours-direct` − `ours-core` at +3.8 µs [+2.5, +4.5] where four
  // scenarios (less code between two turns) and the adapters alone gave +0.3 to +1.2, a bias
  // against the chains with more code (bench/RESULTS.md, 2026-12-08). Hence 250 by default;
  // `BENCH_INPROC_SLICE` changes it.
  const batches = order.map((id) => ({ id, tokens: take(cfg.ops), us: 0 }))
  // No forced collection by default (BENCH_INPROC_GC=1 forces one per round, as before
  // 2026-12-07): a full collection drops the hidden classes no live object holds (the minimal
  // requests' added properties), and V8 then throws away the optimised code that embeds them
  // ("weak objects") in every scenario at once; the chains with more functions take longer to
  // be optimised again, which no server sees (a traced pair of HTTP servers showed no such
  // deoptimisation). Measured: `ours-direct` − `ours-core-props-sync` +4.6 to +9.3 µs with the
  // collection, +0.7 without (bench/RESULTS.md, 2026-12-07, fourth session).
  if (cfg.forceGc) globalThis.gc?.()
  for (let at = 0; at < cfg.ops; at += cfg.slice) {
    for (const batch of batches) {
      const slice = batch.tokens.slice(at, at + cfg.slice)
      const c0 = cpuUs()
      out[batch.id].failed += await drive(chains[batch.id], slice)
      batch.us += cpuUs() - c0
    }
  }
  const share = Math.max(stop((cpuUs() - own0) / 1000), stopOther?.(0) ?? 0)
  const perRequest = batches.map((b) => [b.id, b.us / b.tokens.length])
  log(
    `${settling ? 'settling round' : `round ${r + 1}`}: ` +
      perRequest.map(([id, us]) => `${id}=${us.toFixed(2)}µs`).join(' ') +
      `  foreign ${(share * 100).toFixed(1)}%`,
  )
  if (settling) continue
  for (const [id, us] of perRequest) out[id].cpuByRound[r] = us
  foreign.push(share)
}

process.stdout.write(JSON.stringify({ scenarios: out, unavailable, foreign }) + '\n')
process.exit(0)
