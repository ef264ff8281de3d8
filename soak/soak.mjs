// `npm run soak`: sustained hostile load on the example MCP server (examples/express-mcp-server,
// embedded mock AgentPress), on loopback only. The server runs in a child process (soak/server.mjs,
// --expose-gc) so its heap is measured alone; this process generates the load.
//
//   SOAK_REQUESTS (default 100000)   requests in the measured phase
//   SOAK_MAX_SECONDS (default 300)   hard stop for the measured phase
//   SOAK_CONCURRENCY (default 32)    requests in flight
//   SOAK_HEAP_MARGIN_MB (default 10) allowed heap growth after GC, measured phase
//
// Mix (seeded PRNG): valid tools/call 45 %, forged signature 12 %, random kid 10 %, malformed 13 %,
// expired 5 %, missing scope 5 %, replayed webhook 10 %. Pass: no status outside each kind's
// expected set (so no 5xx), heap growth ≤ margin, JWKS fetches ≤ 1 per cooldown window + 1 (plus
// the one refresh the rotation webhook asks for).
import { fork } from 'node:child_process'
import { createHmac, createPrivateKey, randomUUID, sign } from 'node:crypto'
import { newEd25519KeyPair } from '../dist/testing/ed25519-key.js'
import { Agent, request } from 'node:http'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const int = (name, fallback) => {
  const n = Number(process.env[name])
  return Number.isSafeInteger(n) && n > 0 ? n : fallback
}
const TOTAL = int('SOAK_REQUESTS', 100_000)
const MAX_MS = int('SOAK_MAX_SECONDS', 300) * 1000
const CONCURRENCY = int('SOAK_CONCURRENCY', 32)
const HEAP_MARGIN = int('SOAK_HEAP_MARGIN_MB', 10) * 1024 * 1024
const WARMUP = 2_000
const COOLDOWN_MS = 5_000 // the verifier's default jwksCooldownMs (random kids wait for it: §3)

// mulberry32: a small seeded PRNG, so two runs send the same mix.
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = prng(0x50a4)

