// createKeyRotationRouter on Express 5, Express 4 and Connect with body parsers mounted before (or
// after) it: json, text, json with verify keeping req.rawBody, raw.
import { gzipSync } from 'node:zlib'
import { expect } from 'chai'
import { computeWebhookSignature } from 'passport-agentpress-partner/testing'
import { EVENT, SECRET, T0, rawRequest, refusal, describeOnEachFramework } from './support.js'

describeOnEachFramework((f) => {
  const { app, sign, post } = f

  describe('body parsers mounted before the router', () => {
    if (f.framework.name === 'Connect') return

    it('express.json() first → 500 body_already_parsed naming the fix', async () => {
      const { url } = await app({}, 'json')
      const { body, headers } = sign()
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([500, refusal('body_already_parsed')])
      expect(res.body.error_description).to.include('Mount the router before express.json()')
      expect(res.body.error_description).to.include('req.rawBody')
      expect(f.verifier.refreshes).to.equal(0)
    })

    it('express.text() first → 500 body_already_parsed (text is not bytes)', async () => {
      const { url } = await app({}, 'text')
      const { body, headers } = sign()
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([500, refusal('body_already_parsed')])
    })

    it('express.json({ verify }) keeping req.rawBody → 200', async () => {
      const { url } = await app({}, 'json-verify')
      const { body, headers } = sign()
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })

    it('express.json({ verify }) and a gzip body → 415 (raw copy inflated)', async () => {
      const { port } = await app({}, 'json-verify')
      const compressed = gzipSync(Buffer.from(JSON.stringify(EVENT)))
      const headers = {
        'Content-Type': 'application/json',
        'Content-Encoding': 'gzip',
        'X-AgentPress-Timestamp': String(T0),
        'X-AgentPress-Signature': computeWebhookSignature(SECRET, T0, JSON.stringify(EVENT)),
      }
      const res = await rawRequest(port, headers, (req) => {
        req.end(compressed)
      })
      expect([res.status, res.body]).to.deep.equal([415, refusal('unsupported_encoding')])
    })

    it('express.raw() first (req.body is a Buffer) → 200', async () => {
      const { url } = await app({}, 'raw')
      const { body, headers } = sign()
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })

    it('express.json() first, a non-JSON Content-Type (stream untouched) → 200', async () => {
      const { url } = await app({}, 'json')
      const { body, headers } = sign()
      const res = await post(url, body, { ...headers, 'Content-Type': 'text/plain' })
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })

    it('express.json() after the router → 200', async () => {
      const { url } = await app({}, 'json-after')
      const { body, headers } = sign()
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })
  })
})
