// createKeyRotationRouter on Express 5, Express 4 and Connect processing a valid event: revoke then
// refresh, failed and hung refreshes, replays, which verifiers an issuer selects, onRotation.
import { expect } from 'chai'
import { type KeyRotationEvent } from 'passport-agentpress-partner'
import { EVENT, FakeVerifier, ISSUER_A, ISSUER_B, describeOnEachFramework } from './support.js'

describeOnEachFramework((f) => {
  const { app, sign, post } = f

  describe('processing a valid event', () => {
    it('emergency: revokeKid(retiredKid) first, then refreshJwks', async () => {
      const { url } = await app()
      const { body, headers } = sign({ ...EVENT, emergency: true })
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      expect(f.verifier.log).to.deep.equal(['revoke:ap-2026-08', 'refresh'])
    })

    it('emergency with a failing refresh: still revoked, 503 with Retry-After', async () => {
      f.verifier.fail = true
      const { url } = await app()
      const { body, headers } = sign({ ...EVENT, emergency: true })
      const res = await post(url, body, headers)
      expect(res.status).to.equal(503)
      expect(res.headers['retry-after']).to.equal('5')
      expect(res.body).to.deep.equal({
        error: 'jwks_unavailable',
        error_description: 'Signing keys unavailable',
      })
      expect(f.verifier.log).to.deep.equal(['revoke:ap-2026-08', 'refresh'])
    })

    it('a failed refresh → 503 and the retry is processed in full', async () => {
      f.verifier.fail = true
      const { url } = await app()
      const first = sign()
      const res = await post(url, first.body, first.headers)
      expect([res.status, res.body]).to.deep.equal([
        503,
        { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
      ])
      expect(res.headers['retry-after']).to.equal('5')
      f.verifier.fail = false
      f.now += 30_000
      const retry = sign()
      const ok = await post(url, retry.body, retry.headers)
      expect([ok.status, ok.body]).to.deep.equal([200, { received: true }])
      expect(f.verifier.refreshes).to.equal(2)
    })

    it('a refresh that never settles → 503 at refreshTimeoutMs', async () => {
      f.verifier.hang = true
      const { url } = await app({ refreshTimeoutMs: 200 })
      const { body, headers } = sign()
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([
        503,
        { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
      ])
      expect(res.headers['retry-after']).to.equal('5')
    })

    it('a replay within the window → 200 duplicate, no second refresh', async () => {
      const { url } = await app()
      const { body, headers } = sign()
      const first = await post(url, body, headers)
      const second = await post(url, body, headers)
      f.now += 120_000
      const resent = sign() // AgentPress re-sending the same id with a fresh timestamp
      const third = await post(url, resent.body, resent.headers)
      expect([first.status, first.body]).to.deep.equal([200, { received: true }])
      const duplicate = { received: true, duplicate: true }
      expect([second.status, second.body]).to.deep.equal([200, duplicate])
      expect([third.status, third.body]).to.deep.equal([200, duplicate])
      expect(f.verifier.refreshes).to.equal(1)
    })

    it('50 concurrent deliveries of one event share one refresh', async () => {
      f.verifier.delayMs = 100
      const { url } = await app()
      const { body, headers } = sign()
      const deliveries = Array.from({ length: 50 }, () => post(url, body, headers))
      const answers = await Promise.all(deliveries)
      // A delivery that joins the processing in flight answers with it ({"received":true}); one
      // that arrives after it completed is a replay ({"received":true,"duplicate":true}). Which
      // one each gets depends on when the 50 connections are served: both are exact 200s.
      const texts = new Set(['{"received":true}', '{"received":true,"duplicate":true}'])
      for (const res of answers) {
        expect(res.status).to.equal(200)
        expect(texts.has(res.text), res.text).to.equal(true)
      }
      expect(answers.some((res) => res.text === '{"received":true}')).to.equal(true)
      expect(f.verifier.refreshes).to.equal(1)
    })

    it('remembers a bounded number of ids (least recently seen forgotten first)', async () => {
      const { url } = await app({ maxRememberedIds: 2 })
      const answers = []
      for (const id of ['e1', 'e2', 'e3', 'e1', 'e3']) {
        const { body, headers } = sign({ ...EVENT, id })
        const res = await post(url, body, headers)
        answers.push([res.status, res.body])
      }
      const received = [200, { received: true }]
      const duplicate = [200, { received: true, duplicate: true }]
      expect(answers).to.deep.equal([received, received, received, received, duplicate])
      // e1 was evicted by e3 and processed again; e3 was still remembered.
      expect(f.verifier.refreshes).to.equal(4)
    })

    it('forgets an id after 24 h', async () => {
      const { url } = await app()
      const first = sign()
      await post(url, first.body, first.headers)
      f.now += 24 * 3600 * 1000 + 1000
      const later = sign()
      const res = await post(url, later.body, later.headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      expect(f.verifier.refreshes).to.equal(2)
    })

    it('refreshes the verifier of event.issuer; all when the event names none', async () => {
      const a = new FakeVerifier(ISSUER_A)
      const b = new FakeVerifier(ISSUER_B)
      const { url } = await app({ verifiers: [a, b] })
      const forB = sign({ ...EVENT, id: 'for-b', issuer: ISSUER_B })
      const resB = await post(url, forB.body, forB.headers)
      expect([resB.status, resB.body]).to.deep.equal([200, { received: true }])
      expect([a.refreshes, b.refreshes]).to.deep.equal([0, 1])
      const { issuer: _issuer, ...noIssuer } = EVENT
      const forAll = sign({ ...noIssuer, id: 'for-all', emergency: true })
      const resAll = await post(url, forAll.body, forAll.headers)
      expect([resAll.status, resAll.body]).to.deep.equal([200, { received: true }])
      expect(a.log).to.deep.equal(['revoke:ap-2026-08', 'refresh'])
      expect(b.log).to.deep.equal(['refresh', 'revoke:ap-2026-08', 'refresh'])
    })

    it('an issuer no verifier trusts → 200 ignored, nothing refreshed or revoked', async () => {
      const { url } = await app()
      const other = sign({ ...EVENT, issuer: `${ISSUER_A}/`, emergency: true })
      const res = await post(url, other.body, other.headers)
      const ignored = { received: true, ignored: 'unknown_issuer' }
      expect([res.status, res.body]).to.deep.equal([200, ignored])
      expect(f.verifier.log).to.deep.equal([])
    })

    it('a verifier without an issuer matches every event', async () => {
      const anonymous = new FakeVerifier()
      const { url } = await app({ verifiers: [anonymous] })
      const { body, headers } = sign({ ...EVENT, issuer: 'https://api.agent.press/orgs/other' })
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      expect(anonymous.refreshes).to.equal(1)
    })

    it('takes the verifiers of a strategy', async () => {
      const { url } = await app({ verifiers: undefined, strategy: { verifiers: [f.verifier] } })
      const { body, headers } = sign()
      const res = await post(url, body, headers)
      expect([res.status, res.body]).to.deep.equal([200, { received: true }])
      expect(f.verifier.refreshes).to.equal(1)
    })

    it('calls onRotation once per processed event; its failures change nothing', async () => {
      const seen: KeyRotationEvent[] = []
      let calls = 0
      const { url } = await app({
        onRotation: (event) => {
          calls++
          seen.push(event)
          if (calls === 2) throw new Error('hook bug')
          if (calls === 3) return Promise.reject(new Error('async hook bug'))
          return undefined
        },
      })
      const answers = []
      for (const id of ['h1', 'h1', 'h2', 'h3']) {
        const { body, headers } = sign({ ...EVENT, id, jwksUrl: 'http://127.0.0.1:9/x' })
        const res = await post(url, body, headers)
        answers.push([res.status, res.body])
      }
      const received = [200, { received: true }]
      const duplicate = [200, { received: true, duplicate: true }]
      expect(answers).to.deep.equal([received, duplicate, received, received])
      expect(seen.map((event) => event.id)).to.deep.equal(['h1', 'h2', 'h3'])
      expect(seen[0]).to.deep.equal({ ...EVENT, id: 'h1' })
    })
  })
})
