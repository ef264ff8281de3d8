// Several instances are several processes: the example MCP server started three (then four)
// times against one real redis-server and one mock AgentPress, as a partner runs it behind a load
// balancer (REDIS_URL set, replay on). Bounded: every child is killed by its process id.
import { expect } from 'chai'
import {
  computeWebhookSignature,
  createMockAgentPress,
  type MockAgentPress,
  type MockSigningKey,
} from 'passport-agentpress-partner/testing'
import { startRedis, type RedisServer } from '../support/redis.js'
import { eventually, inspector } from '../support/fleet.js'
import {
  AUDIENCE,
  REPLAY_UNAVAILABLE,
  REPLAYED,
  REVOKED,
  mcp,
  percentile,
  readiness,
  startExample,
  stopExample,
  webhook,
  type Example,
} from '../support/fleet-processes.js'

describe('a fleet of example-server processes on one Redis', function () {
  this.timeout(60_000)
  let redis: RedisServer
  let mock: MockAgentPress
  let instances: Example[] = []
  // Every key ever published stays in the JWKS, so only a revocation can refuse a retired kid.
  const published: MockSigningKey['publicJwk'][] = []
  // One token per retired key, minted while the mock still had that key.
  const retiredTokens: { kid: string; tokens: string[] }[] = []

  const publishAll = () => {
    for (const key of mock.keys) {
      if (!published.some((jwk) => jwk.kid === key.kid)) published.push(key.publicJwk)
    }
    mock.setJwksDocument({ keys: published })
  }

  before(async () => {
    redis = await startRedis()
    mock = await createMockAgentPress({ audience: AUDIENCE })
    publishAll()
    instances = await Promise.all([0, 1, 2].map(() => startExample(mock, redis.url)))
  })
  after(async () => {
    await Promise.all(instances.map(stopExample))
    await mock.close()
    await redis.stop()
  })

  it('every instance is ready and accepts a fresh token', async () => {
    for (const example of instances) {
      expect((await readiness(example)).status).to.equal(200)
      expect((await mcp(example, mock.signToken())).status).to.equal(200)
    }
  })

  it('replay on: a token accepted by instance 1 is 401 token_replayed at instance 3', async () => {
    const token = mock.signToken()
    expect((await mcp(instances[0]!, token)).status).to.equal(200)
    expect(await mcp(instances[2]!, token)).to.deep.equal(REPLAYED)
    expect(await mcp(instances[1]!, token)).to.deep.equal(REPLAYED)
  })

  it('1,000 concurrent requests with the same token across the three: exactly one 200', async () => {
    const token = mock.signToken()
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => mcp(instances[i % 3]!, token)),
    )
    const ok = answers.filter((a) => a.status === 200)
    expect(ok).to.have.length(1)
    const others = answers.filter((a) => a.status !== 200)
    expect(others).to.have.length(999)
    for (const answer of others) expect(answer).to.deep.equal(REPLAYED)
  })

  it('20 emergency rotations at instance 1: instances 2 and 3 refuse the retired kid within 1 s, new keys accepted everywhere', async () => {
    const latencies: number[] = []
    let newKeyFailures = 0
    for (let round = 0; round < 20; round++) {
      const kid = mock.currentKid
      const probes = Array.from({ length: 400 }, () => mock.signToken())
      retiredTokens.push({ kid, tokens: Array.from({ length: 8 }, () => mock.signToken()) })
      const event = mock.rotateKeys({ emergency: true })
      publishAll()
      const start = performance.now()
      const delivered = await webhook(instances[0]!, mock.signWebhook(event))
      expect(delivered).to.deep.equal({ status: 200, retryAfter: null, body: '{"received":true}' })
      expect(await mcp(instances[0]!, probes.pop()!)).to.deep.equal(REVOKED)
      await Promise.all(
        [instances[1]!, instances[2]!].map(async (example) => {
          for (;;) {
            const token = probes.pop()
            if (token === undefined) throw new Error('retired kid still accepted after 400 probes')
            const answer = await mcp(example, token)
            if (answer.status === 401) {
              expect(answer).to.deep.equal(REVOKED)
              latencies.push(performance.now() - start)
              return
            }
            expect(answer.status).to.equal(200)
          }
        }),
      )
      for (const example of instances) {
        if ((await mcp(example, mock.signToken())).status !== 200) newKeyFailures++
      }
    }
    latencies.sort((x, y) => x - y)
    const p50 = percentile(latencies, 50)
    const p99 = percentile(latencies, 99)
    console.log(
      `      fan-out to refusal over ${latencies.length} samples (20 rotations × 2 instances): p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    )
    expect(newKeyFailures).to.equal(0)
    expect(p99).to.be.below(1000)
  })

  it('forged relay and forged record (no webhook secret) change nothing; a late instance refuses retired kids on its first request', async () => {
    const client = await inspector(redis.url)
    try {
      const current = mock.currentKid
      const body = JSON.stringify({
        id: 'forged-relay',
        type: 'signing_key_rotation',
        issuer: mock.issuer,
        retiredKid: current,
        newCurrentKid: 'attacker',
        emergency: true,
      })
      const ts = Math.floor(Date.now() / 1000)
      await client.publish(
        'agentpress:rotations',
        JSON.stringify({
          origin: 'attacker',
          body: Buffer.from(body).toString('base64'),
          timestamp: String(ts),
          signature: computeWebhookSignature('whsec_attackerdoesnotknowit000', ts, body),
        }),
      )
      const far = Date.now() + 3_600_000
      await client.zAdd('agentpress:revocations', {
        score: far,
        value: JSON.stringify({
          issuer: mock.issuer,
          kid: current,
          expiresAtMs: far,
          mac: 'ab'.repeat(32),
        }),
      })
      for (const example of instances) {
        await eventually(async () => (await readiness(example)).body.relaysRefused === 1)
        expect((await mcp(example, mock.signToken())).status).to.equal(200)
      }
      const late = await startExample(mock, redis.url)
      instances.push(late)
      // Its very first request: a retired kid the JWKS still lists, refused by the stored record.
      expect(await mcp(late, retiredTokens[0]!.tokens.pop()!)).to.deep.equal(REVOKED)
      for (const { tokens } of retiredTokens.slice(1)) {
        expect(await mcp(late, tokens.pop()!)).to.deep.equal(REVOKED)
      }
      expect((await mcp(late, mock.signToken())).status).to.equal(200)
      const ready = await readiness(late)
      expect(ready.status).to.equal(200)
      expect(ready.body).to.include({ state: 'ready', recordsApplied: 20, recordsRefused: 1 })
    } finally {
      await client.close()
    }
  })

  it('Redis stopped: replay 503 + Retry-After everywhere, webhooks 503; Redis back empty: revocations republished, everything recovers without a restart', async () => {
    const pending = Array.from({ length: 40 }, () => mock.signToken())
    const event = mock.rotateKeys({ emergency: true })
    publishAll()
    const signed = mock.signWebhook(event)
    await redis.stop()
    for (const example of instances) {
      for (let i = 0; i < 3; i++) {
        expect(await mcp(example, mock.signToken())).to.deep.equal(REPLAY_UNAVAILABLE)
      }
      expect((await readiness(example)).status).to.equal(503)
    }
    const refused = await webhook(instances[1]!, signed)
    expect(refused).to.deep.equal({
      status: 503,
      retryAfter: '5',
      body: '{"error":"fleet_unavailable","error_description":"Fleet unavailable"}',
    })
    await redis.restart() // empty: no persistence
    for (const example of instances) {
      await eventually(async () => (await readiness(example)).status === 200, 10_000)
    }
    const client = await inspector(redis.url)
    try {
      // Republished by the running instances: all 20 earlier revocations are back.
      expect(await client.zCard('agentpress:revocations')).to.equal(20)
    } finally {
      await client.close()
    }
    // AgentPress's retry is processed in full and fanned out.
    expect(await webhook(instances[1]!, signed)).to.deep.equal({
      status: 200,
      retryAfter: null,
      body: '{"received":true}',
    })
    for (const example of instances) {
      await eventually(async () => (await mcp(example, pending.pop()!)).status === 401, 2000)
      for (const { tokens } of retiredTokens.slice(-3)) {
        expect(await mcp(example, tokens.pop()!)).to.deep.equal(REVOKED)
      }
      expect((await mcp(example, mock.signToken())).status).to.equal(200)
    }
  })
})
