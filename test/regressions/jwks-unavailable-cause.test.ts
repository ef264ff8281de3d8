// An outage reached the application's error handler as a *new* JwksUnavailableError made by the
// strategy, without a cause: the handler could not log why the keys were unavailable. The error
// the app sees is now the one the verifier threw, whose `cause` is the failed fetch.
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import express from 'express'
import { Passport } from 'passport'
import {
  AgentPressPartnerStrategy,
  JwksFetchError,
  JwksUnavailableError,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

describe('regression: a JWKS outage keeps its cause up to the error handler', () => {
  let mock: MockAgentPress
  let server: Server
  let seen: unknown[]

  beforeEach(async () => {
    mock = await createMockAgentPress()
    mock.setJwksMode('error')
    seen = []
    const passport = new Passport()
    passport.use(
      new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, (c, done) =>
        done(null, c.sub),
      ),
    )
    const app = express()
    app.get(
      '/mcp',
      passport.authenticate('agentpress-partner', { session: false }),
      (_req, res) => {
        res.end('ok')
      },
    )
    app.use(
      (err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        seen.push(err)
        const { status, headers } = err as JwksUnavailableError
        res
          .status(status)
          .set(headers)
          .json({ cause: ((err as Error).cause as JwksFetchError)?.reason })
      },
    )
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s))
    })
  })
  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve))
    await mock.close()
  })

  it('passport.authenticate: the handler gets the JwksUnavailableError with the JwksFetchError as cause', async () => {
    const { port } = server.address() as AddressInfo
    const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
      headers: { authorization: `Bearer ${mock.signToken()}` },
    })
    expect([res.status, res.headers.get('retry-after'), await res.json()]).to.deep.equal([
      503,
      '5',
      { cause: 'http_status' },
    ])
    expect(seen).to.have.length(1)
    const err = seen[0] as JwksUnavailableError
    expect(err).to.be.instanceOf(JwksUnavailableError)
    expect(err.cause).to.be.instanceOf(JwksFetchError)
    expect((err.cause as JwksFetchError).httpStatus).to.equal(500)
  })
})
