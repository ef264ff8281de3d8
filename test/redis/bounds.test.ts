// The Redis fleet's bounds, in one process on a real redis-server (issue 20): start() settles
// within its documented bound naming the URL without credentials; a one-slash URL is a TypeError;
// the replay stores remember a token strictly past the last instant the verifier accepts it;
// oversized and garbage publishes cannot turn Redis traffic into issuer traffic.
import { expect } from 'chai'
import { MemoryReplayStore, PartnerTokenVerifier } from 'passport-agentpress-partner'
import {
  createRedisFleet,
  RedisUnavailableError,
  type RedisFleetState,
} from 'passport-agentpress-partner/redis'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { startRedis, type RedisServer } from '../support/redis.js'
import { closedPort } from '../support/servers.js'
import { REVOKED, call, eventually, inspector, post, startInstance } from '../support/fleet.js'

describe('Redis fleet bounds (one process, real redis-server)', function () {
  this.timeout(60_000)
  let redis: RedisServer
  let mock: MockAgentPress

  before(async () => {
    redis = await startRedis()
    mock = await createMockAgentPress()
  })
  after(async () => {
    await mock.close()
    await redis.stop()
  })

  describe('start() and the URL', () => {
    it('an unreachable port: start() rejects within startTimeoutMs, naming the URL without credentials and the cause; the fleet is closed', async () => {
      const port = await closedPort()
      const fleet = createRedisFleet({
        url: `redis://agent:s3cret-pass@127.0.0.1:${port}/2`,
        startTimeoutMs: 1500,
        onError: () => {},
      })
      const started = Date.now()
      const error = (await fleet.start().then(
        () => undefined,
        (e: unknown) => e,
      )) as Error
      const elapsed = Date.now() - started
      expect(elapsed).to.be.within(1400, 4000)
      expect(error).to.be.instanceOf(RedisUnavailableError)
      expect(error.message).to.match(
        new RegExp(
          `^cannot start the fleet: Redis at redis://127\\.0\\.0\\.1:${port}/2 not ready within 1500 ms \\(.*ECONNREFUSED`,
        ),
      )
      expect(error.message).not.to.include('s3cret')
      expect(error.message).not.to.include('agent:')
      expect(fleet.state).to.equal('closed')
    })

    it('the default bound is 10 s', async () => {
      const port = await closedPort()
      const fleet = createRedisFleet({ url: `redis://127.0.0.1:${port}`, onError: () => {} })
      const started = Date.now()
      const error = (await fleet.start().then(
        () => undefined,
        (e: unknown) => e,
      )) as Error
      expect(Date.now() - started).to.be.within(9900, 13_000)
      expect(error.message).to.match(
        new RegExp(
          `^cannot start the fleet: Redis at redis://127\\.0\\.0\\.1:${port} not ready within 10000 ms`,
        ),
      )
    })

    it('a database index the server does not have: rejects within the bound, naming the URL and the cause', async () => {
      const fleet = createRedisFleet({
        url: `${redis.url}/99`,
        startTimeoutMs: 2000,
        onError: () => {},
      })
      const error = (await fleet.start().then(
        () => undefined,
        (e: unknown) => e,
      )) as Error
      expect(error).to.be.instanceOf(RedisUnavailableError)
      expect(error.message).to.match(
        new RegExp(
          `^cannot start the fleet: Redis at ${redis.url}/99 not ready within 2000 ms \\(.*DB index is out of range`,
        ),
      )
      expect(fleet.state).to.equal('closed')
    })

    it('redis:/host:port (one slash) and a path that is not a database are TypeErrors naming the option', () => {
      expect(() => createRedisFleet({ url: 'redis:/127.0.0.1:6379' })).to.throw(
        TypeError,
        /^options\.url must name a host, as in redis:\/\/host:port \(two slashes\), got "redis:\/127\.0\.0\.1:6379"$/,
      )
      expect(() => createRedisFleet({ url: 'redis://:pw@127.0.0.1:6379/cache' })).to.throw(
        TypeError,
        /^options\.url's path must be a database number, as in redis:\/\/host:port\/0, got redis:\/\/127\.0\.0\.1:6379\/cache$/,
      )
      expect(() => createRedisFleet({ url: 'redis://127.0.0.1:1', startTimeoutMs: 0 })).to.throw(
        TypeError,
        /^options\.startTimeoutMs must be an integer from 1 to /,
      )
    })
  })

  describe('the replay window', () => {
    // exp + tolerance = …130.5 s: the verifier accepts until the instant before …131 s.
    const EXP = 1_700_000_100.5

    it('memory store: a token is a replay up to the last instant the verifier accepts it (fractional exp)', async () => {
      let now = (EXP - 10) * 1000
      const clock = (): number => now
      const verifier = new PartnerTokenVerifier({
        ...mock.partnerMcp,
        replay: new MemoryReplayStore({ clock }),
        clock,
      })
      const token = mock.signToken({ iat: EXP - 50, exp: EXP, jti: 'frac-1' })
      expect((await verifier.verifyToken(token)).jti).to.equal('frac-1')
      now = Math.ceil(EXP + 30) * 1000 - 1 // still accepted: floor(now / 1000) < exp + 30
      const fresh = mock.signToken({ iat: EXP - 50, exp: EXP, jti: 'frac-2' })
      expect((await verifier.verifyToken(fresh)).jti).to.equal('frac-2')
      const error = await verifier.verifyToken(token).then(
        () => undefined,
        (e: unknown) => e as { reason?: string },
      )
      expect(error?.reason).to.equal('token_replayed')
    })

    it('Redis store: the key lives until the whole second after exp + tolerance', async () => {
      const fleet = createRedisFleet({ url: redis.url, prefix: 'frac' })
      await fleet.start()
      const client = await inspector(redis.url)
      try {
        const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, replay: fleet })
        const exp = Math.floor(Date.now() / 1000) + 20.5
        await verifier.verifyToken(mock.signToken({ iat: exp - 50, exp, jti: 'frac-redis' }))
        const key = `frac:replay:${encodeURIComponent(mock.issuer)}:frac-redis`
        const expiresAt = Number(await client.sendCommand(['PEXPIRETIME', key]))
        // Accepted while floor(now) < exp + 30, i.e. up to the instant before ceil(exp + 30) s.
        expect(expiresAt).to.be.at.least(Math.ceil(exp + 30) * 1000)
        expect(expiresAt).to.be.below(Math.ceil(exp + 30) * 1000 + 1000)
      } finally {
        await client.close()
        await fleet.close()
      }
    })
  })

  describe('oversized and garbage publishes', () => {
    it("4 publishes past Redis's pubsub buffer drop the subscriber, yet the JWKS is fetched at most once per instance; big and garbage messages are refused; relays still flow", async () => {
      const states: RedisFleetState[] = []
      const options = {
        url: redis.url,
        prefix: 'big',
        onError: () => {},
        onStateChange: (state: RedisFleetState) => states.push(state),
      }
      const a = await startInstance(mock, options)
      const b = await startInstance(mock, options)
      const client = await inspector(redis.url)
      try {
        const fetches = mock.jwksRequestCount
        // Garbage and a 9 MB message: refused by size or shape, no disconnect.
        for (const message of ['not json', '{"origin":1}', 'x'.repeat(9_000_000)]) {
          await client.publish('big:rotations', message)
        }
        await eventually(
          () => a.fleet.stats.relaysRefused === 3 && b.fleet.stats.relaysRefused === 3,
        )
        expect(states.filter((s) => s === 'reconnecting')).to.deep.equal([])
        // 40 MB: Redis closes every subscriber (client-output-buffer-limit pubsub 32 MB).
        for (let i = 0; i < 4; i++) {
          const syncs = [a.fleet.stats.syncs, b.fleet.stats.syncs]
          await client.publish('big:rotations', 'x'.repeat(40_000_000))
          await eventually(
            () => a.fleet.stats.syncs > syncs[0]! && b.fleet.stats.syncs > syncs[1]!,
            10_000,
          )
        }
        await eventually(() => a.fleet.state === 'ready' && b.fleet.state === 'ready')
        // At most one refresh per instance inside RECONNECT_REFRESH_MS (30 s), not one per reconnect.
        expect(mock.jwksRequestCount - fetches).to.be.at.most(2)
        // Relays still flow: an emergency at A is refused at B.
        const old = mock.signToken()
        const event = mock.rotateKeys({ emergency: true })
        expect((await post(a.url, mock.signWebhook(event))).status).to.equal(200)
        await eventually(async () => (await call(b.url, old)).challenge === REVOKED.challenge)
        expect(await call(b.url, old)).to.deep.equal(REVOKED)
      } finally {
        await client.close()
        await a.close()
        await b.close()
      }
    })
  })
})
