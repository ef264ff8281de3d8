// Issue 12, item 2, measured: a sustained spray of random-kid tokens (~100/s, no valid signature)
// while the issuer rotates its key without the webhook. §3: traffic without a valid signature
// must not make a legitimately rotated key fail; it may cost latency within a stated bound
// (README, "The JWKS cache": at most one cooldown plus two fetch timeouts; typically < cooldown).
import { expect } from 'chai'
import { randomUUID } from 'node:crypto'
import { newEd25519KeyPair } from '../../lib/testing/ed25519-key.js'
import {
  JwksUnavailableError,
  PartnerTokenError,
  PartnerTokenVerifier,
} from 'passport-agentpress-partner'
import { createMockAgentPress } from 'passport-agentpress-partner/testing'
import { signWith } from '../support/tokens.js'

const COOLDOWN_MS = 1_000
const DURATION_MS = 4_000
const ROTATE_AT_MS = 1_450 // mid-window: some requests must wait for the next fetch
const SPRAY_EVERY_MS = 10 // ~100/s
const LEGIT_EVERY_MS = 50 // ~20/s

const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

describe('random-kid spray during a rotation without the webhook (measured)', function () {
  this.timeout(20_000)

  it('refuses 0 legitimate requests; bounded extra latency; bounded issuer fetch rate', async () => {
    const mock = await createMockAgentPress()
    const attacker = newEd25519KeyPair().privateKey
    try {
      const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, jwksCooldownMs: COOLDOWN_MS })
      await verifier.verifyToken(mock.signToken())
      mock.resetJwksRequestCount()

      const legit: Array<Promise<{ outcome: string; ms: number; rotated: boolean }>> = []
      const junk: Array<Promise<string>> = []
      const outcome = (error: unknown): string => {
        if (error instanceof PartnerTokenError || error instanceof JwksUnavailableError)
          return error.reason
        throw error
      }
      const started = performance.now()
      let rotated = false
      const spray = setInterval(() => {
        // Plausible claims, a random kid, a signature by a key the issuer never published.
        const token = signWith(
          attacker,
          { alg: 'EdDSA', kid: `ap-${randomUUID()}` },
          {
            iss: mock.issuer,
            aud: mock.audience,
            ext_provider: mock.extProvider,
            sub: 'x',
            jti: randomUUID(),
            scope: 'mcp:read',
            iat: Math.floor(Date.now() / 1000),
            exp: Math.floor(Date.now() / 1000) + 60,
          },
        )
        junk.push(verifier.verifyToken(token).then(() => 'accepted', outcome))
      }, SPRAY_EVERY_MS)
      const users = setInterval(() => {
        const t0 = performance.now()
        const after = rotated
        legit.push(
          verifier.verifyToken(mock.signToken()).then(
            () => ({ outcome: 'ok', ms: performance.now() - t0, rotated: after }),
            (error: unknown) => ({
              outcome: outcome(error),
              ms: performance.now() - t0,
              rotated: after,
            }),
          ),
        )
      }, LEGIT_EVERY_MS)
      const rotation = setTimeout(() => {
        mock.rotateKeys() // published at the issuer; no webhook reaches us
        rotated = true
      }, ROTATE_AT_MS)
      await new Promise((resolve) => setTimeout(resolve, DURATION_MS))
      clearInterval(spray)
      clearInterval(users)
      clearTimeout(rotation)
      const results = await Promise.all(legit)
      const junkAnswers = await Promise.all(junk)
      const elapsedMs = performance.now() - started
      const fetches = mock.jwksRequestCount

      const refused = results.filter((r) => r.outcome !== 'ok')
      const newKey = results
        .filter((r) => r.rotated)
        .map((r) => r.ms)
        .sort((a, b) => a - b)
      const baseline = results
        .filter((r) => !r.rotated)
        .map((r) => r.ms)
        .sort((a, b) => a - b)
      const report = {
        sprayed: junkAnswers.length,
        sprayRate: Math.round((junkAnswers.length / DURATION_MS) * 1000),
        legitimate: results.length,
        legitimateRefused: refused.length,
        newKeyLatencyMs: {
          p50: Math.round(percentile(newKey, 50)),
          p99: Math.round(percentile(newKey, 99)),
        },
        oldKeyLatencyMs: {
          p50: Math.round(percentile(baseline, 50)),
          p99: Math.round(percentile(baseline, 99)),
        },
        issuerFetches: fetches,
        issuerFetchesPerMinute: Math.round((fetches / elapsedMs) * 60_000),
        conditional304: mock.jwksNotModifiedCount,
      }
      process.stdout.write(`      spray during rotation: ${JSON.stringify(report)}\n`)

      expect(refused, 'legitimate requests refused').to.deep.equal([])
      expect(junkAnswers.length).to.be.at.least(200)
      expect(new Set(junkAnswers)).to.deep.equal(new Set(['kid_missing_or_unknown']))
      // Bound: one kid-miss fetch per cooldown (+1 for the fetch in flight at the end).
      expect(fetches).to.be.at.most(Math.ceil(elapsedMs / COOLDOWN_MS) + 1)
      // Bound: a new key waits at most one cooldown plus a fetch (loopback: well under 500 ms).
      expect(newKey.length).to.be.at.least(20)
      expect(percentile(newKey, 99)).to.be.below(COOLDOWN_MS + 500)
    } finally {
      await mock.close()
    }
  })
})
