// §5 in a Redis fleet: each org's webhook secret acts on its own org only, on every instance, not
// just the one AgentPress called. Two orgs A and B (two mock AgentPress, each secret bound to its
// issuer), instances as separate processes (`org-instance.mjs`) on one real redis-server. Both
// orgs publish a key under the same kid (kids are per-org names), so a revocation that reached
// the wrong org would refuse B's valid tokens. Before the fix, instance 1 stored and relayed the
// record of A's issuer-less emergency with issuer '' (every verifier), so instances 2 and 3
// revoked B's key; and a record MAC'd under A's secret was applied to whatever issuer it named.
import { expect } from 'chai'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import {
  createMockAgentPress,
  type MockAgentPress,
  type MockSigningKey,
} from 'passport-agentpress-partner/testing'
import { startRedis, type RedisServer } from '../support/redis.js'
import { eventually, inspector } from '../support/fleet.js'

const SCRIPT = fileURLToPath(new URL('./org-instance.mjs', import.meta.url))
const SECRET_A = 'whsec_orgAsecret0123456789abcdef00'
const SECRET_B = 'whsec_orgBsecret0123456789abcdef00'
const PREFIX = 'orgs'
const KEY = `${PREFIX}:revocations`

interface OrgInstance {
  readonly child: ChildProcess
  readonly url: string
  stderr: string
}

function startOrgInstance(redisUrl: string, orgs: readonly MockAgentPress[]): Promise<OrgInstance> {
  const config = {
    redisUrl,
    prefix: PREFIX,
    orgs: orgs.map((org, i) => ({
      partnerMcp: org.partnerMcp,
      secret: org.webhookSecret,
      label: `org-${'ab'[i]}`,
    })),
  }
  const child = spawn(process.execPath, [SCRIPT], {
    env: { PATH: process.env.PATH, ORG_INSTANCE: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`instance did not start within 30 s\n${stdout}\n${stderr}`))
    }, 30_000)
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk
      if (instance !== undefined) instance.stderr += chunk
    })
    let instance: OrgInstance | undefined
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk
      const match = /listening (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
      if (match && instance === undefined) {
        clearTimeout(timer)
        instance = { child, url: match[1]!, stderr }
        resolve(instance)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`instance exited with ${code}\n${stdout}\n${stderr}`))
    })
  })
}

