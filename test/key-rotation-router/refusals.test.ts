// createKeyRotationRouter on Express 5, Express 4 and Connect: every refusal of §5 from a
// real request (timestamp, signature, size, encoding, payload), each with the exact status and body.
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import { expect } from 'chai'
import { computeWebhookSignature } from 'passport-agentpress-partner/testing'
import {
  EVENT,
  OTHER_SECRET,
  SECRET,
  T0,
  rawRequest,
  refusal,
  describeOnEachFramework,
  sleep,
} from './support.js'

describeOnEachFramework((f) => {
  const { app, sign, post } = f

  describe('every refusal of §5 from a real request', () => {
    it('a valid delivery → 200 {"received":true} and one refresh', async () => {
      const { url } = await app()
      const { body, headers } = sign()
      const res = await post(url, body, headers)
      expect(res.status).to.equal(200)
      expect(res.body).to.deep.equal({ received: true })
      expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
      expect(res.headers['cache-control']).to.equal('no-store')
      expect(f.verifier.log).to.deep.equal(['refresh'])
    })

    it('missing timestamp → 401 missing_timestamp', async () => {
      const { url } = await app()
      const { body, headers } = sign()
      delete headers['X-AgentPress-Timestamp']
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([401, refusal('missing_timestamp')])
    })

    it('missing signature → 401 missing_signature', async () => {
      const { url } = await app()
      const { body, headers } = sign()
      delete headers['X-AgentPress-Signature']
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([401, refusal('missing_signature')])
    })

    // Node strips the optional whitespace around a header value (RFC 9110 §5.5), so surrounding
    // spaces never reach the router; a space inside the value does. The core test covers both.
    const garbage = ['1.5', `+${T0}`, `${T0}abc`, '17000 00000', `-${T0}`, '0x6553f100']
    for (const timestamp of garbage) {
      it(`garbage timestamp ${JSON.stringify(timestamp)} → 401 invalid_timestamp`, async () => {
        const { url } = await app()
        const { body, headers } = sign(EVENT, { timestamp })
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([401, refusal('invalid_timestamp')])
      })
    }

    it('±301 s → 401 timestamp_out_of_window; ±300 s → 200', async () => {
      const { url } = await app()
      for (const delta of [-301, 301]) {
        const event = { ...EVENT, id: `evt_${delta}` }
        const { body, headers } = sign(event, { timestamp: T0 + delta })
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([401, refusal('timestamp_out_of_window')])
      }
      for (const delta of [-300, 300]) {
        const event = { ...EVENT, id: `evt_${delta}` }
        const { body, headers } = sign(event, { timestamp: T0 + delta })
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      }
      expect(f.verifier.refreshes).to.equal(2)
    })

    it('wrong secret → 401 signature_mismatch; a second secret → 200', async () => {
      const { url } = await app({ webhookSecret: [SECRET, OTHER_SECRET] })
      const wrong = sign(EVENT, { secret: 'whsec_nobodyknowsthisone00' })
      const res = await post(url, wrong.body, wrong.headers)
      expect([res.status, res.body]).to.deep.equal([401, refusal('signature_mismatch')])
      const second = sign(EVENT, { secret: OTHER_SECRET })
      const ok = await post(url, second.body, second.headers)
      expect([ok.status, ok.body]).to.deep.equal([200, { received: true }])
    })

    it('one body byte changed → 401 signature_mismatch', async () => {
      const { url } = await app()
      const { body, headers } = sign()
      const res = await post(url, body.replace('ap-2026-08', 'ap-2026-09'), headers)
      expect([res.status, res.body]).to.deep.equal([401, refusal('signature_mismatch')])
      expect(f.verifier.refreshes).to.equal(0)
    })

    it('a re-serialised body → 401 signature_mismatch', async () => {
      const { url } = await app()
      const { body, headers } = sign(JSON.stringify(EVENT, null, 2))
      const res = await post(url, JSON.stringify(JSON.parse(body)), headers)
      expect([res.status, res.body]).to.deep.equal([401, refusal('signature_mismatch')])
    })

    const badSignatures: Array<[string, (mac: string) => string]> = [
      [
        'one signature character changed',
        (mac) => `${mac.slice(0, -1)}${mac.endsWith('0') ? '1' : '0'}`,
      ],
      ['63 hex characters', (mac) => mac.slice(0, -1)],
      ['65 hex characters', (mac) => `${mac}0`],
      ['non-hex', (mac) => `${mac.slice(0, -2)}zz`],
      ['upper-case hex', (mac) => mac.toUpperCase().replace('SHA256=', 'sha256=')],
      [
        'nine entries (the good one last)',
        (mac) => [...Array(8).fill(`sha256=${'0'.repeat(64)}`), mac].join(', '),
      ],
    ]
    for (const [label, mutate] of badSignatures) {
      it(`${label} → 401 signature_mismatch`, async () => {
        const { url } = await app()
        const { body, headers } = sign()
        headers['X-AgentPress-Signature'] = mutate(headers['X-AgentPress-Signature'] as string)
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([401, refusal('signature_mismatch')])
      })
    }

    it('a bad entry beside a good one, and two signature header lines → 200', async () => {
      const { port } = await app()
      const { body, headers } = sign()
      const good = headers['X-AgentPress-Signature'] as string
      const res = await rawRequest(port, {}, (req) => {
        req.setHeader('Content-Type', 'application/json')
        req.setHeader('X-AgentPress-Timestamp', String(T0))
        // Two header lines: Node joins unknown duplicate headers with ", ".
        req.setHeader('X-AgentPress-Signature', [`sha256=${'f'.repeat(64)}`, good])
        req.end(body)
      })
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })

    it('8193 bytes with Content-Length → 413 payload_too_large', async () => {
      const { url } = await app()
      const padded = JSON.stringify(EVENT) + ' '.repeat(8193 - JSON.stringify(EVENT).length)
      const { body, headers } = sign(padded)
      expect(Buffer.byteLength(body)).to.equal(8193)
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([413, refusal('payload_too_large')])
      expect(res.headers.connection).to.equal('close')
    })

    it('8192 bytes → 200', async () => {
      const { url } = await app()
      const padded = JSON.stringify(EVENT) + ' '.repeat(8192 - JSON.stringify(EVENT).length)
      const { body, headers } = sign(padded)
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })

    it('8193 bytes chunked, without Content-Length → 413 while streaming', async () => {
      const { port } = await app()
      const padded = JSON.stringify(EVENT) + ' '.repeat(8193 - JSON.stringify(EVENT).length)
      const { body, headers } = sign(padded)
      const res = await rawRequest(port, headers, (req) => {
        expect(req.getHeader('content-length')).to.equal(undefined)
        req.write(body.slice(0, 4000))
        req.write(body.slice(4000))
        req.end()
      })
      expect([res.status, res.body]).to.deep.equal([413, refusal('payload_too_large')])
      expect(f.verifier.refreshes).to.equal(0)
    })

    it('an endless chunked body is cut off at the cap', async () => {
      const { port } = await app()
      const { headers } = sign()
      let written = 0
      const res = await rawRequest(port, headers, async (req) => {
        // Bounded: 64 × 1 KB, far past the cap; the answer comes long before the end.
        for (let i = 0; i < 64 && !req.destroyed; i++) {
          req.write(Buffer.alloc(1024, 0x20))
          written += 1024
          await sleep(5)
        }
      })
      expect([res.status, res.body]).to.deep.equal([413, refusal('payload_too_large')])
      expect(written).to.be.greaterThan(8192)
    })

    it('a Content-Length above the cap → 413 at once, before any byte is sent', async () => {
      const { port } = await app()
      const { headers } = sign()
      const res = await rawRequest(port, { ...headers, 'Content-Length': 1_000_000 }, (req) => {
        req.flushHeaders()
      })
      expect([res.status, res.body]).to.deep.equal([413, refusal('payload_too_large')])
    })

    for (const [encoding, compress] of [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
      ['GZIP', gzipSync],
    ] as const) {
      it(`Content-Encoding: ${encoding} → 415 unsupported_encoding`, async () => {
        const { url } = await app()
        const compressed = compress(Buffer.from(JSON.stringify(EVENT)))
        const headers = {
          'Content-Type': 'application/json',
          'Content-Encoding': encoding,
          'X-AgentPress-Timestamp': String(T0),
          'X-AgentPress-Signature': computeWebhookSignature(SECRET, T0, compressed),
        }
        const res = await post(url, compressed, headers)
        expect([res.status, res.body]).to.deep.equal([415, refusal('unsupported_encoding')])
        expect(f.verifier.refreshes).to.equal(0)
      })
    }

    it('Content-Encoding: identity is accepted', async () => {
      const { url } = await app()
      const { body, headers } = sign()
      const res = await post(url, body, { ...headers, 'Content-Encoding': 'identity' })
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })

    const invalid: Array<[string, string]> = [
      ['empty body', ''],
      ['non-JSON', 'rotation please'],
      ['missing id', JSON.stringify({ ...EVENT, id: undefined })],
      ['missing type', JSON.stringify({ ...EVENT, type: undefined })],
    ]
    // §5: authentic, but not naming both kids → acknowledged as ignored; AgentPress would
    // retry a 400 five times for nothing.
    for (const [label, raw] of [
      ['missing retiredKid', JSON.stringify({ ...EVENT, retiredKid: undefined })],
      ['missing newCurrentKid', JSON.stringify({ ...EVENT, newCurrentKid: undefined })],
    ] as const) {
      it(`${label} (correctly signed) → 200 ignored not_a_rotation, nothing refreshed`, async () => {
        const { url } = await app()
        const { body, headers } = sign(raw)
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([
          200,
          { received: true, ignored: 'not_a_rotation' },
        ])
        expect(f.verifier.refreshes).to.equal(0)
      })
    }
    it('another type naming both kids (correctly signed) → 200, refreshed once', async () => {
      const { url } = await app()
      const { body, headers } = sign(JSON.stringify({ ...EVENT, type: 'signing_key_created' }))
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      expect(f.verifier.refreshes).to.equal(1)
    })
    for (const [label, raw] of invalid) {
      it(`${label} (correctly signed) → 400 invalid_payload`, async () => {
        const { url } = await app()
        const { body, headers } = sign(raw)
        const res = await post(url, body, headers)
        expect([res.status, res.body]).to.deep.equal([400, refusal('invalid_payload')])
        expect(f.verifier.refreshes).to.equal(0)
      })
    }

    it('a body with invalid UTF-8, a BOM and CRLF verifies exactly as signed', async () => {
      const { port } = await app()
      const json = JSON.stringify(EVENT).replace('{', '{\r\n  "note": "NOTE",\r\n  ')
      const [head, tail] = json.split('NOTE') as [string, string]
      const bytes = Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(head),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        Buffer.from(`${tail}\r\n`),
      ])
      const headers = {
        'Content-Type': 'application/json',
        'X-AgentPress-Timestamp': String(T0),
        'X-AgentPress-Signature': computeWebhookSignature(SECRET, T0, bytes),
      }
      const res = await rawRequest(port, headers, (req) => {
        req.end(bytes)
      })
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    })
  })
})
