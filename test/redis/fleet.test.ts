// The Redis fleet inside one process, on a real redis-server: replay rejection, relays re-verified
// with the webhook secret, MAC'd revocation records, ack semantics, shared processed ids and the
// connection faults (Redis stopped, restarted empty). The several-process answers are in
// instances.test.ts.
import { expect } from 'chai'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { createClient } from 'redis'
import { PartnerTokenVerifier, createKeyRotationRouter } from 'passport-agentpress-partner'
import {
  DIAGNOSTICS_CHANNELS,
  type FleetConnectionMessage,
} from 'passport-agentpress-partner/diagnostics'
import { createRedisFleet } from 'passport-agentpress-partner/redis'
import {
  computeWebhookSignature,
  createMockAgentPress,
  type MockAgentPress,
} from 'passport-agentpress-partner/testing'
import { startRedis, type RedisServer } from '../support/redis.js'
import { closedPort } from '../support/servers.js'
import { flipChar, parts } from '../support/tokens.js'
import {
  REPLAYED,
  REVOKED,
  call,
  eventually,
  inspector,
  post,
  startInstance,
  type Instance,
} from '../support/fleet.js'

const OK = (sub = 'user-123') => ({
  status: 200,
  challenge: null,
  retryAfter: null,
  body: { sub },
})
const RECEIVED = { status: 200, challenge: null, retryAfter: null, body: { received: true } }
const DUPLICATE = {
  status: 200,
  challenge: null,
  retryAfter: null,
  body: { received: true, duplicate: true },
}
const REPLAY_UNAVAILABLE = {
  status: 503,
  challenge: null,
  retryAfter: '5',
  body: { error: 'replay_unavailable', error_description: 'Replay check unavailable' },
}
const FLEET_UNAVAILABLE = {
  status: 503,
  challenge: null,
  retryAfter: '5',
  body: { error: 'fleet_unavailable', error_description: 'Fleet unavailable' },
}

function tamper(token: string): string {
  const [h, p, s] = parts(token)
  return `${h}.${p}.${flipChar(s, 3)}`
}

