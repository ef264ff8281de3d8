// Regression: a webhook answered 503 fleet_unavailable (Redis down, the delivery could not be
// shared) was published on agentpress-partner:webhook:delivery as `refused`. It is an outage
// AgentPress retries, like a failed JWKS refresh: `unavailable`.
import { expect } from 'chai'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { recordChannels } from '../support/channels.js'
import { startInstance, post, type Instance } from '../support/fleet.js'
import { startRedis, type RedisServer } from '../support/redis.js'

describe('regression: a fleet outage on the webhook delivery channel is `unavailable`', function () {
  this.timeout(30_000)
  let redis: RedisServer
  let mock: MockAgentPress
  let instance: Instance

  before(async () => {
    redis = await startRedis()
    mock = await createMockAgentPress()
    instance = await startInstance(mock, { url: redis.url, prefix: 'outage' })
  })
  after(async () => {
    await instance.close()
    await mock.close()
    await redis.stop()
  })

  it('Redis stopped: 503 fleet_unavailable + Retry-After, published as unavailable', async () => {
    const event = mock.rotateKeys()
    await redis.stop()
    const channels = recordChannels()
    try {
      expect(await post(instance.url, mock.signWebhook(event))).to.deep.equal({
        status: 503,
        challenge: null,
        retryAfter: '5',
        body: { error: 'fleet_unavailable', error_description: 'Fleet unavailable' },
      })
      expect(channels.of('webhookDelivery')).to.deep.equal([
        {
          outcome: 'unavailable',
          reason: 'fleet_unavailable',
          status: 503,
          issuer: mock.issuer,
          emergency: false,
          eventId: event.id,
          secretIndex: 0,
          secretLabel: null,
        },
      ])
    } finally {
      channels.stop()
    }
  })
})
