// An earlier lib/core/bearer.ts trimmed the Authorization header with /^[ \t]+|[ \t]+$/g. The second
// alternative backtracks quadratically over a long run of spaces/tabs that is not at the end of the
// value, so one request with a ~16 KB Authorization header (Node's default header limit) blocks the
// event loop for ~100+ ms (and ~2 s at 64 KB), for any scheme: a cheap CPU DoS on every protected
// route. The parse should be linear (a value of this size takes well under a millisecond).
import { expect } from 'chai'
import express from 'express'
import passport from 'passport'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AgentPressPartnerStrategy } from 'passport-agentpress-partner'
import { readBearerToken } from '../../dist/core/token/bearer.js'

function time(fn: () => void): number {
  const started = performance.now()
  fn()
  return performance.now() - started
}

describe('regression: Authorization header parsing is linear', () => {
  for (const [label, value] of [
    ['Bearer + spaces + token', 'Bearer' + ' '.repeat(64_000) + 'x'],
    ['Bearer token + trailing junk with inner blanks', 'Bearer x' + ' \t'.repeat(32_000) + 'y'],
    ['another scheme with inner tabs', 'Basic' + '\t'.repeat(64_000) + 'b'],
  ] as const) {
    it(`readBearerToken on a 64 KB header (${label}) takes < 250 ms (the quadratic trim took ≈ 2 s)`, () => {
      readBearerToken({ headers: { authorization: 'Bearer a.b.c' } }) // warm up
      const ms = time(() =>
        readBearerToken({
          headers: { authorization: value },
          rawHeaders: ['Authorization', value],
        }),
      )
      // A hang guard, not a speed test: the linear parse takes well under 1 ms.
      expect(ms).to.be.below(250)
    })
  }

  it('one HTTP request with a 16 KB Authorization header does not block the server for > 50 ms (the quadratic trim took ≈ 100 ms)', async () => {
    passport.use(
      'review-redos',
      new AgentPressPartnerStrategy(
        {
          partnerMcp: {
            issuer: 'http://127.0.0.1:1/orgs/x',
            audience: 'http://127.0.0.1/mcp',
            expectedExtProvider: 'p',
          },
        },
        async () => ({ id: 1 }),
      ),
    )
    let blocked = 0
    const app = express()
    app.use((req, _res, next) => {
      const started = performance.now()
      ;(req as unknown as { started: number }).started = started
      next()
    })
    app.get(
      '/mcp',
      (req, res, next) => {
        const started = performance.now()
        passport.authenticate('review-redos', { session: false })(req, res, next)
        blocked = performance.now() - started // the synchronous part of authenticate
      },
      (_req, res) => res.end('ok'),
    )
    const server = app.listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    const { port } = server.address() as AddressInfo
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/mcp',
          headers: { authorization: 'Bearer' + ' '.repeat(16_000) + 'x' },
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('error', reject)
      req.end()
    })
    await new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
    expect(status).to.equal(401)
    expect(blocked).to.be.below(50)
  })
})
