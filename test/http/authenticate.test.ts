// The request decision (lib/http/authenticate.ts) keeps the synchronous fast path: with the key
// cached and a verify callback that calls `done` at once, the outcome is delivered before
// `authenticate` returns (no promise), through Passport's actions and through the direct middleware.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { expect } from 'chai'
import { AgentPressPartnerStrategy, authenticatePartner } from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

describe('the request decision: synchronous when the key is cached', () => {
  let mock: MockAgentPress
  let strategy: AgentPressPartnerStrategy

  before(async () => {
    mock = await createMockAgentPress()
    strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, (claims, done) =>
      done(null, { id: claims.sub }),
    )
    // Warm the JWKS cache: the first request waits for the one fetch.
    await new Promise<void>((resolve) => {
      authenticatePartner(strategy)(request(mock.signToken()), response(), () => resolve())
    })
  })
  after(() => mock.close())

  const request = (token: string): IncomingMessage =>
    ({
      headers: { authorization: `Bearer ${token}` },
      rawHeaders: ['Authorization', `Bearer ${token}`],
    }) as unknown as IncomingMessage
  const response = (): ServerResponse =>
    ({ headersSent: false, setHeader() {}, end() {} }) as unknown as ServerResponse

  it('Passport actions: success before authenticate() returns', () => {
    const seen: string[] = []
    const run = Object.assign(Object.create(strategy) as AgentPressPartnerStrategy, {
      success: (user: { id: string }) => seen.push(`success ${user.id}`),
      fail: () => seen.push('fail'),
      error: () => seen.push('error'),
    })
    run.authenticate(request(mock.signToken({ sub: 'alice' })))
    expect(seen).to.deep.equal(['success alice'])
  })

  it('authenticatePartner(strategy): next() before the middleware returns', () => {
    const seen: unknown[] = []
    authenticatePartner(strategy)(request(mock.signToken()), response(), (err?: unknown) =>
      seen.push(err ?? 'next'),
    )
    expect(seen).to.deep.equal(['next'])
  })

  it('an async verify callback still decides once, later', async () => {
    const slow = new AgentPressPartnerStrategy(
      { verifier: strategy.verifiers[0]! },
      async (claims) => ({ id: claims.sub }),
    )
    const seen: unknown[] = []
    const done = new Promise<void>((resolve) => {
      authenticatePartner(slow)(request(mock.signToken()), response(), (err?: unknown) => {
        seen.push(err ?? 'next')
        resolve()
      })
    })
    expect(seen).to.deep.equal([])
    await done
    expect(seen).to.deep.equal(['next'])
  })
})
