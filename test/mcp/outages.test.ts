// Outages through the MCP SDK adapters (issue 26 item 1): inside each SDK's own requireBearerAuth
// — v1 `@modelcontextprotocol/sdk` with `passport-agentpress-partner/mcp`, v2
// `@modelcontextprotocol/express` with `…/mcp/v2` — a JWKS outage, a full MemoryReplayStore and a
// Redis fleet that is down are each the SDK's server-error answer (500 server_error with our
// description), never a 401: AgentPress never retries a 401, so an outage answered as a bad token
// turns a blip into failed calls. Real Express 5 apps on 127.0.0.1, a real redis-server.
import { expect } from 'chai'
import express from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { requireBearerAuth as requireBearerAuthV1 } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js'
import { requireBearerAuth as requireBearerAuthV2 } from '@modelcontextprotocol/express'
import { MemoryReplayStore, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { partnerTokenVerifier as adapterV1 } from 'passport-agentpress-partner/mcp'
import { partnerTokenVerifier as adapterV2 } from 'passport-agentpress-partner/mcp/v2'
import { createRedisFleet } from 'passport-agentpress-partner/redis'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

import { startRedis, type RedisServer } from '../support/redis.js'
import { listen } from '../support/wire.js'

const PRM = 'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp'
type Handler = (req: IncomingMessage, res: ServerResponse) => void
const handled: string[] = []
const handler: Handler = (req, res) => {
  handled.push(req.url ?? '')
  res.setHeader('Content-Type', 'application/json')
  res.end('{"ok":true}')
}

async function answer(url: string, token: string) {
  const res = await fetch(`${url}/mcp`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  })
  return {
    status: res.status,
    challenge: res.headers.get('www-authenticate'),
    retryAfter: res.headers.get('retry-after'),
    body: JSON.parse(await res.text()) as unknown,
  }
}

const serverError = (description: string) => ({
  status: 500,
  challenge: null,
  retryAfter: null,
  body: { error: 'server_error', error_description: description },
})

const SDKS = [
  {
    name: 'v1 (@modelcontextprotocol/sdk + /mcp)',
    mount: (verifier: PartnerTokenVerifier) =>
      requireBearerAuthV1({
        verifier: adapterV1(verifier),
        resourceMetadataUrl: PRM,
      }) as unknown as Handler,
  },
  {
    name: 'v2 (@modelcontextprotocol/express + /mcp/v2)',
    mount: (verifier: PartnerTokenVerifier) =>
      requireBearerAuthV2({
        verifier: adapterV2(verifier),
        resourceMetadataUrl: PRM,
      }) as unknown as Handler,
  },
] as const

describe('MCP SDK adapters: every outage is the SDK server error, never 401', function () {
  this.timeout(30_000)
  let mock: MockAgentPress
  let redis: RedisServer
  before(async () => {
    mock = await createMockAgentPress()
    redis = await startRedis()
  })
  after(async () => {
    await mock.close()
    await redis.stop()
  })
  beforeEach(() => {
    handled.length = 0
  })

  async function appWith(sdk: (typeof SDKS)[number], verifier: PartnerTokenVerifier) {
    const app = express()
    app.post('/mcp', sdk.mount(verifier), handler)
    return listen(app)
  }

  for (const sdk of SDKS) {
    describe(sdk.name, () => {
      it('the JWKS down with nothing cached → 500 "Signing keys unavailable"', async () => {
        const cold = await createMockAgentPress()
        const app = await appWith(sdk, new PartnerTokenVerifier(cold.partnerMcp))
        try {
          cold.setJwksMode('error')
          expect(await answer(app.url, cold.signToken())).to.deep.equal(
            serverError('Signing keys unavailable'),
          )
        } finally {
          await Promise.all([app.close(), cold.close()])
        }
        expect(handled).to.deep.equal([])
      })

      it('a full MemoryReplayStore → 500 "Replay check unavailable"; a replayed token is still 401', async () => {
        const replay = new MemoryReplayStore({ maxEntries: 1 })
        const app = await appWith(sdk, new PartnerTokenVerifier({ ...mock.partnerMcp, replay }))
        try {
          const first = mock.signToken()
          expect((await answer(app.url, first)).status).to.equal(200)
          // The store holds one live entry: the next new token cannot be recorded.
          expect(await answer(app.url, mock.signToken())).to.deep.equal(
            serverError('Replay check unavailable'),
          )
          // The store still answers for the token it holds: that refusal is the token's.
          expect((await answer(app.url, first)).status).to.equal(401)
        } finally {
          await app.close()
        }
        expect(handled).to.deep.equal(['/mcp'])
      })

      it('the Redis fleet down (redis-server stopped) → 500 "Replay check unavailable"', async () => {
        await redis.restart()
        const fleet = createRedisFleet({ url: redis.url, prefix: `outage-${sdk.name.slice(0, 2)}` })
        const app = await appWith(
          sdk,
          new PartnerTokenVerifier({ ...mock.partnerMcp, replay: fleet }),
        )
        try {
          await fleet.start()
          expect((await answer(app.url, mock.signToken())).status).to.equal(200)
          await redis.stop()
          for (let i = 0; i < 3; i++) {
            expect(await answer(app.url, mock.signToken())).to.deep.equal(
              serverError('Replay check unavailable'),
            )
          }
        } finally {
          await app.close()
          await fleet.close()
          await redis.restart()
        }
        expect(handled).to.deep.equal(['/mcp'])
      })
    })
  }
})
