// Issue 12, webhook fidelity (§5): a `whsec_<base64>` secret is tried both ways (UTF-8 of the
// whole string, and the base64-decoded rest as Svix does), and signatures may be `sha256=<hex>` or
// `v1,<base64>`. Every combination is verified end to end through the router on Express 4,
// Express 5 and Connect; a signature made with any other key is still refused. On the code before
// the fix, every Svix-derived or base64-encoded delivery was 401 signature_mismatch.
import { expect } from 'chai'
import { createHmac, randomBytes } from 'node:crypto'
import { createKeyRotationRouter } from 'passport-agentpress-partner'
import { computeWebhookSignature, signWebhook } from 'passport-agentpress-partner/testing'
import connect from 'connect'
import express5 from 'express'
import { createRequire } from 'node:module'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { STACKS, type Stack } from '../support/stacks.js'
import { listen, send } from '../support/wire.js'
import { CountingVerifier } from '../support/doubles.js'

const NOW = 1_790_000_000
const SECRET = `whsec_${randomBytes(24).toString('base64')}`
const OTHER = `whsec_${randomBytes(24).toString('base64')}`
const RECEIVED = '{"received":true}'
const MISMATCH = '{"error":"signature_mismatch","error_description":"Signature does not match"}'

const express4 = createRequire(import.meta.url)('express4') as typeof express5

/** The router mounted with `use('/hook', router)`, as the README mounts it, on `stack`. */
function mounted(
  stack: Stack,
  router: ReturnType<typeof createKeyRotationRouter>,
): (req: IncomingMessage, res: ServerResponse) => void {
  if (stack === 'connect') {
    const app = connect()
    app.use('/hook', router as connect.NextHandleFunction)
    return app
  }
  const app = stack === 'express4' ? express4() : express5()
  app.use('/hook', router as unknown as express5.RequestHandler)
  return app
}

let sequence = 0
const event = (extra: Record<string, unknown> = {}) => ({
  id: `evt_fidelity_${++sequence}`,
  type: 'signing_key_rotation',
  retiredKid: 'ap-old',
  newCurrentKid: 'ap-new',
  ...extra,
})

for (const stack of STACKS) {
  describe(`webhook fidelity through the router on ${stack}`, () => {
    let verifier: CountingVerifier
    let server: Awaited<ReturnType<typeof listen>>
    beforeEach(async () => {
      verifier = new CountingVerifier()
      const router = createKeyRotationRouter({
        webhookSecret: SECRET,
        verifiers: [verifier],
        clock: () => NOW * 1000,
      })
      server = await listen(mounted(stack, router))
    })
    afterEach(() => server.close())

    const post = (body: string, timestamp: string, signature: string) =>
      send(server.port, {
        method: 'POST',
        path: '/hook',
        headers: [
          ['Content-Type', 'application/json'],
          ['X-AgentPress-Timestamp', timestamp],
          ['X-AgentPress-Signature', signature],
        ],
        body,
      })

    for (const secretDecoding of ['utf8', 'base64'] as const) {
      for (const signatureEncoding of ['hex', 'base64'] as const) {
        it(`key ${secretDecoding}, signature ${signatureEncoding} → 200, refreshed once`, async () => {
          const signed = signWebhook(event(), {
            secret: SECRET,
            clock: () => NOW * 1000,
            secretDecoding,
            signatureEncoding,
          })
          const signature = signed.headers['X-AgentPress-Signature']!
          // What the test kit wrote is the independently computed form, not just "something".
          const key =
            secretDecoding === 'utf8'
              ? Buffer.from(SECRET, 'utf8')
              : Buffer.from(SECRET.slice('whsec_'.length), 'base64')
          const mac = createHmac('sha256', key).update(`${NOW}.${signed.body}`).digest()
          expect(signature).to.equal(
            signatureEncoding === 'hex'
              ? `sha256=${mac.toString('hex')}`
              : `v1,${mac.toString('base64')}`,
          )
          expect(signature).to.match(
            signatureEncoding === 'hex' ? /^sha256=[0-9a-f]{64}$/ : /^v1,[A-Za-z0-9+/]{43}=$/,
          )
          const res = await post(signed.body, String(NOW), signature)
          expect([res.status, res.text]).to.deep.equal([200, RECEIVED])
          expect(verifier.refreshes).to.equal(1)

          // The same form with any other key: refused, nothing refreshed.
          const forged = computeWebhookSignature(OTHER, NOW, signed.body, {
            secretDecoding,
            signatureEncoding,
          })
          const refused = await post(signed.body, String(NOW), forged)
          expect([refused.status, refused.text]).to.deep.equal([401, MISMATCH])
          expect(verifier.refreshes).to.equal(1)
        })
      }
    }

    it('the Svix form independently: HMAC keyed with the decoded secret, `v1,<base64>` among other entries', async () => {
      const body = JSON.stringify(event({ type: 'emergency' }))
      const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64')
      const mac = createHmac('sha256', key).update(`${NOW}.${body}`).digest('base64')
      const junk = `v1,${randomBytes(32).toString('base64')}`
      const res = await post(body, String(NOW), `${junk} v1,${mac}`)
      expect([res.status, res.text]).to.deep.equal([200, RECEIVED])
      expect(verifier.revoked).to.deep.equal(['ap-old']) // type "emergency" is an emergency
    })

    it('malformed base64 entries never match: unpadded, non-canonical, wrong length, more than 8', async () => {
      const body = JSON.stringify(event())
      const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64')
      const good = createHmac('sha256', key).update(`${NOW}.${body}`).digest('base64')
      const last = good[42]!
      const alphabet = 'ACEGIKMOQSUWYacegikmoqsuwy02468+'
      const sibling = alphabet.includes(last)
        ? 'BDFHJLNPRTVXZbdfhjlnprtvxz13579/'[alphabet.indexOf(last)]!
        : last
      const variants = [
        `v1,${good.slice(0, 43)}`, // no padding
        `v1,${good.slice(0, 42)}${sibling}=`, // same bytes, non-canonical last character
        `v1,${good}AAAA`, // too long
        `v1=${good}`,
        `V1,${good}`,
        `${Array(8)
          .fill(`v1,${randomBytes(32).toString('base64')}`)
          .join(' ')} v1,${good}`, // 9 entries
      ]
      for (const signature of variants) {
        const res = await post(body, String(NOW), signature)
        expect([signature.slice(0, 12), res.status]).to.deep.equal([signature.slice(0, 12), 401])
      }
      expect(verifier.refreshes).to.equal(0)
    })

    it('an authentic body without both kids is acknowledged as ignored (200), not refused', async () => {
      const signed = signWebhook(
        { id: 'evt_ping', type: 'ping' },
        { secret: SECRET, clock: () => NOW * 1000 },
      )
      const res = await post(signed.body, String(NOW), signed.headers['X-AgentPress-Signature']!)
      expect([res.status, res.text]).to.deep.equal([
        200,
        '{"received":true,"ignored":"not_a_rotation"}',
      ])
      expect(verifier.refreshes).to.equal(0)
    })
  })
}
