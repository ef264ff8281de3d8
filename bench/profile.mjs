// `node bench/profile.mjs <scenario> [seconds]`: runs one HTTP scenario's server under
// `node --cpu-prof` (pinned to CPU 0 when possible) with the same load as the bench, then prints
// where the server's CPU time went: self time per function, and the total time spent inside
// this package's dist/ files. The .cpuprofile is kept in bench/.out/ for DevTools.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { BENCH_DIR, canPin, config, createIdentity, pinnedNode } from './lib/common.mjs'
import { startJwksServer } from './lib/jwks-server.mjs'
import { makePool } from './lib/pool.mjs'
import { runJsonChild } from './lib/procs.mjs'

const scenario = process.argv[2] ?? 'ours'
const seconds = Number(process.argv[3] ?? 8)
const out = join(BENCH_DIR, '.out')
mkdirSync(out, { recursive: true })
const pin = canPin()
const identity = createIdentity()
const jwks = await startJwksServer(identity.publicJwk)

const name = `${scenario}-${Date.now()}.cpuprofile`
const [cmd, pre] = pinnedNode(0, pin)
const child = spawn(
  cmd,
  [
    ...pre,
    '--cpu-prof',
    `--cpu-prof-dir=${out}`,
    `--cpu-prof-name=${name}`,
    join(BENCH_DIR, 'http', 'server.mjs'),
    JSON.stringify({
      scenario,
      issuer: jwks.issuer,
      jwksUrl: jwks.jwksUrl,
      publicJwk: identity.publicJwk,
    }),
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
)
const exited = new Promise((resolve) => child.once('exit', resolve))
const port = await new Promise((resolve, reject) => {
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('READY ')) resolve(Number(line.slice(6).split(' ')[0]))
    if (line.startsWith('UNAVAILABLE ')) reject(new Error(line))
  })
  setTimeout(() => reject(new Error('server did not start')), 20_000).unref()
})
const pool = await makePool(Math.ceil(15_000 * (seconds + 1) * 1.15), {
  privateKeyPem: identity.privateKeyPem,
  issuer: jwks.issuer,
})
const poolFile = join(out, 'profile-pool.txt')
writeFileSync(poolFile, pool.join('\n'), 'latin1')
const res = await runJsonChild(
  join(BENCH_DIR, 'http', 'loadgen.mjs'),
  { port, poolFile, connections: config.connections, duration: seconds, warmup: 1 },
  { cpu: 1, pin, timeoutMs: seconds * 1000 + 60_000 },
)
child.stdin.end()
await exited
await jwks.close()
console.log(`${scenario}: ${Math.round(res.rps)} req/s under the profiler (non-2xx ${res.non2xx})`)

// ---- summarise ----------------------------------------------------------------------------------
const file = readdirSync(out).find((f) => f === name)
const profile = JSON.parse(readFileSync(join(out, file), 'utf8'))
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map()
profile.samples.forEach((id, i) => {
  if (byId.get(id).callFrame.functionName === '(idle)') return
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
})
const total = [...self.values()].reduce((a, b) => a + b, 0)
const agg = new Map()
const groups = new Map()
const ownDist = new URL('../dist/', import.meta.url).href
let ownTotal = 0
for (const [id, t] of self) {
  const cf = byId.get(id).callFrame
  const mine = cf.url.startsWith(ownDist)
  if (mine) ownTotal += t
  const where = mine
    ? `dist/${cf.url.slice(ownDist.length)}`
    : cf.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/bench\//, 'bench/')
  const group = mine
    ? 'this package (dist/)'
    : cf.functionName === 'verifyOneShot'
      ? 'crypto.verify (Ed25519)'
      : cf.functionName === '(garbage collector)'
        ? 'garbage collector'
        : /node_modules\/(passport|passport-strategy|passport-http-bearer)\//.test(cf.url)
          ? 'passport'
          : /node_modules\/(express|router|finalhandler|send|on-finished|parseurl|etag|fresh|content-type|qs|body-parser)\//.test(
                cf.url,
              )
            ? 'express + router'
            : /node_modules\/(jose|express-oauth2-jwt-bearer|fast-jwt|get-jwks|@modelcontextprotocol)\//.test(
                  cf.url,
                )
              ? 'other verifier libraries'
              : cf.url.startsWith('node:') || cf.url === ''
                ? 'node core (http, streams, buffers, natives)'
                : 'other'
  groups.set(group, (groups.get(group) ?? 0) + t)
  const key = `${cf.functionName || '(anonymous)'}  ${where}${cf.url ? `:${cf.lineNumber + 1}` : ''}`
  agg.set(key, (agg.get(key) ?? 0) + t)
}
const requests = res.ok2xx + res.non2xx
const per = (t) => `${((t / requests) * (seconds / (seconds + 1))).toFixed(2)} µs/req`
console.log(
  `self time in this package (dist/): ${((ownTotal / total) * 100).toFixed(1)}% ≈ ${per(ownTotal)}`,
)
console.log('by group (share of busy CPU; µs/req are inflated by the profiler, compare shares):')
for (const [g, t] of [...groups].sort((a, b) => b[1] - a[1])) {
  console.log(`${((t / total) * 100).toFixed(1).padStart(5)}%  ${per(t).padStart(14)}  ${g}`)
}
console.log('top functions by self time:')
for (const [k, t] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30))) {
  console.log(`${((t / total) * 100).toFixed(1).padStart(5)}%  ${per(t).padStart(14)}  ${k}`)
}
console.log(`profile: bench/.out/${file}`)