const child = fork(path.join(here, 'server.mjs'), [], {
  execArgv: ['--expose-gc'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
})
const replies = []
const waiting = []
child.on('message', (message) => {
  const next = waiting.shift()
  if (next) next(message)
  else replies.push(message)
})
const nextMessage = () =>
  new Promise((resolve) => (replies.length > 0 ? resolve(replies.shift()) : waiting.push(resolve)))
const ask = (type) => {
  child.send({ type })
  return nextMessage()
}

const ready = await nextMessage()
const target = new URL(ready.mcpUrl)
const webhook = new URL(ready.webhookUrl)
const keys = ready.keys.map((k) => ({
  kid: k.kid,
  key: createPrivateKey({ key: k.jwk, format: 'jwk' }),
}))
const current = keys.at(-1)
const attacker = newEd25519KeyPair().privateKey
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })
// Random-kid tokens are held by the verifier until a JWKS fetch that started after them (≤ one
// cooldown, §3): they get their own sockets and do not occupy one of the CONCURRENCY slots,
// or a 10 % share of them would throttle the whole mix to the cooldown.
const HELD_IN_FLIGHT = 256
const heldAgent = new Agent({ keepAlive: false }) // a fresh connection each: no reuse race with the server closing an idle one
const started = Date.now()

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
function token(claims = {}, header = {}, key = current.key) {
  const now = Math.floor(Date.now() / 1000)
  const input = `${b64({ alg: 'EdDSA', typ: 'JWT', kid: current.kid, ...header })}.${b64({
    iss: ready.issuer,
    aud: ready.audience,
    ext_provider: ready.extProvider,
    sub: `soak-user-${Math.floor(random() * 16)}`,
    jti: randomUUID(),
    scope: 'mcp:read',
    iat: now,
    exp: now + 60,
    ...claims,
  })}`
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`
}

const rpc = (name, args = {}) =>
  JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } })
const LIST = rpc('list_notes')
const ADD = rpc('add_note', { text: 'soak' })

// The rotation webhook: the same body (same event id) throughout, re-signed with a fresh timestamp
// so it stays inside the ±300 s window: every delivery after the first is a replay.
const rotationBody = JSON.stringify(ready.rotation)
let signedAt = 0
let rotationHeaders
function rotationDelivery() {
  const now = Math.floor(Date.now() / 1000)
  if (now - signedAt >= 60 || rotationHeaders === undefined) {
    signedAt = now
    const mac = createHmac('sha256', ready.webhookSecret)
      .update(`${now}.${rotationBody}`)
      .digest('hex')
    rotationHeaders = {
      'content-type': 'application/json',
      'x-agentpress-timestamp': String(now),
      'x-agentpress-signature': `sha256=${mac}`,
    }
  }
  return rotationHeaders
}

const MALFORMED = [
  () => 'Bearer not-a-jwt',
  () => 'Bearer a.b.c',
  () => `Bearer ${token().split('.').slice(0, 2).join('.')}`,
  () => `Bearer ${b64({ alg: 'none', kid: current.kid })}.${b64({ sub: 'x' })}.`,
  () => `Bearer ${token({}, { alg: 'HS256' })}`,
  () => 'Bearer',
  () => `Basic ${Buffer.from('user:pass').toString('base64')}`,
  () => `Bearer ${token()}=`,
]

// kind → [share, expected statuses, request builder]
const KINDS = {
  valid: [0.45, [200], () => ({ url: target, auth: `Bearer ${token()}`, body: LIST })],
  forged: [
    0.12,
    [401],
    () => ({ url: target, auth: `Bearer ${token({}, {}, attacker)}`, body: LIST }),
  ],
  random_kid: [
    0.1,
    [401],
    () => ({
      url: target,
      auth: `Bearer ${token({}, { kid: `kid-${randomUUID()}` }, attacker)}`,
      body: LIST,
    }),
  ],
  malformed: [
    0.13,
    [400, 401],
    () => ({ url: target, auth: MALFORMED[Math.floor(random() * MALFORMED.length)](), body: LIST }),
  ],
  expired: [
    0.05,
    [401],
    () => {
      const now = Math.floor(Date.now() / 1000)
      return {
        url: target,
        auth: `Bearer ${token({ iat: now - 600, exp: now - 120 })}`,
        body: LIST,
      }
    },
  ],
  missing_scope: [0.05, [403], () => ({ url: target, auth: `Bearer ${token()}`, body: ADD })],
  webhook_replay: [
    0.1,
    [200],
    () => ({ url: webhook, headers: rotationDelivery(), body: rotationBody }),
  ],
}
const table = Object.entries(KINDS)
function pick() {
  let r = random()
  for (const [name, [share]] of table) {
    if (r < share) return name
    r -= share
  }
  return table[0][0]
}

function send(kind) {
  const built = KINDS[kind][2]()
  const headers = built.headers ?? {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...(built.auth === undefined ? {} : { authorization: built.auth }),
  }
  return new Promise((resolve) => {
    const req = request(
      built.url,
      {
        method: 'POST',
        agent: kind === 'random_kid' ? heldAgent : agent,
        headers: { ...headers, 'content-length': Buffer.byteLength(built.body) },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
        res.on('error', () => resolve(-1))
      },
    )
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(-1))
    req.end(built.body)
  })
}

async function phase(count, deadline, stats) {
  let issued = 0
  const held = new Set()
  const record = (kind, status) => {
    const s = (stats[kind] ??= { sent: 0, statuses: {}, unexpected: 0 })
    s.sent++
    s.statuses[status] = (s.statuses[status] ?? 0) + 1
    if (!KINDS[kind][1].includes(status)) s.unexpected++
  }
  const worker = async () => {
    while (issued < count && Date.now() < deadline) {
      issued++
      const kind = pick()
      if (kind === 'random_kid') {
        // Not awaited here (see heldAgent), up to HELD_IN_FLIGHT at once (file descriptors);
        // every one is awaited before the phase ends.
        if (held.size >= HELD_IN_FLIGHT) await Promise.race(held)
        const pending = send(kind).then((status) => record(kind, status))
        held.add(pending)
        pending.finally(() => held.delete(pending))
        continue
      }
      record(kind, await send(kind))
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  await Promise.all(held)
  return issued
}

// The first delivery of the rotation event: processed in full (one refresh), before anything else.
const first = await send('webhook_replay')
if (first !== 200) throw new Error(`first rotation delivery answered ${first}`)

await phase(WARMUP, Date.now() + 60_000, {})
const before = await ask('heap')
const stats = {}
const t0 = Date.now()
const sent = await phase(TOTAL, t0 + MAX_MS, stats)
const elapsedMs = Date.now() - t0
const after = await ask('heap')
agent.destroy()
heldAgent.destroy()
child.send({ type: 'stop' })

const totalElapsed = Date.now() - started
const windows = Math.ceil(totalElapsed / COOLDOWN_MS)
const fetchBound = windows + 1 + 1 // ≤ 1 per cooldown window + 1, plus the webhook's refresh
const growth = after.heap.heapUsed - before.heap.heapUsed
const unexpected = Object.values(stats).reduce((n, s) => n + s.unexpected, 0)
const byStatus = {}
for (const s of Object.values(stats))
  for (const [code, n] of Object.entries(s.statuses)) byStatus[code] = (byStatus[code] ?? 0) + n
const checks = {
  [`all ${TOTAL} requests sent within ${MAX_MS / 1000} s`]: sent >= TOTAL,
  'no status outside the expected set of its kind (no 5xx, no timeout)': unexpected === 0,
  [`heap growth after GC ≤ ${HEAP_MARGIN / 1048576} MiB`]: growth <= HEAP_MARGIN,
  [`JWKS fetches ≤ ${fetchBound} (${windows} cooldown windows + 1, + 1 rotation refresh)`]:
    after.jwksRequests <= fetchBound,
}
const mb = (n) => `${(n / 1048576).toFixed(1)} MiB`
const result = {
  date: new Date().toISOString(),
  machine: `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, ${mb(os.totalmem())} RAM, ${os.platform()} ${os.release()}, Node ${process.version}`,
  // Other load on this (shared) machine during the run: 1-minute load average at the end.
  loadAverage1m: +os.loadavg()[0].toFixed(2),
  requests: sent,
  concurrency: CONCURRENCY,
  elapsedSeconds: +(elapsedMs / 1000).toFixed(1),
  requestsPerSecond: Math.round(sent / (elapsedMs / 1000)),
  byStatus,
  byKind: stats,
  jwksFetches: after.jwksRequests,
  jwksFetchBound: fetchBound,
  heapBeforeAfterGc: [before.heap.heapUsed, after.heap.heapUsed],
  heapGrowthBytes: growth,
  rss: [before.heap.rss, after.heap.rss],
  usersProvisioned: after.users,
  checks,
  pass: Object.values(checks).every(Boolean),
}

const lines = [
  `soak ${result.date} — ${result.machine} (load average ${result.loadAverage1m} at the end)`,
  `${sent} requests in ${result.elapsedSeconds} s at concurrency ${CONCURRENCY}: ${result.requestsPerSecond} req/s (after ${WARMUP} warm-up requests)`,
  `statuses: ${Object.entries(byStatus)
    .map(([c, n]) => `${c} × ${n}`)
    .join(', ')}`,
  ...Object.entries(stats).map(
    ([kind, s]) =>
      `  ${kind.padEnd(15)} ${String(s.sent).padStart(6)}  ${Object.entries(s.statuses)
        .map(([c, n]) => `${c}×${n}`)
        .join(' ')}${s.unexpected ? `  UNEXPECTED ${s.unexpected}` : ''}`,
  ),
  `JWKS fetches: ${after.jwksRequests} (bound ${fetchBound}: ${windows} × ${COOLDOWN_MS / 1000} s windows + 1, + 1 rotation)`,
  `heap after GC: ${mb(before.heap.heapUsed)} → ${mb(after.heap.heapUsed)} (${growth >= 0 ? '+' : ''}${mb(growth)}); rss ${mb(before.heap.rss)} → ${mb(after.heap.rss)}`,
  ...Object.entries(checks).map(([name, ok]) => `${ok ? 'PASS' : 'FAIL'}  ${name}`),
  result.pass ? 'soak: PASS' : 'soak: FAIL',
]
console.log(lines.join('\n'))
// Kept out of git (.tmp/ is ignored): the figures worth keeping go into the README by hand.
const out = path.join(here, '..', '.tmp', 'soak')
mkdirSync(out, { recursive: true })
writeFileSync(path.join(out, 'last-run.json'), `${JSON.stringify(result, null, 2)}\n`)
process.exitCode = result.pass ? 0 : 1