describe('Redis fleet (one process, real redis-server)', function () {
  this.timeout(30_000)
  let redis: RedisServer
  let mock: MockAgentPress
  let a: Instance
  let b: Instance
  let prefix = ''
  let n = 0

  before(async () => {
    redis = await startRedis()
  })
  after(async () => {
    await redis.stop()
  })
  beforeEach(async () => {
    mock = await createMockAgentPress()
    prefix = `t${++n}`
    a = await startInstance(mock, { url: redis.url, prefix })
    b = await startInstance(mock, { url: redis.url, prefix })
  })
  afterEach(async () => {
    await a.close()
    await b.close()
    await mock.close()
  })

  describe('replay rejection', () => {
    it('a token accepted by one instance is 401 token_replayed at the other, with the exact challenge', async () => {
      const token = mock.signToken()
      expect(await call(a.url, token)).to.deep.equal(OK())
      expect(await call(b.url, token)).to.deep.equal(REPLAYED)
      expect(await call(a.url, token)).to.deep.equal(REPLAYED)
      // A fresh token (its own jti), as AgentPress mints per request, is accepted anywhere.
      expect(await call(b.url, mock.signToken())).to.deep.equal(OK())
    })

    it('one SET NX PX key per accepted token, namespaced by prefix and issuer, expiring at exp + tolerance', async () => {
      const client = await inspector(redis.url)
      try {
        const exp = Math.floor(Date.now() / 1000) + 60
        const token = mock.signToken({ jti: 'jti-one', exp })
        const sent = Date.now()
        await call(a.url, token)
        const key = `${prefix}:replay:${encodeURIComponent(mock.issuer)}:jti-one`
        expect(await client.keys(`${prefix}:replay:*`)).to.deep.equal([key])
        const ttl = await client.pTTL(key)
        // exp + 30 s tolerance, measured from now.
        expect(ttl).to.be.within((exp + 30) * 1000 - Date.now() - 2000, (exp + 30) * 1000 - sent)
      } finally {
        await client.close()
      }
    })

    it('a forged or refused token never touches the store', async () => {
      const client = await inspector(redis.url)
      try {
        const forged = tamper(mock.signToken())
        expect((await call(a.url, forged)).status).to.equal(401)
        expect(
          (await call(a.url, mock.signToken({ aud: 'https://elsewhere.example/mcp' }))).status,
        ).to.equal(401)
        expect(
          (await call(a.url, mock.signToken({ exp: Math.floor(Date.now() / 1000) - 600 }))).status,
        ).to.equal(401)
        expect(await client.keys(`${prefix}:replay:*`)).to.deep.equal([])
      } finally {
        await client.close()
      }
    })

    it('Redis stopped: 503 + Retry-After (never 200, never 401); Redis back: accepted again, no restart', async () => {
      const seen: FleetConnectionMessage[] = []
      const listener = (message: unknown) => seen.push(message as FleetConnectionMessage)
      subscribe(DIAGNOSTICS_CHANNELS.fleetConnection, listener)
      after(() => unsubscribe(DIAGNOSTICS_CHANNELS.fleetConnection, listener))
      const token = mock.signToken()
      await redis.stop()
      for (let i = 0; i < 5; i++) {
        expect(await call(a.url, mock.signToken())).to.deep.equal(REPLAY_UNAVAILABLE)
      }
      // The token was never recorded: after the outage it is still its first use.
      expect(await call(b.url, token)).to.deep.equal(REPLAY_UNAVAILABLE)
      expect(a.fleet.state).to.equal('reconnecting')
      await redis.restart()
      await eventually(() => a.fleet.state === 'ready' && b.fleet.state === 'ready')
      expect(await call(b.url, token)).to.deep.equal(OK())
      expect(await call(a.url, token)).to.deep.equal(REPLAYED)
      // Both instances told the diagnostics channel: lost (with the socket's reason), then back.
      unsubscribe(DIAGNOSTICS_CHANNELS.fleetConnection, listener)
      expect(seen.filter((m) => m.state === 'reconnecting')).to.have.length(2)
      for (const m of seen.filter((m) => m.state === 'reconnecting')) {
        expect(m).to.include({ backend: 'redis', attempt: 1 })
        expect(m.reason).to.be.a('string')
      }
      expect(seen.filter((m) => m.state === 'connected')).to.deep.equal([
        { backend: 'redis', state: 'connected', reason: null, attempt: 0 },
        { backend: 'redis', state: 'connected', reason: null, attempt: 0 },
      ])
    })
  })

  describe('rotation fan-out', () => {
    it('an emergency delivered to one instance revokes the retired kid on the other, which refreshes once', async () => {
      const oldToken = () => mock.signToken()
      expect(await call(b.url, oldToken())).to.deep.equal(OK())
      const before = mock.jwksRequestCount
      // Keep the retired key published: only the relayed revocation can refuse it at B.
      const retiredJwk = mock.keys[0]!.publicJwk
      const old = [oldToken(), oldToken()]
      const event = mock.rotateKeys({ emergency: true })
      mock.setJwksDocument({ keys: [retiredJwk, ...mock.keys.map((k) => k.publicJwk)] })
      expect(await post(a.url, mock.signWebhook(event))).to.deep.equal(RECEIVED)
      await eventually(() => b.fleet.stats.relaysApplied === 1)
      expect(await call(b.url, old[0]!)).to.deep.equal(REVOKED)
      expect(await call(a.url, old[1]!)).to.deep.equal(REVOKED)
      expect(await call(b.url, mock.signToken())).to.deep.equal(OK())
      // A refreshed, B refreshed on the relay: one fetch each.
      await eventually(() => mock.jwksRequestCount === before + 2)
      expect(a.fleet.stats.relaysApplied).to.equal(0) // its own publish is not applied twice
    })

    it('a relay whose JWKS refresh fails here still revokes, counted as relaysFailed, reported once', async () => {
      const errors: Error[] = []
      // A third instance whose JWKS URL refuses connections: its refresh on the relay fails.
      const jwksDown = `http://127.0.0.1:${await closedPort()}/.well-known/jwks.json`
      const c = await startInstance(
        mock,
        { url: redis.url, prefix, onError: (error) => errors.push(error) },
        { jwksUrl: jwksDown },
      )
      try {
        const old = mock.signToken()
        const event = mock.rotateKeys({ emergency: true })
        expect(await post(a.url, mock.signWebhook(event))).to.deep.equal(RECEIVED)
        await eventually(
          () => c.fleet.stats.relaysFailed === 1 && b.fleet.stats.relaysApplied === 1,
        )
        expect(c.fleet.stats).to.include({ relaysApplied: 0, relaysFailed: 1, relaysRefused: 0 })
        expect(b.fleet.stats).to.include({ relaysApplied: 1, relaysFailed: 0, relaysRefused: 0 })
        expect(errors).to.have.length(1)
        expect(errors[0]!.message).to.equal(
          `relayed key rotation ${event.id} (${event.issuer}) not applied in full here: jwks_unavailable (the retired kid is revoked)`,
        )
        // The revocation stands at C without its keys: the retired kid is refused as revoked (401),
        // the new one cannot be checked there (503, never 401).
        expect(await call(c.url, old)).to.deep.equal(REVOKED)
        expect((await call(c.url, mock.signToken())).status).to.equal(503)
      } finally {
        await c.close()
      }
    })

    it('a retry landing on another instance is a duplicate there, without another fetch', async () => {
      const event = mock.rotateKeys()
      const signed = mock.signWebhook(event)
      const before = mock.jwksRequestCount
      expect(await post(a.url, signed)).to.deep.equal(RECEIVED)
      // A refreshed, then B on the relay.
      await eventually(() => mock.jwksRequestCount === before + 2)
      const fetches = mock.jwksRequestCount
      expect(await post(b.url, signed)).to.deep.equal(DUPLICATE)
      expect(await post(a.url, signed)).to.deep.equal(DUPLICATE)
      expect(mock.jwksRequestCount).to.equal(fetches)
    })

    it('a third instance whose retry arrives first learns the id from Redis: duplicate, no fetch', async () => {
      const event = mock.rotateKeys()
      const signed = mock.signWebhook(event)
      const before = mock.jwksRequestCount
      expect(await post(a.url, signed)).to.deep.equal(RECEIVED)
      await eventually(() => mock.jwksRequestCount === before + 2)
      const late = await startInstance(mock, { url: redis.url, prefix })
      try {
        const fetches = mock.jwksRequestCount
        expect(await post(late.url, signed)).to.deep.equal(DUPLICATE)
        expect(mock.jwksRequestCount).to.equal(fetches)
      } finally {
        await late.close()
      }
    })

    it('publish impossible: 503 + Retry-After, and the retry after Redis returns is processed in full', async () => {
      const retired = mock.currentKid
      const old = mock.signToken()
      const event = mock.rotateKeys({ emergency: true })
      const signed = mock.signWebhook(event)
      await redis.stop()
      expect(await post(a.url, signed)).to.deep.equal(FLEET_UNAVAILABLE)
      expect(await post(a.url, signed)).to.deep.equal(FLEET_UNAVAILABLE)
      // Applied locally all the same: A refuses the retired kid at once.
      await redis.restart()
      await eventually(() => a.fleet.state === 'ready' && b.fleet.state === 'ready')
      const fetches = mock.jwksRequestCount
      expect(await post(a.url, signed)).to.deep.equal(RECEIVED)
      expect(mock.jwksRequestCount).to.be.greaterThan(fetches) // refreshed again: in full
      await eventually(() => b.fleet.stats.relaysApplied === 1)
      const client = await inspector(redis.url)
      try {
        const records = await client.zRange(`${prefix}:revocations`, 0, -1)
        expect(records.map((r) => JSON.parse(r).kid)).to.deep.equal([retired])
        expect(await client.get(`${prefix}:processed:${event.id}`)).to.match(/^[0-9a-f]{64}$/)
      } finally {
        await client.close()
      }
      expect(await call(b.url, old)).to.deep.equal(REVOKED)
    })

    it('JWKS down during an emergency: 503 at the origin, yet the revocation reaches every instance; the retry is processed in full', async () => {
      const old = [mock.signToken(), mock.signToken()]
      expect(await call(b.url, mock.signToken())).to.deep.equal(OK()) // B has the key cached
      const event = mock.rotateKeys({ emergency: true })
      const signed = mock.signWebhook(event)
      mock.setJwksMode('error')
      expect(await post(a.url, signed)).to.deep.equal({
        status: 503,
        challenge: null,
        retryAfter: '5',
        body: { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
      })
      // B's refresh fails too: the relay is counted as failed there, its revocation stands.
      await eventually(() => b.fleet.stats.relaysFailed === 1)
      expect(b.fleet.stats.relaysApplied).to.equal(0)
      expect(await call(b.url, old[0]!)).to.deep.equal(REVOKED)
      const client = await inspector(redis.url)
      try {
        expect(await client.get(`${prefix}:processed:${event.id}`)).to.equal(null)
        const records = await client.zRange(`${prefix}:revocations`, 0, -1)
        expect(records.map((r) => JSON.parse(r).kid)).to.deep.equal([event.retiredKid])
      } finally {
        await client.close()
      }
      mock.setJwksMode('ok')
      // AgentPress retries at B: not a duplicate there (no marker), processed in full.
      const fetches = mock.jwksRequestCount
      expect(await post(b.url, signed)).to.deep.equal(RECEIVED)
      expect(mock.jwksRequestCount).to.be.greaterThan(fetches)
      expect(await call(a.url, old[1]!)).to.deep.equal(REVOKED)
      expect(await call(a.url, mock.signToken())).to.deep.equal(OK())
    })

    it('Redis restarted empty: the running instances republish the revocations they hold', async () => {
      const event = mock.rotateKeys({ emergency: true })
      expect(await post(a.url, mock.signWebhook(event))).to.deep.equal(RECEIVED)
      await eventually(() => b.fleet.stats.relaysApplied === 1)
      await redis.restart() // empty: no persistence
      await eventually(() => a.fleet.state === 'ready' && b.fleet.state === 'ready')
      const client = await inspector(redis.url)
      try {
        const records = await client.zRange(`${prefix}:revocations`, 0, -1)
        expect(records.map((r) => JSON.parse(r).kid)).to.deep.equal([event.retiredKid])
      } finally {
        await client.close()
      }
      // And an instance started now still learns it.
      const late = await startInstance(mock, { url: redis.url, prefix })
      try {
        expect(late.fleet.stats.recordsApplied).to.equal(1)
      } finally {
        await late.close()
      }
    })
  })

  describe('nothing written into Redis without the webhook secret changes anything', () => {
    it('a forged relay (wrong secret, stale timestamp, garbage) is refused by every receiver', async () => {
      const client = await inspector(redis.url)
      try {
        const current = mock.currentKid
        const body = JSON.stringify({
          id: 'forged-1',
          type: 'signing_key_rotation',
          issuer: mock.issuer,
          retiredKid: current,
          newCurrentKid: 'attacker',
          emergency: true,
        })
        const now = Math.floor(Date.now() / 1000)
        const envelope = (timestamp: number, secret: string) =>
          JSON.stringify({
            origin: 'x',
            body: Buffer.from(body).toString('base64'),
            timestamp: String(timestamp),
            signature: computeWebhookSignature(secret, timestamp, body),
          })
        const fetches = mock.jwksRequestCount
        await client.publish(`${prefix}:rotations`, envelope(now, 'whsec_notthesecretatall000'))
        // Signed with the real secret, but captured long ago: outside the ±300 s window.
        await client.publish(`${prefix}:rotations`, envelope(now - 400, mock.webhookSecret))
        await client.publish(`${prefix}:rotations`, '{"origin":1}')
        await client.publish(`${prefix}:rotations`, 'not json')
        await eventually(
          () => a.fleet.stats.relaysRefused === 4 && b.fleet.stats.relaysRefused === 4,
        )
        expect(a.fleet.stats.relaysApplied + b.fleet.stats.relaysApplied).to.equal(0)
        expect(mock.jwksRequestCount).to.equal(fetches)
        expect(await call(a.url, mock.signToken())).to.deep.equal(OK())
        expect(await call(b.url, mock.signToken())).to.deep.equal(OK())
      } finally {
        await client.close()
      }
    })

    it('forged revocation records and processed markers are ignored', async () => {
      const client = await inspector(redis.url)
      try {
        const far = Date.now() + 3_600_000
        const record = { issuer: mock.issuer, kid: mock.currentKid, expiresAtMs: far }
        await client.zAdd(`${prefix}:revocations`, [
          { score: far, value: JSON.stringify({ ...record, mac: 'ab'.repeat(32) }) },
          { score: far, value: JSON.stringify({ ...record, issuer: '', mac: '00'.repeat(32) }) },
          { score: far, value: 'garbage' },
        ])
        const event = mock.rotateKeys()
        await client.set(`${prefix}:processed:${event.id}`, 'ab'.repeat(32))
        const late = await startInstance(mock, { url: redis.url, prefix })
        try {
          expect(late.fleet.stats.recordsRefused).to.equal(3)
          expect(late.fleet.stats.recordsApplied).to.equal(0)
          expect(await call(late.url, mock.signToken())).to.deep.equal(OK())
          // The forged marker does not make the delivery a duplicate: it is processed in full.
          expect(await post(late.url, mock.signWebhook(event))).to.deep.equal(RECEIVED)
        } finally {
          await late.close()
        }
      } finally {
        await client.close()
      }
    })
  })

  it("uses the application's own client, and close() leaves it open", async () => {
    const client = createClient({ url: redis.url })
    client.on('error', () => {})
    await client.connect()
    const own = await startInstance(mock, { client, prefix })
    try {
      const token = mock.signToken()
      expect(await call(own.url, token)).to.deep.equal(OK())
      expect(await call(a.url, token)).to.deep.equal(REPLAYED)
    } finally {
      await own.close()
    }
    expect(client.isReady).to.equal(true)
    expect(await client.ping()).to.equal('PONG')
    await client.close()
  })
})

describe('Redis fleet without a reachable Redis', () => {
  it('start() keeps connecting, claims reject at once (503), close() settles start() and nothing crashes', async () => {
    const port = await closedPort()
    const errors: string[] = []
    const states: string[] = []
    const fleet = createRedisFleet({
      url: `redis://127.0.0.1:${port}`,
      onError: (error) => errors.push(error.message),
      onStateChange: (state) => states.push(state),
    })
    const started = fleet.start().then(
      () => 'started',
      (error: Error) => `rejected: ${error.message}`,
    )
    await eventually(() => errors.length >= 2)
    expect(fleet.state).to.equal('connecting')
    const began = Date.now()
    const claim = await Promise.resolve()
      .then(() => fleet.claim('iss', 'jti', Date.now() + 60_000))
      .catch((error: Error) => `${error.name}: ${error.message}`)
    expect(claim).to.equal('RedisUnavailableError: Redis is not connected')
    expect(Date.now() - began).to.be.below(100) // no queueing while disconnected
    await fleet.close()
    expect(await started).to.equal('rejected: fleet closed')
    expect(states).to.deep.equal(['connecting', 'closed'])
  })
})

describe('Redis fleet options', () => {
  const url = 'redis://127.0.0.1:1'
  const cases: [unknown, string][] = [
    [undefined, 'createRedisFleet: options must be an object'],
    [{}, 'createRedisFleet needs exactly one of options.url or options.client'],
    [{ url, client: {} }, 'createRedisFleet needs exactly one of options.url or options.client'],
    [{ url, db: 1 }, 'Unknown createRedisFleet option: db'],
    [{ url: 'http://127.0.0.1:6379' }, 'options.url must use redis: or rediss:, got http:'],
    [{ url: 'not a url' }, 'options.url must be an absolute redis: or rediss: URL'],
    [{ client: {} }, 'options.client must be a client of the redis package (createClient())'],
    [
      { url, prefix: 'a b' },
      'options.prefix must be 1 to 64 characters of letters, digits and . _ : { } -',
    ],
    [
      { url, commandTimeoutMs: 0 },
      'options.commandTimeoutMs must be an integer from 1 to 60000, got 0',
    ],
    [
      { url, revocationTtlMs: 1.5 },
      'options.revocationTtlMs must be an integer from 1 to 2147483647, got 1.5',
    ],
    [{ url, onError: 1 }, 'options.onError must be a function'],
  ]
  for (const [options, message] of cases) {
    it(`refuses ${JSON.stringify(options)}`, () => {
      expect(() => createRedisFleet(options as never)).to.throw(TypeError, message)
    })
  }

  it('the verifier refuses a replay option without claim(), the router a fleet without its methods', () => {
    expect(
      () =>
        new PartnerTokenVerifier({
          issuer: 'https://api.agent.press/orgs/a',
          audience: 'https://mcp.example.com/mcp',
          expectedExtProvider: 'x',
          replay: {} as never,
        }),
    ).to.throw(
      TypeError,
      'options.replay must be a replay store with a claim(issuer, jti, expiresAtMs) method',
    )
    const verifier = new PartnerTokenVerifier({
      issuer: 'https://api.agent.press/orgs/a',
      audience: 'https://mcp.example.com/mcp',
      expectedExtProvider: 'x',
    })
    expect(() =>
      createKeyRotationRouter({
        webhookSecret: 'whsec_0123456789abcdef',
        verifiers: [verifier],
        fleet: { join() {} } as never,
      }),
    ).to.throw(TypeError, 'fleet must be a fleet with join(), wasProcessed() and publish() methods')
  })

  it('one fleet serves one router', () => {
    const fleet = createRedisFleet({ url })
    const verifiers = [
      new PartnerTokenVerifier({
        issuer: 'https://api.agent.press/orgs/a',
        audience: 'https://mcp.example.com/mcp',
        expectedExtProvider: 'x',
      }),
    ]
    const webhookSecret = 'whsec_0123456789abcdef'
    createKeyRotationRouter({ webhookSecret, verifiers, fleet })
    expect(() => createKeyRotationRouter({ webhookSecret, verifiers, fleet })).to.throw(
      TypeError,
      'this fleet already serves a key-rotation router; create one per router',
    )
  })
})
