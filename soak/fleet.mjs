// `npm run soak`, second part: a fleet under the mixed load. Three example-server processes
// (soak/fleet-server.mjs, REDIS_URL mode: replay on, rotations fanned out) on one loopback
// redis-server, trusting a mock AgentPress served from this process, which generates the load.
//
//   SOAK_FLEET_SECONDS (default 60)        measured phase
//   SOAK_FLEET_ROTATION_MS (default 3000)  a rotation every so often, overlap and emergency in turn
//   SOAK_CONCURRENCY (default 32)          requests in flight
//   SOAK_HEAP_MARGIN_MB (default 10)       allowed heap growth after GC, per instance
//
// Every rotation is delivered to one random instance; traffic switches to the new key once the
// other two applied the relay. A token whose key was revoked by an emergency rotation must be
// refused everywhere from 1 s after the rotation on. Pass: no status outside each kind's expected
// set, every rotation answered 200, heap growth ≤ margin on every instance, every Redis key has an
// expiry and the key count stays within what the accepted tokens of one lifetime explain.
import { fork } from 'node:child_process'
import { createHmac, randomUUID, sign } from 'node:crypto'
import { newEd25519KeyPair } from '../dist/testing/ed25519-key.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { createMockAgentPress } from 'passport-agentpress-partner/testing'
import { startBenchRedis } from '../bench/lib/redis.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const int = (name, fallback) => {
  const n = Number(process.env[name])
  return Number.isSafeInteger(n) && n > 0 ? n : fallback
}
const SECONDS = int('SOAK_FLEET_SECONDS', 60)
const ROTATION_MS = int('SOAK_FLEET_ROTATION_MS', 3000)
const CONCURRENCY = int('SOAK_CONCURRENCY', 32)
const HEAP_MARGIN = int('SOAK_HEAP_MARGIN_MB', 10) * 1024 * 1024
const AUDIENCE = 'http://127.0.0.1:9/mcp'
// Short-lived tokens, so a one-minute run shows replay keys expiring (exp + 30 s tolerance).
const TOKEN_LIFETIME_SEC = 10
const REVOCATION_DEADLINE_MS = 1000

function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = prng(0xf1ee7)

const redis = await startBenchRedis()
if (redis.unavailable) {
  console.log(`soak (fleet): not run: ${redis.unavailable}`)
  process.exit(1)
}
const mock = await createMockAgentPress({ audience: AUDIENCE })
const inspector = createClient({ url: redis.url })
inspector.on('error', () => {})
await inspector.connect()