function stopOrgInstance({ child }: OrgInstance): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Verifies `token` with the instance's verifier of org `org` (0: A, 1: B). */
async function verify(
  instance: OrgInstance,
  org: 0 | 1,
  token: string,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${instance.url}/verify/${org}`, {
    headers: { Authorization: `Bearer ${token}` },
  })
  return { status: res.status, body: await res.json() }
}

async function fleetOf(instance: OrgInstance): Promise<{
  state: string
  stats: Record<string, number>
}> {
  return (await (await fetch(`${instance.url}/fleet`)).json()) as {
    state: string
    stats: Record<string, number>
  }
}

// A record as the wire contract (§5, docs/fleet.md) defines it, MAC'd under `secret`.
function record(secret: string, issuer: string, kid: string, expiresAtMs: number): string {
  const input = JSON.stringify(['agentpress-partner/revocation/1', issuer, kid, expiresAtMs])
  const mac = createHmac('sha256', secret).update(input).digest('hex')
  return JSON.stringify({ issuer, kid, expiresAtMs, mac })
}

const REVOKED = { status: 401, body: { reason: 'kid_missing_or_unknown' } }

describe('a two-org fleet: each secret acts on its own org on every instance (processes)', function () {
  this.timeout(120_000)
  let redis: RedisServer
  let orgA: MockAgentPress
  let orgB: MockAgentPress
  let instances: OrgInstance[] = []
  // The kid both orgs publish a key under, and B's key behind it.
  let shared = ''
  let bKey: MockSigningKey

  const publishA = (keys: readonly MockSigningKey[]) =>
    orgA.setJwksDocument({ keys: keys.map((key) => key.publicJwk) })
  const tokenB = () => orgB.signToken({}, { kid: shared }) // signed by B's key, kid `shared`

  beforeEach(async () => {
    redis = await startRedis()
    orgA = await createMockAgentPress({ orgSlug: 'org-a', webhookSecret: SECRET_A })
    orgB = await createMockAgentPress({ orgSlug: 'org-b', webhookSecret: SECRET_B })
    shared = orgA.currentKid
    bKey = orgB.keys[0]!
    orgB.setJwksDocument({ keys: [{ ...bKey.publicJwk, kid: shared }] })
    instances = await Promise.all([0, 1].map(() => startOrgInstance(redis.url, [orgA, orgB])))
    for (const instance of instances) {
      expect(await verify(instance, 0, orgA.signToken())).to.deep.equal({
        status: 200,
        body: { iss: orgA.issuer },
      })
      expect(await verify(instance, 1, tokenB())).to.deep.equal({
        status: 200,
        body: { iss: orgB.issuer },
      })
    }
  })
  afterEach(async () => {
    await Promise.all(instances.map(stopOrgInstance))
    await orgA.close()
    await orgB.close()
    await redis.stop()
  })

  it("A's emergency naming no issuer, at instance 1: A's retired kid refused on instances 1, 2 and a late 3; B's key under the same kid accepted on all, B's JWKS fetched only by the late instance's cold start", async () => {
    const retiredToken = orgA.signToken() // kid `shared`, A's key
    const before = orgA.keys
    const { issuer: _issuer, ...event } = orgA.rotateKeys({ emergency: true })
    expect(event.retiredKid).to.equal(shared)
    // A keeps publishing the retired key: only the revocation can refuse it.
    publishA([...before, ...orgA.keys])
    const fetchesB = orgB.jwksRequestCount
    const relayed = (await fleetOf(instances[1]!)).stats.relaysApplied!

    const signed = orgA.signWebhook(event)
    const res = await fetch(`${instances[0]!.url}/webhook`, {
      method: 'POST',
      headers: signed.headers,
      body: signed.body,
    })
    expect({ status: res.status, body: await res.json() }).to.deep.equal({
      status: 200,
      body: { received: true },
    })
    await eventually(
      async () => (await fleetOf(instances[1]!)).stats.relaysApplied === relayed + 1,
      30_000,
    )

    const check = async (instance: OrgInstance, name: string) => {
      expect(await verify(instance, 0, retiredToken), name).to.deep.equal(REVOKED)
      expect(await verify(instance, 0, orgA.signToken()), name).to.deep.equal({
        status: 200,
        body: { iss: orgA.issuer },
      })
      expect(await verify(instance, 1, tokenB()), name).to.deep.equal({
        status: 200,
        body: { iss: orgB.issuer },
      })
    }
    for (const [i, instance] of instances.entries()) await check(instance, `instance ${i + 1}`)
    expect(orgB.jwksRequestCount).to.equal(fetchesB)
    // What the fleet stored names A's issuer, never '' (every verifier).
    const client = await inspector(redis.url)
    try {
      const stored = (await client.zRange(KEY, 0, -1)).map((text) => JSON.parse(text))
      expect(stored.map(({ issuer, kid }) => ({ issuer, kid }))).to.deep.equal([
        { issuer: orgA.issuer, kid: shared },
      ])
      // MAC'd under A's secret, the one that verified the delivery.
      const { expiresAtMs } = stored[0] as { expiresAtMs: number }
      expect(JSON.parse((await client.zRange(KEY, 0, -1))[0]!)).to.deep.equal(
        JSON.parse(record(SECRET_A, orgA.issuer, shared, expiresAtMs)),
      )
    } finally {
      await client.close()
    }

    instances.push(await startOrgInstance(redis.url, [orgA, orgB]))
    await check(instances[2]!, 'instance 3 (late)')
    // The late instance's one cold fetch of each org's JWKS, nothing more.
    expect(orgB.jwksRequestCount).to.equal(fetchesB + 1)
    const late = await fleetOf(instances[2]!)
    expect(late.state).to.equal('ready')
    expect(late.stats).to.include({ recordsApplied: 1, recordsRefused: 0 })
  })

  it("records MAC'd under A's secret never act on B: one naming B's issuer, one naming none (an older version's) are refused, stored or relayed, and said why", async () => {
    const expiresAtMs = Date.now() + 3_600_000
    const naming = record(SECRET_A, orgB.issuer, shared, expiresAtMs)
    const legacy = record(SECRET_A, '', shared, expiresAtMs)
    const fetchesB = orgB.jwksRequestCount
    const client = await inspector(redis.url)
    try {
      await client.zAdd(KEY, [
        { score: expiresAtMs, value: naming },
        { score: expiresAtMs, value: legacy },
      ])
      // Relayed too, beside a body that does not verify: only the records could act.
      await client.publish(
        `${PREFIX}:rotations`,
        JSON.stringify({
          origin: 'someone-with-secret-a',
          body: '',
          timestamp: '0',
          signature: '',
          revocations: [naming, legacy],
        }),
      )
    } finally {
      await client.close()
    }
    for (const instance of instances) {
      await eventually(async () => (await fleetOf(instance)).stats.relaysRefused === 1, 30_000)
    }
    for (const [i, instance] of instances.entries()) {
      expect(await verify(instance, 1, tokenB()), `instance ${i + 1}`).to.deep.equal({
        status: 200,
        body: { iss: orgB.issuer },
      })
    }
    expect(orgB.jwksRequestCount).to.equal(fetchesB)
    instances.push(await startOrgInstance(redis.url, [orgA, orgB]))
    for (const instance of instances) {
      expect(await verify(instance, 1, tokenB())).to.deep.equal({
        status: 200,
        body: { iss: orgB.issuer },
      })
      expect(await verify(instance, 0, orgA.signToken())).to.deep.equal({
        status: 200,
        body: { iss: orgA.issuer },
      })
      expect((await fleetOf(instance)).stats.recordsApplied).to.equal(0)
    }
    expect(orgB.jwksRequestCount).to.equal(fetchesB + 1) // the late instance's cold fetch
    const late = instances[2]!
    expect((await fleetOf(late)).stats.recordsRefused).to.equal(2)
    expect(late.stderr).to.include('names no issuer')
    expect(late.stderr).to.include('is not bound to')
  })

  it("a processed marker MAC'd under A's secret does not make B's delivery a duplicate; B's own does", async () => {
    const marker = (secret: string, id: string) =>
      createHmac('sha256', secret)
        .update(JSON.stringify(['agentpress-partner/processed/1', id]))
        .digest('hex')
    const client = await inspector(redis.url)
    const post = async (signed: { body: string; headers: Record<string, string> }) => {
      const res = await fetch(`${instances[1]!.url}/webhook`, {
        method: 'POST',
        headers: signed.headers,
        body: signed.body,
      })
      return { status: res.status, body: await res.json() }
    }
    try {
      const first = orgB.rotateKeys()
      await client.set(`${PREFIX}:processed:${first.id}`, marker(SECRET_A, first.id))
      const fetchesB = orgB.jwksRequestCount
      const relayed = (await fleetOf(instances[0]!)).stats.relaysApplied!
      expect(await post(orgB.signWebhook(first))).to.deep.equal({
        status: 200,
        body: { received: true },
      })
      // Processed in full: refreshed at instance 2, relayed and refreshed at instance 1.
      await eventually(
        async () => (await fleetOf(instances[0]!)).stats.relaysApplied === relayed + 1,
        30_000,
      )
      expect(orgB.jwksRequestCount).to.equal(fetchesB + 2)
      const second = orgB.rotateKeys()
      await client.set(`${PREFIX}:processed:${second.id}`, marker(SECRET_B, second.id))
      expect(await post(orgB.signWebhook(second))).to.deep.equal({
        status: 200,
        body: { received: true, duplicate: true },
      })
      expect(orgB.jwksRequestCount).to.equal(fetchesB + 2)
    } finally {
      await client.close()
    }
  })
})
