// Durations were validated as "finite" only: a value above 2^31-1 ms passed validation, but Node's
// setTimeout clamps it to 1 ms (TimeoutOverflowWarning). The option then silently means the
// opposite of what was configured:
//  - lib/core/options.ts:169 jwksTimeoutMs → lib/core/jwks.ts:59: every JWKS fetch "times out" → 503;
//  - lib/rotation-router.ts:309-310 bodyTimeoutMs / refreshTimeoutMs → :237 / :343: every delivery
//    answers 408 / 503.
// Either refuse such values at construction (TypeError) or honour them; a valid request must not fail.
import { expect } from 'chai'
import { request } from 'node:http'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createKeyRotationRouter,
  JwksUnavailableError,
  PartnerTokenVerifier,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

const HUGE = 2 ** 31 // ~24.8 days; finite, integer, accepted by validation

function post(url: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.flushHeaders()
    // Send the body a little later, as a real network would.
    setTimeout(() => req.end(body), 50)
  })
}

describe('regression: durations above 2^31-1 ms', () => {
  let mock: MockAgentPress
  let server: Server | undefined
  const noWarn = (w: Error) => void w
  before(() => process.on('warning', noWarn))
  after(() => process.off('warning', noWarn))
  beforeEach(async () => {
    mock = await createMockAgentPress()
  })
  afterEach(async () => {
    if (server)
      await new Promise<void>((r) => {
        server!.closeAllConnections()
        server!.close(() => r())
      })
    server = undefined
    await mock.close()
  })

  function construct(build: () => unknown): 'refused' | 'built' {
    try {
      build()
      return 'built'
    } catch (error) {
      if (error instanceof TypeError) return 'refused'
      throw error
    }
  }

  it('jwksTimeoutMs: 2^31 is refused at construction or does not time out every fetch', async () => {
    let verifier: PartnerTokenVerifier | undefined
    if (
      construct(
        () => (verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, jwksTimeoutMs: HUGE })),
      ) === 'refused'
    )
      return
    const result = await verifier!.verifyToken(mock.signToken()).then(
      () => 'ok',
      (e: unknown) => (e instanceof JwksUnavailableError ? 'jwks_unavailable' : String(e)),
    )
    expect(result).to.equal('ok')
  })

  it('bodyTimeoutMs: 2^31 is refused at construction or does not time out every delivery', async () => {
    const verifier = new PartnerTokenVerifier(mock.partnerMcp)
    let router: ReturnType<typeof createKeyRotationRouter> | undefined
    if (
      construct(
        () =>
          (router = createKeyRotationRouter({
            webhookSecret: mock.webhookSecret,
            verifiers: [verifier],
            bodyTimeoutMs: HUGE,
          })),
      ) === 'refused'
    )
      return
    server = createServer((req, res) => router!(req, res, () => res.writeHead(404).end()))
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    const { body, headers } = mock.signWebhook(mock.rotateKeys())
    expect(await post(url, body, headers)).to.equal(200)
  })

  it('refreshTimeoutMs: 2^31 is refused at construction or does not fail every refresh', async () => {
    const verifier = new PartnerTokenVerifier(mock.partnerMcp)
    let router: ReturnType<typeof createKeyRotationRouter> | undefined
    if (
      construct(
        () =>
          (router = createKeyRotationRouter({
            webhookSecret: mock.webhookSecret,
            verifiers: [verifier],
            refreshTimeoutMs: HUGE,
          })),
      ) === 'refused'
    )
      return
    server = createServer((req, res) => router!(req, res, () => res.writeHead(404).end()))
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    const { body, headers } = mock.signWebhook(mock.rotateKeys())
    expect(await post(url, body, headers)).to.equal(200)
  })
})
