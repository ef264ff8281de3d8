// The fleet against a hanging JWKS and a Redis writer that lacks the webhook secret, as separate
// example-server processes on one real redis-server (issue 20): an emergency reaches the other
// instances in milliseconds while the issuer's JWKS hangs; junk and wrong-typed keys can neither
// hide a revocation nor leave an instance "ready" over a store it could not check; a late relay's
// record still revokes, and a stored record missed by every relay is picked up without a restart.
import { expect } from 'chai'
import {
  createMockAgentPress,
  type MockAgentPress,
  type MockSigningKey,
} from 'passport-agentpress-partner/testing'
import { startRedis, type RedisServer } from '../support/redis.js'
import { eventually, inspector } from '../support/fleet.js'
import {
  AUDIENCE,
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
import { signRevocation, revocationText } from '../../dist/core/key-rotation/fleet.js'
import { relayMessage } from '../../dist/redis/fleet-protocol.js'

const RECEIVED = { status: 200, retryAfter: null, body: '{"received":true}' }
const JWKS_UNAVAILABLE = {
  status: 503,
  retryAfter: '5',
  body: '{"error":"jwks_unavailable","error_description":"Signing keys unavailable"}',
}
const KEY = 'agentpress:revocations'

describe('the fleet against a hanging JWKS and a Redis writer without the secret (processes)', function () {
  this.timeout(240_000)
  let redis: RedisServer
  let mock: MockAgentPress
  let instances: Example[] = []
  const extra: Example[] = []
  // Every key ever published stays in the JWKS, so only a revocation can refuse a retired kid.
  const published: MockSigningKey['publicJwk'][] = []
  const publishAll = (): void => {
    for (const key of mock.keys) {
      if (!published.some((jwk) => jwk.kid === key.kid)) published.push(key.publicJwk)
    }
    mock.setJwksDocument({ keys: published })
  }
  // A token of the current kid, used once (200): afterwards REPLAYED until its kid is revoked,
  // then REVOKED (the kid is checked before the replay store) — a probe that costs no token.
  const usedToken = async (): Promise<string> => {
    const token = mock.signToken()
    expect((await mcp(instances[0]!, token)).status).to.equal(200)
    return token
  }
  // A normal rotation through instance 1: every instance refreshes and knows the new key.
  // Waited for by what it means — each instance accepts a token of the new key — not by the relay
  // counter: a relay that joins a refresh the hanging JWKS of an earlier test still holds settles
  // with that refresh's failure and is never counted (seen once on an idle Node 26), while the
  // instance learns the key on its next fetch all the same.
  const rotateEverywhere = async (): Promise<void> => {
    const event = mock.rotateKeys()
    publishAll()
    expect(await webhook(instances[0]!, mock.signWebhook(event))).to.deep.equal(RECEIVED)
    await Promise.all(
      instances.map((e) =>
        eventually(async () => (await mcp(e, mock.signToken())).status === 200, 60_000),
      ),
    )
  }
  const emergencyEverywhere = async (): Promise<string> => {
    const token = await usedToken()
    const event = mock.rotateKeys({ emergency: true })
    publishAll()
    expect(await webhook(instances[0]!, mock.signWebhook(event))).to.deep.equal(RECEIVED)
    for (const example of instances) {
      await eventually(async () => (await mcp(example, token)).challenge === REVOKED.challenge)
      expect(await mcp(example, token)).to.deep.equal(REVOKED)
    }
    return token
  }
  const junk = (count: number, from: number): string[] => {
    const soon = Date.now() + 600_000
    return Array.from({ length: count }, (_, i) =>
      JSON.stringify({
        issuer: mock.issuer,
        kid: `junk-${from + i}`,
        expiresAtMs: soon,
        mac: '0'.repeat(64),
      }),
    )
  }

  before(async () => {
    redis = await startRedis()
    mock = await createMockAgentPress({ audience: AUDIENCE })
    publishAll()
    instances = await Promise.all([0, 1, 2].map(() => startExample(mock, redis.url)))
  })
  after(async () => {
    mock.setJwksMode('ok')
    await Promise.all([...instances, ...extra].map(stopExample))
    await mock.close()
    await redis.stop()
  })

  it('JWKS hanging: 20 emergencies at instance 1 are refused by instances 2 and 3 within milliseconds; instance 1 answers 503 so AgentPress retries', async () => {
    const rounds = 20
    const kids: string[] = []
    const tokens: string[] = []
    for (let i = 0; i <= rounds; i++) {
      kids.push(mock.currentKid)
      tokens.push(mock.signToken())
      mock.rotateKeys()
      publishAll()
    }
    await rotateEverywhere()
    for (const [i, token] of tokens.entries()) {
      const answer = await mcp(instances[i % 3]!, token)
      expect(answer.status, `${i} ${answer.body}`).to.equal(200)
    }
    mock.setJwksMode('stall')
    const answers: Promise<Awaited<ReturnType<typeof webhook>>>[] = []
    const latencies: number[] = []
    try {
      for (let i = 0; i < rounds; i++) {
        const event = {
          id: `evt_hanging_${i}`,
          type: 'signing_key_rotation',
          issuer: mock.issuer,
          retiredKid: kids[i]!,
          newCurrentKid: kids[i + 1]!,
          emergency: true,
        }
        const start = performance.now()
        answers.push(webhook(instances[0]!, mock.signWebhook(event)))
        await Promise.all(
          [instances[1]!, instances[2]!].map(async (example) => {
            for (;;) {
              const answer = await mcp(example, tokens[i]!)
              if (answer.challenge === REVOKED.challenge) {
                latencies.push(performance.now() - start)
                return expect(answer).to.deep.equal(REVOKED)
              }
              expect(answer).to.deep.equal(REPLAYED)
              if (performance.now() - start > 3000) {
                throw new Error(`round ${i}: the retired kid is still accepted after 3 s`)
              }
            }
          }),
        )
        expect(await mcp(instances[0]!, tokens[i]!)).to.deep.equal(REVOKED)
      }
      // Each delivery waited for its refresh, which the hanging JWKS fails: 503, retried later.
      for (const answer of await Promise.all(answers)) {
        expect(answer).to.deep.equal(JWKS_UNAVAILABLE)
      }
    } finally {
      mock.setJwksMode('ok')
    }
    latencies.sort((x, y) => x - y)
    const p50 = percentile(latencies, 50)
    const p99 = percentile(latencies, 99)
    console.log(
      `      JWKS hanging, fan-out to refusal over ${latencies.length} samples (${rounds} rotations × 2 instances): p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    )
    // Generous for a loaded machine; before the fix every sample was jwksTimeoutMs (5 s).
    expect(p99).to.be.below(1000)
  })

  it('5,000 junk records expiring sooner than the genuine ones: a new instance refuses every revoked kid on its first request', async () => {
    mock.setJwksMode('ok')
    await rotateEverywhere()
    const revoked = [await emergencyEverywhere(), await emergencyEverywhere()]
    const client = await inspector(redis.url)
    try {
      const texts = junk(5000, 0)
      await client.sendCommand([
        'ZADD',
        KEY,
        ...texts.flatMap((t) => [String(Date.now() + 600_000), t]),
      ])
      const late = await startExample(mock, redis.url)
      extra.push(late)
      // Its very first requests: refused by the genuine records the junk could not push out.
      for (const token of revoked) expect(await mcp(late, token)).to.deep.equal(REVOKED)
      const ready = await readiness(late)
      expect(ready.status).to.equal(200)
      expect(ready.body).to.include({ state: 'ready', problem: null, recordsRefused: 5000 })
      expect(ready.body.recordsApplied).to.be.at.least(2)
    } finally {
      await client.close()
    }
  })

  it('more records than can be checked: a new instance does not start and says why, the running ones are not ready and say why; DEL repairs it', async () => {
    const client = await inspector(redis.url)
    try {
      const genuine = (await client.zRange(KEY, 0, -1)).filter(
        (t) => !t.includes('"kid":"junk-'),
      ).length
      const texts = junk(12_000, 10_000)
      // One command: the instances never see a part of it.
      const soon = String(Date.now() + 600_000)
      await client.sendCommand(['ZADD', KEY, ...texts.flatMap((t) => [soon, t])])
      const count = await client.zCard(KEY)
      expect(count).to.be.at.least(genuine + 12_000)
      const started = Date.now()
      const failure = await startExample(mock, redis.url).then(
        (example) => {
          extra.push(example)
          return undefined
        },
        (error: Error) => error.message,
      )
      expect(Date.now() - started).to.be.below(14_000)
      expect(failure).to.be.a('string')
      expect(failure).to.match(/example exited with 1/)
      expect(failure).to.include(
        `Cannot start: ${KEY} holds ${count} unexpired revocation records, more than the 10000`,
      )
      for (const example of instances) {
        await eventually(async () => (await readiness(example)).status === 503, 15_000)
        const { body } = await readiness(example)
        expect(body.state).to.equal('degraded')
        expect(body.problem).to.match(
          new RegExp(`^${KEY} holds ${count} unexpired revocation records`),
        )
      }
      expect(instances[0]!.stdout).to.include('fleet: degraded (agentpress:revocations holds')
      await client.del(KEY)
      for (const example of instances) {
        await eventually(async () => (await readiness(example)).status === 200, 15_000)
      }
      // The running instances wrote their genuine records back.
      expect(await client.zCard(KEY)).to.equal(genuine)
    } finally {
      await client.close()
    }
  })

  it('a wrong-typed key: relays still flow and the webhook still answers, every instance says degraded, a new one does not start and says why; DEL repairs it', async () => {
    const client = await inspector(redis.url)
    try {
      const genuine = await client.zCard(KEY)
      await client.del(KEY)
      await client.set(KEY, 'x')
      for (const example of instances) {
        await eventually(async () => (await readiness(example)).status === 503, 15_000)
        const { body } = await readiness(example)
        expect(body.state).to.equal('degraded')
        expect(body.problem).to.equal(
          `${KEY} holds a string, not the sorted set of revocation records: another writer changed it, so stored revocations can be neither read nor written. Delete it (DEL ${KEY}): the running instances write their records back`,
        )
      }
      // An emergency now: still 200 at instance 1, still refused everywhere within the bound.
      const token = await usedToken()
      const event = mock.rotateKeys({ emergency: true })
      publishAll()
      expect(await webhook(instances[0]!, mock.signWebhook(event))).to.deep.equal(RECEIVED)
      for (const example of instances) {
        await eventually(
          async () => (await mcp(example, token)).challenge === REVOKED.challenge,
          2000,
        )
      }
      const started = Date.now()
      const failure = await startExample(mock, redis.url).then(
        (example) => {
          extra.push(example)
          return undefined
        },
        (error: Error) => error.message,
      )
      expect(Date.now() - started).to.be.below(14_000)
      expect(failure).to.include(`Cannot start: ${KEY} holds a string, not the sorted set`)
      await client.del(KEY)
      for (const example of instances) {
        await eventually(async () => (await readiness(example)).status === 200, 15_000)
      }
      expect(await client.zCard(KEY)).to.equal(genuine + 1) // the new one too, held from its relay
      const late = await startExample(mock, redis.url)
      extra.push(late)
      expect(await mcp(late, token)).to.deep.equal(REVOKED)
    } finally {
      await client.close()
    }
  })

  it("a late relay's MAC-verified record still revokes; a stored record no relay brought is applied without a restart", async () => {
    await rotateEverywhere()
    const late = await usedToken()
    const kid = mock.currentKid
    // An instance whose clock is 400 s behind published it: the delivery is outside ±300 s.
    const event = {
      id: 'evt_late_relay',
      type: 'signing_key_rotation',
      issuer: mock.issuer,
      retiredKid: kid,
      newCurrentKid: 'ap-next',
      emergency: true,
    }
    const signed = mock.signWebhook(event, { timestamp: Math.floor(Date.now() / 1000) - 400 })
    const record = signRevocation(mock.webhookSecret, event.issuer, kid, Date.now() + 3_600_000)
    const client = await inspector(redis.url)
    try {
      const before = await Promise.all(instances.map(async (e) => (await readiness(e)).body))
      await client.publish(
        'agentpress:rotations',
        relayMessage(
          'an-instance-with-a-late-clock',
          {
            body: Buffer.from(signed.body),
            timestamp: signed.headers['X-AgentPress-Timestamp']!,
            signature: signed.headers['X-AgentPress-Signature']!,
          },
          [revocationText(record)],
        ),
      )
      for (const [i, example] of instances.entries()) {
        await eventually(
          async () =>
            (await readiness(example)).body.relaysRefused ===
            (before[i]!.relaysRefused as number) + 1,
        )
        expect(await mcp(example, late)).to.deep.equal(REVOKED)
      }

      // A record stored while its relay was lost: picked up by the periodic sync (5 s).
      await rotateEverywhere()
      const missed = await usedToken()
      const stored = signRevocation(
        mock.webhookSecret,
        mock.issuer,
        mock.currentKid,
        Date.now() + 3_600_000,
      )
      await client.zAdd(KEY, { score: stored.expiresAtMs, value: revocationText(stored) })
      for (const example of instances) {
        await eventually(
          async () => (await mcp(example, missed)).challenge === REVOKED.challenge,
          15_000,
        )
      }
    } finally {
      await client.close()
    }
  })
})
