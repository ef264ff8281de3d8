// Shared helpers of the benchmark: configuration knobs, statistics, the Ed25519 test identity and
// the token shapes every scenario verifies. Plain Node ESM so the bench measures the built dist/.
import { createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto'
import { newEd25519KeyPair } from '../../dist/testing/ed25519-key.js'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url))

function envNumber(name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0)
    throw new TypeError(`${name} must be a positive number`)
  return value
}

export const PHASES = ['core', 'http', 'cpu', 'pair', 'inproc', 'jwks', 'fleet']
export const DEFAULT_PHASES = ['core', 'http', 'inproc', 'jwks', 'fleet']

function phasesOf(raw) {
  if (raw === undefined || raw === '') return DEFAULT_PHASES
  const phases = raw.split(',').filter(Boolean)
  const unknown = phases.filter((p) => !PHASES.includes(p))
  if (unknown.length > 0)
    throw new TypeError(
      `BENCH_PHASES: unknown phase ${unknown.join(', ')} (known: ${PHASES.join(', ')})`,
    )
  return phases
}

/** Every knob of the bench, read once from the environment (the bench, not the library, may). */
export const config = Object.freeze({
  /** seconds of measured load per HTTP scenario and round */
  duration: envNumber('BENCH_DURATION', 5),
  /**
   * seconds of warm-up load per HTTP scenario and round (JIT + JWKS cache); after 1 s a fresh
   * server still spent 2–3 × its steady CPU per request for another 1–2 s (bench/README.md)
   */
  warmup: envNumber('BENCH_WARMUP', 3),
  /** rounds of every HTTP scenario; the table quotes medians */
  httpRounds: envNumber('BENCH_HTTP_ROUNDS', 5),
  /** concurrent connections of the load generator */
  connections: envNumber('BENCH_CONNECTIONS', 64),
  /** rounds of every core measurement */
  coreRounds: envNumber('BENCH_CORE_ROUNDS', 5),
  /** operations per core measurement */
  coreOps: envNumber('BENCH_CORE_OPS', 8000),
  /** operations per cheap-rejection measurement */
  rejectOps: envNumber('BENCH_REJECT_OPS', 20000),
  /** concurrent requests of the JWKS cold-start test */
  coldConcurrency: envNumber('BENCH_COLD_CONCURRENCY', 500),
  /** requests of the JWKS random-kid test */
  randomKidRequests: envNumber('BENCH_RANDOM_KID_REQUESTS', 10000),
  /**
   * a run whose speed probe (bench/http/server.mjs) is more than this share slower than the
   * fastest probe of its phase ran on a slowed CPU and is repeated (at most twice)
   */
  slowLimit: envNumber('BENCH_SLOW_LIMIT', 0.1),
  /** seconds after the start past which the bench stops waiting for quiet CPUs and repeating runs */
  patienceSec: envNumber('BENCH_PATIENCE', 150),
  /** comma-separated subset of HTTP scenario ids (default: all) */
  only: (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean),
  /**
   * comma-separated phases to run: core,http,cpu,inproc,jwks,fleet (default: all but `cpu`, whose
   * scenarios `http` already measures)
   */
  phases: phasesOf(process.env.BENCH_PHASES),
  /** rounds of each pair of the paired CPU phase (two servers loaded at once on one CPU) */
  pairRounds: envNumber('BENCH_PAIR_ROUNDS', 8),
  /** rounds of the in-process CPU phase */
  inprocRounds: envNumber('BENCH_INPROC_ROUNDS', 9),
  /** processes the in-process CPU phase spreads its rounds over (each a fresh JIT; ≤ its rounds) */
  inprocProcesses: Math.min(
    envNumber('BENCH_INPROC_PROCESSES', 3),
    envNumber('BENCH_INPROC_ROUNDS', 9),
  ),
  /** requests per scenario and round of the in-process CPU phase */
  inprocOps: envNumber('BENCH_INPROC_OPS', 4000),
  /** requests of one scenario before the in-process phase turns to the next (the interleave) */
  inprocSlice: Math.ceil(envNumber('BENCH_INPROC_SLICE', 250)),
  /** emergency rotations of the fleet phase (fan-out latency across 3 processes) */
  fleetRotations: envNumber('BENCH_FLEET_ROTATIONS', 30),
})

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Whether `taskset -c <cpu>` can pin a process here; the bench falls back to unpinned runs. */
export function canPin() {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' })
    execFileSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** argv prefix running `node` on one CPU when pinning works */
export function pinnedNode(cpu, pin) {
  return pin ? ['taskset', ['-c', String(cpu), process.execPath]] : [process.execPath, []]
}

// ---------------------------------------------------------------------------------------------
// The bench identity: one Ed25519 key published in a JWKS, one issuer, one audience, one partner.

export const KID = 'bench-2026-01'
export const AUDIENCE = 'https://mcp.bench-partner.example/mcp'
export const EXT_PROVIDER = 'bench-partner'
export const ORG_PATH = '/orgs/bench-org'
/** Token lifetime: the wire contract maximum, so the pool outlives any scenario. */
export const LIFETIME_SEC = 600

export function createIdentity() {
  const { privateKey, publicKey } = newEd25519KeyPair()
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: KID, use: 'sig', alg: 'EdDSA' }
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicJwk: jwk,
  }
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Signs tokens with a private key; every token gets its own `jti`, so no two are equal. */
export function createSigner(privateKeyPem, issuer) {
  const key = createPrivateKey(privateKeyPem)
  const header = b64({ alg: 'EdDSA', kid: KID, typ: 'JWT' })
  const run = randomBytes(6).toString('hex')
  return function signToken(index, overrides = {}) {
    const iat = Math.floor(Date.now() / 1000)
    const payload = b64({
      iss: issuer,
      aud: AUDIENCE,
      sub: `user-${index % 1000}`,
      jti: `${run}-${index}`,
      scope: 'mcp:tools settings:read',
      ext_provider: EXT_PROVIDER,
      iat,
      exp: iat + LIFETIME_SEC,
      ...overrides,
    })
    const input = `${header}.${payload}`
    return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`
  }
}

/** A token that is well formed and claims the right issuer but names a random kid. */
export function randomKidToken(issuer, index) {
  const iat = Math.floor(Date.now() / 1000)
  const header = b64({ alg: 'EdDSA', kid: `rnd-${randomBytes(8).toString('hex')}`, typ: 'JWT' })
  const payload = b64({
    iss: issuer,
    aud: AUDIENCE,
    sub: 'user-x',
    jti: `rk-${index}`,
    scope: 'mcp:tools',
    ext_provider: EXT_PROVIDER,
    iat,
    exp: iat + 60,
  })
  return `${header}.${payload}.${randomBytes(64).toString('base64url')}`
}

export function publicKeyObject(jwk) {
  return createPublicKey({ key: jwk, format: 'jwk' })
}

export const fmtInt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
export const fmtRatio = (n) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')
export const fmtFixed = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a')
