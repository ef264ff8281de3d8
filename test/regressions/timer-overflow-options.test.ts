// Durations were validated as "finite" only: a value above 2^31-1 ms passed validation, but Node's
// setTimeout clamps it to 1 ms (TimeoutOverflowWarning), so the option silently meant the opposite
// of what was configured: every JWKS fetch "timed out" (503), every webhook delivery answered 408
// (bodyTimeoutMs) or 503 (refreshTimeoutMs). Such values are now refused at construction; the
// largest timer-sized value still works end to end.
import { expect } from 'chai'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createKeyRotationRouter, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

const MAX = 2 ** 31 - 1 // the largest delay setTimeout honours

function post(url: string, body: string, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.flushHeaders()
    // Send the body a little later, as a real network would: a 1 ms deadline would fire first.
    setTimeout(() => req.end(body), 50)
  })
}

describe('regression: durations above 2^31-1 ms', () => {
  let mock: MockAgentPress
  let server: Server | undefined
  beforeEach(async () => {
    mock = await createMockAgentPress()
  })
  afterEach(async () => {
    if (server) {
      const s = server
      await new Promise<void>((r) => {
        s.closeAllConnections()
        s.close(() => r())
      })
    }
    server = undefined
    await mock.close()
  })

  it('jwksTimeoutMs: 2^31 is a TypeError; 2^31-1 verifies normally', async () => {
    expect(() => new PartnerTokenVerifier({ ...mock.partnerMcp, jwksTimeoutMs: MAX + 1 })).to.throw(
      TypeError,
      `options.jwksTimeoutMs must be <= ${MAX}, got ${MAX + 1}`,
    )
    const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, jwksTimeoutMs: MAX })
    expect((await verifier.verifyToken(mock.signToken({ sub: 'alice' }))).sub).to.equal('alice')
  })

  for (const option of ['bodyTimeoutMs', 'refreshTimeoutMs'] as const) {
    it(`${option}: 2^31 is a TypeError; 2^31-1 processes a delivery normally`, async () => {
      const verifiers = [new PartnerTokenVerifier(mock.partnerMcp)]
      const base = { webhookSecret: mock.webhookSecret, verifiers }
      expect(() => createKeyRotationRouter({ ...base, [option]: MAX + 1 })).to.throw(
        TypeError,
        `${option} must be at most ${MAX} milliseconds`,
      )
      const router = createKeyRotationRouter({ ...base, [option]: MAX })
      server = createServer((req, res) => router(req, res, () => res.writeHead(404).end()))
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      const { body, headers } = mock.signWebhook(mock.rotateKeys())
      expect(await post(url, body, headers)).to.deep.equal({
        status: 200,
        body: '{"received":true}',
      })
    })
  }
})
