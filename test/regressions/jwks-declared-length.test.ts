// Regression: a JWKS answer declaring a Content-Length over the cap was reported as `timeout`
// (flaky, on a loaded machine) instead of `too_large`: when the event loop was busy past the fetch
// deadline, the timer ran before the headers already sitting in the socket were read. The declared
// length now decides from the headers alone, whatever the timer: at the deadline the fetch first
// reads what has arrived. This test pins that order: the headers are flushed, then the process is
// kept busy past the deadline before anything is read.
import { expect } from 'chai'
import { JwksFetchError, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { startCountingServer, type CountingServer } from '../support/servers.js'

const TIMEOUT_MS = 200

describe('regression: a declared Content-Length over the cap is too_large from the headers alone', () => {
  let jwks: CountingServer

  beforeEach(async () => {
    jwks = await startCountingServer((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(10 * 1024 * 1024),
      })
      res.flushHeaders()
      // Busy past the client's deadline, with the headers already sent and no body byte.
      const until = Date.now() + TIMEOUT_MS * 3
      while (Date.now() < until) {
        // hold the event loop
      }
    })
  })
  afterEach(() => jwks.close())

  it('headers flushed, no body byte, the deadline passes while busy → too_large, never timeout', async () => {
    const reasons: string[] = []
    const verifier = new PartnerTokenVerifier({
      issuer: `${jwks.url}/orgs/acme`,
      audience: 'https://mcp.example.com/mcp',
      expectedExtProvider: 'example',
      jwksTimeoutMs: TIMEOUT_MS,
      onJwksError: (error) => reasons.push(error.reason),
    })
    const error = await verifier.refreshJwks().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).to.be.instanceOf(JwksFetchError)
    expect((error as JwksFetchError).reason).to.equal('too_large')
    expect(reasons).to.deep.equal(['too_large'])
    expect(jwks.count).to.equal(1)
  })
})
