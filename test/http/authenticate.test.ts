// The request decision (lib/http/authenticate.ts) keeps the synchronous fast path: with the key
// cached and a verify callback that calls `done` at once, the outcome is delivered before
// `authenticate` returns (no promise), through Passport's actions and through the direct middleware.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { expect } from 'chai'
import {
  AgentPressPartnerStrategy,
  authenticatePartner,
  PartnerTokenVerifier,
} from 'passport-agentpress-partner'
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

// Our verifier refuses any token that is not base64url segments and dots as `malformed` before
// anything else, so the decision verifies the common `Bearer <token>` form without scanning its
// characters first and reads the header strictly only after a `malformed` refusal. Every outcome
// must be the one the strict read gives first.
describe('the request decision: the token character scan waits for a refusal, same outcomes', () => {
  let mock: MockAgentPress
  let strategy: AgentPressPartnerStrategy
  let valid: string

  before(async () => {
    mock = await createMockAgentPress()
    strategy = new AgentPressPartnerStrategy({ partnerMcp: mock.partnerMcp }, (claims, done) =>
      done(null, { id: claims.sub }),
    )
    await strategy.warmUp()
    valid = mock.signToken({ sub: 'alice' })
  })
  after(() => mock.close())

  const request = (authorization: string, lines = 1): IncomingMessage =>
    ({
      headers: { authorization },
      rawHeaders: Array.from({ length: lines }, () => ['Authorization', authorization]).flat(),
    }) as unknown as IncomingMessage

  // The outcome through Passport's actions, as one string.
  const outcome = (s: AgentPressPartnerStrategy, req: IncomingMessage): Promise<string> =>
    new Promise((resolve) => {
      const run = Object.assign(Object.create(s) as AgentPressPartnerStrategy, {
        success: (user: { id: string }) => resolve(`success ${user.id}`),
        fail: (challenge: string) => resolve(`fail ${challenge}`),
        error: (err: { status: number; reason: string }) =>
          resolve(`error ${err.status} ${err.reason}`),
      })
      run.authenticate(req)
    })

  // RFC 9728 §3.1: the metadata URL derived from the mock's audience.
  const malformed = () => {
    const aud = new URL(mock.partnerMcp.audience as string)
    const metadata = `${aud.origin}/.well-known/oauth-protected-resource${aud.pathname}`
    return `fail Bearer error="invalid_token", error_description="Malformed token", resource_metadata="${metadata}"`
  }

  it('every header form answers as the strict read decides', async () => {
    const cases: [string, string, number?][] = [
      [`Bearer ${valid}`, 'success alice'],
      [`bearer ${valid}`, 'success alice'],
      [`Bearer   ${valid}`, 'success alice'], // blanks before: the strict read finds the token
      [`Bearer ${valid} `, 'success alice'], // blanks after (Node trims them; other stacks may not)
      [`Bearer ${valid}\t`, 'success alice'],
      ['Bearer a b', 'error 400 invalid_request'],
      [`Bearer ${valid} x`, 'error 400 invalid_request'],
      [`Bearer ${valid}"`, 'error 400 invalid_request'],
      [`Bearer ${valid.replace('.', ',')}`, 'error 400 invalid_request'],
      ['Bearer abc+/=', malformed()], // a b64token that is no JWS
      [`Bearer ${valid}=`, malformed()],
      [`Bearer ${valid}`, 'error 400 invalid_request', 2], // two Authorization lines
    ]
    for (const [header, expected, lines] of cases) {
      expect(await outcome(strategy, request(header, lines)), header).to.equal(expected)
    }
  })

  it('a token decision subscriber sees only what the strict read lets through', async () => {
    const { subscribe, unsubscribe } = await import('node:diagnostics_channel')
    const { DIAGNOSTICS_CHANNELS } = await import('passport-agentpress-partner/diagnostics')
    const seen: string[] = []
    const listener = (message: unknown) => {
      const m = message as { outcome: string; reason: string | null }
      seen.push(`${m.outcome} ${m.reason}`)
    }
    subscribe(DIAGNOSTICS_CHANNELS.tokenDecision, listener)
    try {
      expect(await outcome(strategy, request('Bearer a b'))).to.equal('error 400 invalid_request')
      expect(await outcome(strategy, request(`Bearer ${valid} `))).to.equal('success alice')
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.tokenDecision, listener)
    }
    expect(seen).to.deep.equal(['accepted null'])
  })

  it('a verifyToken replaced on the instance never sees a token the strict read refuses', async () => {
    const verifier = new PartnerTokenVerifier(mock.partnerMcp)
    const given: string[] = []
    const real = verifier.verifyToken.bind(verifier)
    verifier.verifyToken = (token: string) => {
      given.push(token)
      return real(token)
    }
    const s = new AgentPressPartnerStrategy({ verifier }, (claims, done) =>
      done(null, { id: claims.sub }),
    )
    expect(await outcome(s, request('Bearer a b'))).to.equal('error 400 invalid_request')
    expect(await outcome(s, request(`Bearer ${valid}"`))).to.equal('error 400 invalid_request')
    expect(await outcome(s, request(`Bearer ${valid}`))).to.equal('success alice')
    expect(given).to.deep.equal([valid])
  })
})