// ---- the three instances
function startInstance() {
  const child = fork(
    path.join(here, 'fleet-server.mjs'),
    [
      JSON.stringify({
        audience: AUDIENCE,
        issuer: mock.issuer,
        jwksUrl: mock.jwksUrl,
        extProvider: mock.extProvider,
        webhookSecret: mock.webhookSecret,
        redisUrl: redis.url,
      }),
    ],
    { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  )
  const waiting = []
  child.on('message', (message) => waiting.shift()?.(message))
  const next = () => new Promise((resolve) => waiting.push(resolve))
  return next().then((ready) => ({
    child,
    mcp: new URL(ready.mcpUrl),
    webhook: new URL(ready.webhookUrl),
    ask(type) {
      child.send({ type })
      return next()
    },
  }))
}
const instances = await Promise.all([0, 1, 2].map(startInstance))

// ---- tokens, signed here with the mock's private keys (kept even after the mock withdraws them)
let active = mock.keys.at(-1)
const retiredAt = new Map() // kid → when an emergency rotation revoked it
const attacker = newEd25519KeyPair().privateKey
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
function token(claims = {}, header = {}, key = active.privateKey) {
  const now = Math.floor(Date.now() / 1000)
  const input = `${b64({ alg: 'EdDSA', typ: 'JWT', kid: active.kid, ...header })}.${b64({
    iss: mock.issuer,
    aud: AUDIENCE,
    ext_provider: mock.extProvider,
    sub: `soak-user-${Math.floor(random() * 16)}`,
    jti: randomUUID(),
    scope: 'mcp:read',
    iat: now,
    exp: now + TOKEN_LIFETIME_SEC,
    ...claims,
  })}`
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`
}
const LIST = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'list_notes', arguments: {} },
})
const ADD = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'add_note', arguments: { text: 'soak' } },
})
const MALFORMED = [
  () => 'Bearer not-a-jwt',
  () => 'Bearer a.b.c',
  () => `Bearer ${b64({ alg: 'none', kid: active.kid })}.${b64({ sub: 'x' })}.`,
  () => `Bearer ${token({}, { alg: 'HS256' })}`,
  () => 'Bearer',
]
// Tokens already accepted, replayed at another (or the same) instance.
const accepted = []

function signedDelivery(body) {
  const now = Math.floor(Date.now() / 1000)
  const mac = createHmac('sha256', mock.webhookSecret).update(`${now}.${body}`).digest('hex')
  return {
    'content-type': 'application/json',
    'x-agentpress-timestamp': String(now),
    'x-agentpress-signature': `sha256=${mac}`,
  }
}
let lastRotationBody // re-delivered (re-signed) throughout: a duplicate wherever it lands

// kind → [share, builder]; a builder returns the request and the statuses it may get.
const KINDS = {
  valid: [
    0.45,
    () => {
      const kid = active.kid
      return { auth: `Bearer ${token()}`, body: LIST, kid, keep: true }
    },
  ],
  replayed: [
    0.1,
    () => ({
      auth: `Bearer ${accepted[Math.floor(random() * accepted.length)]}`,
      body: LIST,
      expect: [401],
    }),
  ],
  forged: [0.1, () => ({ auth: `Bearer ${token({}, {}, attacker)}`, body: LIST, expect: [401] })],
  random_kid: [
    0.05,
    () => ({
      auth: `Bearer ${token({}, { kid: `kid-${randomUUID()}` }, attacker)}`,
      body: LIST,
      expect: [401],
    }),
  ],
  malformed: [
    0.1,
    () => ({
      auth: MALFORMED[Math.floor(random() * MALFORMED.length)](),
      body: LIST,
      expect: [400, 401],
    }),
  ],
  expired: [
    0.05,
    () => {
      const now = Math.floor(Date.now() / 1000)
      return {
        auth: `Bearer ${token({ iat: now - 600, exp: now - 120 })}`,
        body: LIST,
        expect: [401],
      }
    },
  ],
  missing_scope: [
    0.05,
    () => ({ auth: `Bearer ${token()}`, body: ADD, kid: active.kid, ok: 403, keep: true }),
  ],
  webhook_duplicate: [
    0.1,
    () => ({
      webhook: true,
      body: lastRotationBody,
      headers: signedDelivery(lastRotationBody),
      expect: [200],
    }),
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

const errors = {} // network errors by code, reported
const samples = [] // the first unexpected answers, reported
let keepAliveRetries = 0
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })
// Random-kid tokens are held by the verifier until a JWKS fetch that started after them (≤ one
// cooldown, §3): they get their own sockets and no CONCURRENCY slot (see the load loop).
const heldAgent = new Agent({ keepAlive: false }) // a fresh connection each: no reuse race with the server closing an idle one
function post(url, headers, body, retried = false, via = agent) {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: via,
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
        res.on('error', () => resolve(-1))
      },
    )
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.on('error', (error) => {
      // A kept-alive socket the server closed (its keepAliveTimeout) just as we reused it: the
      // request never reached the server; Node's documented answer is to send it again, once.
      if (!retried && req.reusedSocket && error.code === 'ECONNRESET') {
        keepAliveRetries++
        resolve(post(url, headers, body, true, via))
        return
      }
      errors[error.code ?? error.message] = (errors[error.code ?? error.message] ?? 0) + 1
      resolve(-1)
    })
    req.end(body)
  })
}

// A token of the active key gets `ok` (200, or 403 without the scope), unless an emergency
// rotation revoked its key: then 401 everywhere from REVOCATION_DEADLINE_MS after it on.
function expectedForKey(kid, ok, sentAt, doneAt) {
  const revoked = retiredAt.get(kid)
  if (revoked === undefined || doneAt < revoked) return [ok]
  if (sentAt > revoked + REVOCATION_DEADLINE_MS) return [401]
  return [ok, 401]
}

let turn = 0
async function send(kind, stats, acceptedAt) {
  const built = KINDS[kind][1]()
  const instance = instances[turn++ % instances.length]
  const sentAt = Date.now()
  const status = built.webhook
    ? await post(instance.webhook, built.headers, built.body)
    : await post(
        instance.mcp,
        {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: built.auth,
        },
        built.body,
        false,
        kind === 'random_kid' ? heldAgent : agent,
      )
  const doneAt = Date.now()
  const expect = built.expect ?? expectedForKey(built.kid, built.ok ?? 200, sentAt, doneAt)
  const s = (stats[kind] ??= { sent: 0, statuses: {}, unexpected: 0 })
  s.sent++
  s.statuses[status] = (s.statuses[status] ?? 0) + 1
  if (!expect.includes(status)) {
    s.unexpected++
    if (samples.length < 10) {
      const revoked = retiredAt.get(built.kid)
      samples.push({
        kind,
        status,
        expect,
        instance: (turn - 1) % instances.length,
        kid: built.kid,
        active: active.kid,
        sinceRevoked: revoked === undefined ? null : sentAt - revoked,
        keys: mock.keys.map((k) => k.kid),
      })
    }
  }
  // Every token that passed verification holds one replay key until exp + 30 s.
  if (built.keep && status === (built.ok ?? 200)) {
    acceptedAt.push(doneAt)
    if (status === 200) {
      accepted.push(built.auth.slice(7))
      if (accepted.length > 256) accepted.shift()
    }
  }
}

// ---- rotations: overlap and emergency in turn, each to one random instance
const rotations = { delivered: 0, refused: 0, emergency: 0, settleMs: [] }
async function relaysApplied() {
  const all = await Promise.all(instances.map((i) => i.ask('stats')))
  return all.reduce((n, m) => n + m.fleet.relaysApplied, 0)
}
async function rotate(index) {
  const emergency = index % 2 === 1
  const previous = active
  const event = mock.rotateKeys({ emergency })
  const next = mock.keys.at(-1)
  if (emergency) {
    retiredAt.set(previous.kid, Date.now())
    rotations.emergency++
  }
  const body = JSON.stringify(event)
  const target = instances[Math.floor(random() * instances.length)]
  const begun = Date.now()
  const status = await post(target.webhook, signedDelivery(body), body)
  if (status !== 200) {
    rotations.refused++
    return
  }
  rotations.delivered++
  lastRotationBody = body
  // The other two instances apply the relay; then AgentPress (here) signs with the new key.
  const goal = 2 * rotations.delivered
  while ((await relaysApplied()) < goal && Date.now() - begun < 5000) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  rotations.settleMs.push(Date.now() - begun)
  active = next
}

async function redisFigures() {
  const keyspace = await inspector.info('keyspace')
  const memory = await inspector.info('memory')
  const m = /keys=(\d+),expires=(\d+)/.exec(keyspace)
  return {
    keys: m ? Number(m[1]) : 0,
    expires: m ? Number(m[2]) : 0,
    usedMemory: Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? 0),
  }
}

// ---- run
const started = Date.now()
lastRotationBody = JSON.stringify(mock.rotateKeys())
{
  const first = await post(instances[0].webhook, signedDelivery(lastRotationBody), lastRotationBody)
  if (first !== 200) throw new Error(`first rotation delivery answered ${first}`)
  active = mock.keys.at(-1)
  rotations.delivered++
  while ((await relaysApplied()) < 2) await new Promise((resolve) => setTimeout(resolve, 5))
}
// warm-up
const acceptedAt = []
{
  const warm = {}
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = 0; i < 40; i++) await send('valid', warm, acceptedAt)
    }),
  )
}
const heapBefore = await Promise.all(instances.map((i) => i.ask('heap')))
const redisBefore = await redisFigures()
const stats = {}
const deadline = Date.now() + SECONDS * 1000
let redisMax = redisBefore
const sampler = setInterval(async () => {
  const figures = await redisFigures().catch(() => undefined)
  if (figures && figures.keys > redisMax.keys) redisMax = figures
}, 2000)
const held = new Set() // random-kid requests in flight, at most HELD_IN_FLIGHT (file descriptors)
const HELD_IN_FLIGHT = 256
const rotator = (async () => {
  for (let i = 0; Date.now() + ROTATION_MS < deadline; i++) {
    await new Promise((resolve) => setTimeout(resolve, ROTATION_MS))
    await rotate(i)
  }
})()
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < deadline) {
      const kind = pick()
      // A held random-kid request does not occupy this slot; every one is awaited below.
      if (kind !== 'random_kid') {
        await send(kind, stats, acceptedAt)
        continue
      }
      if (held.size >= HELD_IN_FLIGHT) await Promise.race(held)
      const pending = send(kind, stats, acceptedAt)
      held.add(pending)
      pending.finally(() => held.delete(pending))
    }
  }),
)
await Promise.all([...held])
await rotator
clearInterval(sampler)
// The end of the traffic, taken before the heap figures (each a full GC per instance, seconds on a
// loaded machine) and the key count: keys only expire meanwhile, so the bound below stays an
// upper bound (taken after them, the window of accepted tokens it counts would miss the last
// seconds of traffic whose keys are still there).
const end = Date.now()
const heapAfter = await Promise.all(instances.map((i) => i.ask('heap')))
const redisAfter = await redisFigures()
agent.destroy()
heldAgent.destroy()
await Promise.all(
  instances.map(
    (i) =>
      new Promise((resolve) => {
        i.child.once('exit', resolve)
        i.child.send({ type: 'stop' })
      }),
  ),
)
await inspector.close()
await redis.stop()
await mock.close()

// Keys one token lifetime (+ 30 s tolerance + 5 s slack) of accepted tokens can explain, plus the
// few that are not replay keys (revocations, processed markers).
const window = (TOKEN_LIFETIME_SEC + 30 + 5) * 1000
const keyBound = acceptedAt.filter((t) => t >= end - window).length + 100
const sent = Object.values(stats).reduce((n, s) => n + s.sent, 0)
const unexpected = Object.values(stats).reduce((n, s) => n + s.unexpected, 0)
const growth = heapAfter.map((h, i) => h.heap.heapUsed - heapBefore[i].heap.heapUsed)
const mb = (n) => `${(n / 1048576).toFixed(1)} MiB`
const checks = {
  'no status outside the expected set of its kind (no 5xx, no timeout)': unexpected === 0,
  [`every rotation answered 200 (${rotations.delivered} delivered)`]: rotations.refused === 0,
  [`heap growth after GC ≤ ${HEAP_MARGIN / 1048576} MiB on every instance`]: growth.every(
    (g) => g <= HEAP_MARGIN,
  ),
  'every Redis key has an expiry': redisAfter.keys === redisAfter.expires,
  [`Redis keys at the end ≤ ${keyBound} (accepted tokens of the last ${window / 1000} s + 100)`]:
    redisAfter.keys <= keyBound,
}
const result = {
  date: new Date().toISOString(),
  machine: `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, Node ${process.version}`,
  loadAverage1m: +os.loadavg()[0].toFixed(2),
  seconds: SECONDS,
  requests: sent,
  requestsPerSecond: Math.round(sent / SECONDS),
  byKind: stats,
  rotations: {
    ...rotations,
    settleMsMax: Math.max(0, ...rotations.settleMs),
    settleMs: undefined,
  },
  heapGrowthBytes: growth,
  redis: { before: redisBefore, max: redisMax, after: redisAfter, keyBound },
  elapsedSeconds: +((end - started) / 1000).toFixed(1),
  checks,
  pass: Object.values(checks).every(Boolean),
}
const lines = [
  `soak (fleet) ${result.date} — ${result.machine} (load average ${result.loadAverage1m} at the end)`,
  `3 instances + Redis, replay on: ${sent} requests in ${SECONDS} s (${result.requestsPerSecond} req/s), ` +
    `${rotations.delivered} rotations (${rotations.emergency} emergency), slowest fan-out settle ${result.rotations.settleMsMax} ms`,
  ...Object.entries(stats).map(
    ([kind, s]) =>
      `  ${kind.padEnd(18)} ${String(s.sent).padStart(6)}  ${Object.entries(s.statuses)
        .map(([c, n]) => `${c}×${n}`)
        .join(' ')}${s.unexpected ? `  UNEXPECTED ${s.unexpected}` : ''}`,
  ),
  `network errors: ${JSON.stringify(errors)}; resent after a closed kept-alive socket: ${keepAliveRetries}`,
  ...samples.map((x) => `  unexpected: ${JSON.stringify(x)}`),
  `heap growth after GC per instance: ${growth.map(mb).join(', ')}`,
  `Redis keys ${redisBefore.keys} → max ${redisMax.keys} → ${redisAfter.keys} (with expiry ${redisAfter.expires}); ` +
    `used memory ${mb(redisBefore.usedMemory)} → ${mb(redisAfter.usedMemory)}`,
  ...Object.entries(checks).map(([name, ok]) => `${ok ? 'PASS' : 'FAIL'}  ${name}`),
  result.pass ? 'soak (fleet): PASS' : 'soak (fleet): FAIL',
]
console.log(lines.join('\n'))
const out = path.join(here, '..', '.tmp', 'soak')
mkdirSync(out, { recursive: true })
writeFileSync(path.join(out, 'last-fleet-run.json'), `${JSON.stringify(result, null, 2)}\n`)
process.exitCode = result.pass ? 0 : 1
