// createKeyRotationRouter on Express 5, Express 4 and Connect: slow drips, a Content-Length above
// the bytes sent and client aborts end at the deadline and crash nothing.
import { request as httpRequest } from 'node:http'
import { expect } from 'chai'
import request from 'supertest'
import { PATH, rawRequest, describeOnEachFramework, sleep } from './support.js'

describeOnEachFramework((f) => {
  const { app, sign, post } = f

  describe('slow, lying and aborted bodies', () => {
    it('a slow drip is cut off at the deadline (408), the server stays responsive', async () => {
      const { url, port } = await app({ bodyTimeoutMs: 600 })
      const { body, headers } = sign()
      const started = Date.now()
      const pings: number[] = []
      const framing = { ...headers, 'Content-Length': Buffer.byteLength(body) }
      const drip = rawRequest(port, framing, async (req) => {
        // Bounded: one byte every 50 ms for at most 100 bytes (5 s), never the whole body.
        for (let i = 0; i < 100 && !req.destroyed; i++) {
          req.write(body[i] as string)
          await sleep(50)
        }
      })
      // Meanwhile the same server answers other requests at once.
      for (let i = 0; i < 3; i++) {
        await sleep(100)
        const t = Date.now()
        const res = await request(url).get('/ping')
        expect(res.text).to.equal('pong')
        pings.push(Date.now() - t)
      }
      const res = await drip
      const elapsed = Date.now() - started
      expect([res.status, res.body]).to.deep.equal([
        408,
        { error: 'request_timeout', error_description: 'Request body not received in time' },
      ])
      expect(res.headers.connection).to.equal('close')
      expect(elapsed).to.be.within(550, 3000)
      expect(Math.max(...pings)).to.be.below(500)
      expect(f.verifier.refreshes).to.equal(0)
    })

    it('a Content-Length above the bytes sent ends at the deadline, not never', async () => {
      const { port } = await app({ bodyTimeoutMs: 300 })
      const { body, headers } = sign()
      const framing = { ...headers, 'Content-Length': Buffer.byteLength(body) + 10 }
      const res = await rawRequest(port, framing, (req) => {
        req.write(body)
      })
      expect([res.status, res.body]).to.deep.equal([
        408,
        { error: 'request_timeout', error_description: 'Request body not received in time' },
      ])
      expect(res.headers.connection).to.equal('close')
      expect(f.verifier.refreshes).to.equal(0)
    })

    it('a client abort mid-body crashes nothing, and the next delivery works', async () => {
      const { url, port } = await app()
      const { body, headers } = sign()
      await new Promise<void>((resolve) => {
        const req = httpRequest({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: PATH,
          agent: false,
          headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
        })
        req.on('error', () => resolve())
        req.on('close', () => resolve())
        req.write(body.slice(0, 20), () => {
          setTimeout(() => req.destroy(), 50)
        })
      })
      await sleep(50)
      expect(f.verifier.refreshes).to.equal(0)
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })
  })
})
