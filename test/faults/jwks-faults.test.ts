// Fault injection on the JWKS endpoint (§3): a real loopback JWKS server that misbehaves on
// command, behind a real Express 5 app with plain passport.authenticate(). Outages answer 503 with
// Retry-After: 5 (cold) or keep serving cached keys (stale window); never a 401 for an outage, never
// a crash, and the first good fetch recovers. Time travel goes through the verifier's `clock`.
import { expect } from 'chai'
import express from 'express'
import { type KeyObject } from 'node:crypto'
import { newEd25519KeyPair } from '../../lib/testing/ed25519-key.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  AgentPressPartnerStrategy,
  createKeyRotationRouter,
  type JwksFetchError,
  type PartnerTokenClaims,
} from 'passport-agentpress-partner'
import { signWebhook } from 'passport-agentpress-partner/testing'
import { finalhandlerPage, newPassport } from '../support/stacks.js'
import { closedPort, within } from '../support/servers.js'
import { signRaw } from '../support/tokens.js'
import {
  crashWatch,
  listen,
  send,
  sleep,
  type Listening,
  type WireResponse,
} from '../support/wire.js'

const ISSUER = 'https://api.agent.press/orgs/faults'
const AUDIENCE = 'https://mcp.example.com/mcp'
const PROVIDER = 'faults-partner'
const REALM = 'mcp'
const T0 = Date.UTC(2026, 10, 21, 12, 0, 0)
const TIMEOUT_MS = 500
const MAX_AGE_MS = 3_600_000
const STALE_MS = 86_400_000
const COOLDOWN_MS = 30_000
const SECRET = 'whsec_faults0123456789abcdef00'

type Mode =
  | 'ok'
  | 'stall'
  | 'drip'
  | 'fast-drip'
  | 'reset'
  | 'garbage'
  | 'html'
  | 'keys_null'
  | 'keys_object'
  | '404'
  | '500'
  | '301'
  | '302'
  | '307'
  | '308'
  | 'huge'
  | 'huge-chunked'
  | 'slow-ok'

interface Key {
  kid: string
  privateKey: KeyObject
  jwk: Record<string, string>
}
function newKey(kid: string): Key {
  const { privateKey, publicKey } = newEd25519KeyPair()
  return {
    kid,
    privateKey,
    jwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid },
  }
}

/** A JWKS endpoint that fails on command, counting every request (and any to its redirect target). */
interface FaultyJwks extends Listening {
  mode: Mode
  /** Key sets served in turn, one per request (flapping); one set: always that one. */
  sets: Key[][]
  readonly count: number
  readonly redirectTargetCount: number
}

async function startFaultyJwks(): Promise<FaultyJwks> {
  let count = 0
  let served = 0
  let redirectTargetCount = 0
  const timers = new Set<NodeJS.Timeout>()
  const state = { mode: 'ok' as Mode, sets: [] as Key[][] }
  const nextDocument = () => {
    const set = state.sets[served++ % state.sets.length] ?? []
    return JSON.stringify({ keys: set.map((k) => k.jwk) })
  }
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/moved/jwks.json') {
      redirectTargetCount++
      res.setHeader('content-type', 'application/json')
      res.end(nextDocument())
      return
    }
    count++
    const json = (body: string, status = 200, type = 'application/json') => {
      res.statusCode = status
      res.setHeader('content-type', type)
      res.end(body)
    }
    switch (state.mode) {
      case 'ok':
        return json(nextDocument())
      case 'slow-ok': {
        // The document as it is now, delivered 300 ms later.
        const body = nextDocument()
        const timer = setTimeout(() => json(body), 300)
        timers.add(timer)
        return
      }
      case 'stall':
        return // never answers; closed by close()
      case 'drip':
      case 'fast-drip': {
        // 'drip': one byte every 50 ms (seconds for the whole document: past the timeout);
        // 'fast-drip': the document in 5 pieces 20 ms apart (well within it).
        const body = nextDocument()
        res.setHeader('content-type', 'application/json')
        const step = state.mode === 'drip' ? 1 : Math.ceil(body.length / 5)
        let i = 0
        const timer = setInterval(
          () => {
            if (res.destroyed || i >= body.length) {
              clearInterval(timer)
              timers.delete(timer)
              if (!res.destroyed) res.end()
              return
            }
            res.write(body.slice(i, i + step))
            i += step
          },
          state.mode === 'drip' ? 50 : 20,
        )
        timers.add(timer)
        return
      }
      case 'reset':
        req.socket.destroy()
        return
      case 'garbage':
        return json('\u0000{not json')
      case 'html':
        return json('<!doctype html><title>Maintenance</title>', 200, 'text/html')
      case 'keys_null':
        return json('{"keys":null}')
      case 'keys_object':
        return json('{"keys":{"0":{}}}')
      case '404':
        return json('{"error":"not found"}', 404)
      case '500':
        return json('{"error":"internal"}', 500)
      case '301':
      case '302':
      case '307':
      case '308':
        res.statusCode = Number(state.mode)
        res.setHeader('location', '/moved/jwks.json')
        return res.end()
      case 'huge': {
        // 10 MB declared, headers sent at once with the first bytes, the rest never: the refusal
        // must come from the headers alone (building and sending 10 MB first let a loaded machine
        // reach the fetch timeout before the headers were read).
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': String(10 * 1024 * 1024),
        })
        res.write('{"keys":[],"pad":"')
        return
      }
      case 'huge-chunked': {
        // 10 MB with no Content-Length: the cap must hold while streaming.
        res.setHeader('content-type', 'application/json')
        const chunk = Buffer.alloc(64 * 1024, 0x20)
        let sent = 0
        const pump = (): void => {
          while (sent < 10 * 1024 * 1024 && !res.destroyed) {
            sent += chunk.length
            if (!res.write(chunk)) {
              res.once('drain', pump)
              return
            }
          }
          if (!res.destroyed) res.end()
        }
        return pump()
      }
    }
  }
  const server = await listen(handler)
  return {
    url: server.url,
    port: server.port,
    get mode() {
      return state.mode
    },
    set mode(mode: Mode) {
      state.mode = mode
    },
    get sets() {
      return state.sets
    },
    set sets(sets: Key[][]) {
      state.sets = sets
      served = 0
    },
    get count() {
      return count
    },
    get redirectTargetCount() {
      return redirectTargetCount
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer)
      await server.close()
    },
  }
}

interface Rig {
  server: Listening
  errors: JwksFetchError['reason'][]
  strategy: AgentPressPartnerStrategy
  /** Sends `Bearer <token>` to /mcp. */
  call(token: string): Promise<WireResponse>
  close(): Promise<void>
}

let now = T0
const clock = () => now

// Only a row about a timeout needs the short deadline; any other row gets a deadline no loaded
// machine reaches, so its answer (too_large, http_status, …) never races the clock.
const patient = (reason: JwksFetchError['reason']): Record<string, unknown> =>
  reason === 'timeout' ? {} : { jwksTimeoutMs: 30_000 }

async function rig(
  jwksUrl: string,
  extra: Record<string, unknown> = {},
  routerExtra: Record<string, unknown> = {},
): Promise<Rig> {
  const errors: JwksFetchError['reason'][] = []
  const passport = newPassport()
  const strategy = new AgentPressPartnerStrategy(
    {
      partnerMcp: {
        issuer: ISSUER,
        audience: AUDIENCE,
        expectedExtProvider: PROVIDER,
        jwksUrl,
        jwksTimeoutMs: TIMEOUT_MS,
        jwksCacheMaxAgeMs: MAX_AGE_MS,
        jwksStaleMaxMs: STALE_MS,
        jwksCooldownMs: COOLDOWN_MS,
        onJwksError: (error) => errors.push(error.reason),
        clock,
        ...extra,
      },
      realm: REALM,
      resourceMetadataUrl: false,
    },
    async (claims: PartnerTokenClaims) => ({ sub: claims.sub }),
  )
  passport.use(strategy)
  const app = express()
  app.use(
    '/webhooks/key-rotation',
    createKeyRotationRouter({ webhookSecret: SECRET, strategy, clock, ...routerExtra }),
  )
  app.post('/mcp', passport.authenticate('agentpress-partner', { session: false }), (req, res) => {
    res.json({ user: (req as unknown as { user: unknown }).user })
  })
  const server = await listen(app)
  return {
    server,
    errors,
    strategy,
    call: (token) =>
      send(server.port, {
        path: '/mcp',
        headers: [['Authorization', `Bearer ${token}`]],
        body: '',
      }),
    close: () => server.close(),
  }
}

function token(key: Key, extra: Record<string, unknown> = {}): string {
  const iat = Math.floor(now / 1000)
  return signRaw(
    key.privateKey,
    { alg: 'EdDSA', typ: 'JWT', kid: key.kid },
    {
      iss: ISSUER,
      aud: AUDIENCE,
      ext_provider: PROVIDER,
      sub: 'user-1',
      jti: `j-${iat}`,
      scope: 'mcp:read',
      iat,
      exp: iat + 60,
      ...extra,
    },
  )
}

/** A promise and its resolve, for pinning the order of events. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

function expect200(res: WireResponse): void {
  expect(res.status, res.text).to.equal(200)
  expect(res.all('www-authenticate')).to.deep.equal([])
  expect(res.text).to.equal('{"user":{"sub":"user-1"}}')
}
function expect503(res: WireResponse): void {
  expect(res.status, res.text).to.equal(503)
  expect(res.get('retry-after')).to.equal('5')
  expect(res.all('www-authenticate')).to.deep.equal([])
  expect(res.text).to.equal(finalhandlerPage('JwksUnavailableError: Signing keys unavailable', 503))
}

describe('JWKS fault injection through a real loopback JWKS and a real HTTP app', function () {
  this.timeout(30_000)
  const watch = crashWatch()
  let jwks: FaultyJwks
  const k1 = newKey('k1')
  const k2 = newKey('k2')
  const logged: string[] = []
  let originalError: typeof console.error

  before(async () => {
    jwks = await startFaultyJwks()
    // finalhandler logs each 503 through console.error; keep the output readable.
    originalError = console.error
    console.error = (...args: unknown[]) => logged.push(args.map(String).join(' '))
  })
  after(async () => {
    console.error = originalError
    await jwks.close()
  })
  beforeEach(() => {
    now = T0
    jwks.mode = 'ok'
    jwks.sets = [[k1]]
  })
  afterEach(() => {
    expect(watch.crashes, 'no unhandled rejection or uncaught exception').to.deep.equal([])
  })

  const COLD: Array<[Mode, JwksFetchError['reason'], string]> = [
    ['stall', 'timeout', 'stall past the timeout'],
    ['drip', 'timeout', 'slow drip (1 byte / 50 ms)'],
    ['reset', 'network', 'connection reset'],
    ['301', 'redirect', '301'],
    ['302', 'redirect', '302'],
    ['307', 'redirect', '307'],
    ['308', 'redirect', '308'],
    ['404', 'http_status', '404'],
    ['500', 'http_status', '500'],
    ['html', 'invalid_json', 'an HTML page with 200'],
    ['garbage', 'invalid_json', 'non-JSON bytes'],
    ['keys_null', 'invalid_jwks', '{"keys":null}'],
    ['keys_object', 'invalid_jwks', '"keys" an object'],
    ['huge', 'too_large', '10 MB body with Content-Length'],
    ['huge-chunked', 'too_large', '10 MB body, chunked, no Content-Length'],
  ]

  describe('cold start: nothing cached', () => {
    it('refused connection → 503 Retry-After: 5; recovers on the first good fetch', async () => {
      const port = await closedPort()
      // A server that will come up on that port later: the same URL, now answering.
      const r = await rig(`http://127.0.0.1:${port}/jwks.json`)
      try {
        expect503(await r.call(token(k1)))
        expect(r.errors).to.deep.equal(['network'])
        const { createServer } = await import('node:http')
        const revived = createServer((_req, res) => {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ keys: [k1.jwk] }))
        })
        await new Promise<void>((resolve) => revived.listen(port, '127.0.0.1', resolve))
        try {
          // Inside the 5 s failure pause: still 503, without hammering the issuer.
          expect503(await r.call(token(k1)))
          expect(r.errors).to.have.length(1)
          now += 5_000
          expect200(await r.call(token(k1)))
        } finally {
          revived.closeAllConnections()
          await new Promise<void>((resolve) => revived.close(() => resolve()))
        }
      } finally {
        await r.close()
      }
    })

    for (const [mode, reason, label] of COLD) {
      it(`${label} → 503 Retry-After: 5 (${reason}); recovers on the first good fetch`, async () => {
        jwks.mode = mode
        const r = await rig(`${jwks.url}/jwks.json`, patient(reason))
        try {
          const started = Date.now()
          expect503(await r.call(token(k1)))
          const elapsed = Date.now() - started
          // Bounded (a stalled fetch would never end), generously: the machine may be loaded.
          expect(elapsed, 'bounded by the fetch timeout').to.be.below(TIMEOUT_MS + 10_000)
          expect(r.errors).to.deep.equal([reason])
          expect(jwks.count).to.be.greaterThan(0)
          expect(jwks.redirectTargetCount, 'redirects are never followed').to.equal(0)

          // Within the failure pause: 503 at once, no new fetch.
          const fetched = jwks.count
          expect503(await r.call(token(k1)))
          expect(jwks.count).to.equal(fetched)

          // The issuer recovers; after the pause the first fetch succeeds and serves.
          jwks.mode = 'ok'
          now += 5_000
          expect200(await r.call(token(k1)))
          expect(jwks.count).to.equal(fetched + 1)
          expect(r.errors).to.have.length(1)
          expect200(await r.call(token(k1)))
          expect(jwks.count).to.equal(fetched + 1)
        } finally {
          await r.close()
        }
      })
    }

    it('50 concurrent cold requests during a stall → 50 × 503 and one fetch', async () => {
      jwks.mode = 'stall'
      const r = await rig(`${jwks.url}/jwks.json`)
      try {
        const before = jwks.count
        const results = await Promise.all(Array.from({ length: 50 }, () => r.call(token(k1))))
        for (const res of results) expect503(res)
        expect(jwks.count - before).to.equal(1)
      } finally {
        await r.close()
      }
    })

    it('a slow drip that completes within the timeout → 200', async () => {
      jwks.mode = 'fast-drip'
      const r = await rig(`${jwks.url}/jwks.json`, { jwksTimeoutMs: 2000 })
      try {
        expect200(await r.call(token(k1)))
        expect(r.errors).to.deep.equal([])
      } finally {
        await r.close()
      }
    })
  })

  describe('warm cache: keys fetched once, then the endpoint fails', () => {
    for (const [mode, reason, label] of COLD.filter(([m]) => m !== 'drip')) {
      it(`${label} past max age → stale keys keep serving (200), then 503 past the stale window, then recovery`, async () => {
        const r = await rig(`${jwks.url}/jwks.json`, patient(reason))
        try {
          expect200(await r.call(token(k1)))
          jwks.mode = mode
          // Fresh cache: no fetch at all, whatever the endpoint does.
          now += MAX_AGE_MS - 1
          const fetched = jwks.count
          expect200(await r.call(token(k1)))
          expect(jwks.count).to.equal(fetched)

          // Past max age: served stale at once; one background refresh, which fails.
          now += 2
          expect200(await r.call(token(k1)))
          await waitFor(() => r.errors.length === 1, TIMEOUT_MS + 1500)
          expect(r.errors).to.deep.equal([reason])
          // More requests inside the failure pause: still 200, no new fetch.
          const afterFirst = jwks.count
          for (let i = 0; i < 5; i++) expect200(await r.call(token(k1)))
          expect(jwks.count).to.equal(afterFirst)

          // Deep inside the stale window, hours later: still 200.
          now += 12 * 3_600_000
          expect200(await r.call(token(k1)))
          await waitFor(() => r.errors.length === 2, TIMEOUT_MS + 1500)

          // Beyond max age + stale window: nothing can answer → 503, never 401.
          now = T0 + MAX_AGE_MS + STALE_MS + 1
          expect503(await r.call(token(k1)))

          // Recovery on the first good fetch after the pause.
          jwks.mode = 'ok'
          now += 5_000
          expect200(await r.call(token(k1)))
        } finally {
          await r.close()
        }
      })
    }

    it('during an outage, a new kid is an outage (503), not a bad token', async () => {
      const r = await rig(`${jwks.url}/jwks.json`)
      try {
        expect200(await r.call(token(k1)))
        jwks.mode = '500'
        expect503(await r.call(token(k2)))
        // k1 still answers from the (fresh) cache.
        expect200(await r.call(token(k1)))
      } finally {
        await r.close()
      }
    })

    it('a refused connection after a good fetch: stale service, then 503 past the window', async () => {
      const port = await closedPort()
      const { createServer } = await import('node:http')
      const up = createServer((_req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ keys: [k1.jwk] }))
      })
      await new Promise<void>((resolve) => up.listen(port, '127.0.0.1', resolve))
      const r = await rig(`http://127.0.0.1:${port}/jwks.json`)
      try {
        expect200(await r.call(token(k1)))
        up.closeAllConnections()
        await new Promise<void>((resolve) => up.close(() => resolve()))
        now += MAX_AGE_MS + 1
        expect200(await r.call(token(k1)))
        await waitFor(() => r.errors.length === 1, 2000)
        expect(r.errors).to.deep.equal(['network'])
        now = T0 + MAX_AGE_MS + STALE_MS + 1
        expect503(await r.call(token(k1)))
      } finally {
        await r.close()
      }
    })
  })

  describe('keys flapping between two sets', () => {
    it('sets {k1} / {k2} alternating: a vanished kid is held for the next allowed fetch (never 5xx, never an early 401), ≤ 1 kid-miss fetch per cooldown', async () => {
      jwks.sets = [[k1], [k2]]
      const r = await rig(`${jwks.url}/jwks.json`)
      const base = jwks.count
      try {
        expect200(await r.call(token(k1))) // fetch 1: {k1}
        expect200(await r.call(token(k2))) // kid miss → fetch 2: {k2}
        // k1 vanished from the last good document, which started before this request: inside the
        // cooldown it is held, not refused, and the next allowed fetch ({k1} again) serves it.
        const held = r.call(token(k1))
        await sleep(200)
        expect(jwks.count - base).to.equal(2)
        now += COOLDOWN_MS
        const [a, b] = await Promise.all([held, r.call(token(k1))]) // the second starts fetch 3
        expect200(a)
        expect200(b)
        expect(jwks.count - base).to.equal(3)
        // k2 is now absent from a fetch that started before it arrived: held again, and refused
        // only once a fetch started after it ({k2}: accepted) has answered.
        const heldK2 = r.call(token(k2))
        await sleep(200)
        expect(jwks.count - base).to.equal(3)
        now += COOLDOWN_MS
        const [c, d] = await Promise.all([heldK2, r.call(token(k2))]) // fetch 4: {k2}
        expect200(c)
        expect200(d)
        expect(jwks.count - base).to.equal(4)
      } finally {
        await r.close()
      }
    })

    it('sets {k1} / {k1, k2} alternating: k1 (in both) is never refused', async () => {
      jwks.sets = [[k1], [k1, k2]]
      const r = await rig(`${jwks.url}/jwks.json`)
      const base = jwks.count
      try {
        for (let round = 0; round < 4; round++) {
          expect200(await r.call(token(k1))) // round 0: cold fetch 1, {k1}
          // Round 0: a kid miss after the cold fetch (no kid-miss cooldown yet) → fetch 2,
          // {k1, k2}; later rounds find k2 in that (still fresh) document.
          expect200(await r.call(token(k2)))
          expect200(await r.call(token(k1)))
          expect(jwks.count - base).to.equal(2)
          now += COOLDOWN_MS
        }
      } finally {
        await r.close()
      }
    })
  })

  describe('webhook-triggered refreshes have their own single flight', () => {
    it('50 distinct rotation events while one fetch runs → 50 × 200 and exactly 2 fetches (one follow-up shared by all)', async function () {
      this.timeout(150_000)
      // The order the contract speaks of (§3: behind a running fetch, one follow-up is queued and
      // shared by every caller that arrives before it starts) is pinned, not left to a race: the
      // issuer holds the first fetch until all 50 deliveries have asked for their refresh.
      const held: ServerResponse[] = []
      let gateOpen = false
      const document = JSON.stringify({ keys: [k1.jwk, k2.jwk] })
      const answer = (res: ServerResponse): void => {
        res.setHeader('content-type', 'application/json')
        res.end(document)
      }
      let fetches = 0
      const firstFetch = deferred()
      const gated = await listen((_req, res) => {
        fetches++
        firstFetch.resolve()
        if (gateOpen) return answer(res)
        held.push(res)
      })
      // Deadlines far beyond the wait: the point is the single flight, not a timeout.
      const r = await rig(
        `${gated.url}/jwks.json`,
        { jwksTimeoutMs: 60_000 },
        { refreshTimeoutMs: 60_000 },
      )
      // Count the refreshes the router asks for (the real method still does the work).
      const verifier = r.strategy.verifiers[0]!
      const refresh = verifier.refreshJwks!.bind(verifier)
      let asked = 0
      const allAsked = deferred()
      verifier.refreshJwks = () => {
        if (++asked === 50) allAsked.resolve()
        return refresh()
      }
      try {
        const deliveries = Array.from({ length: 50 }, (_, i) =>
          signWebhook(
            {
              id: `evt_distinct_${i}`,
              type: 'signing_key_rotation',
              issuer: ISSUER,
              retiredKid: 'k0',
              newCurrentKid: 'k2',
            },
            { secret: SECRET, clock },
          ),
        )
        const results = Promise.all(
          deliveries.map((d) =>
            send(r.server.port, {
              path: '/webhooks/key-rotation',
              headers: Object.entries(d.headers),
              body: d.body,
              timeoutMs: 120_000,
            }),
          ),
        )
        await within(Promise.all([firstFetch.promise, allAsked.promise]), 60_000)
        // 50 refreshes asked for, one fetch running (held): nothing else has started.
        expect([asked, fetches]).to.deep.equal([50, 1])
        gateOpen = true
        for (const res of held.splice(0)) answer(res)
        for (const res of await within(results, 60_000))
          expect([res.status, res.text]).to.deep.equal([200, '{"received":true}'])
        // The first delivery's fetch, then one follow-up for the 49 that arrived while it ran.
        expect(fetches).to.equal(2)
        expect200(await r.call(token(k2)))
        expect(fetches).to.equal(2)
      } finally {
        await r.close()
        await gated.close()
      }
    })
  })

  describe('an older slow fetch finishing after a newer rotation', () => {
    it('a webhook during a slow fetch queues one follow-up; the rotated-in key verifies after it', async () => {
      jwks.sets = [[k1]]
      jwks.mode = 'slow-ok'
      const r = await rig(`${jwks.url}/jwks.json`)
      const base = jwks.count
      try {
        // A cold request starts a slow fetch that will deliver the old set {k1}.
        const cold = r.call(token(k1))
        await sleep(50)
        // Meanwhile the issuer rotates to {k1, k2} and tells us.
        jwks.sets = [[k1, k2]]
        const delivery = signWebhook(
          {
            id: 'evt_slow',
            type: 'signing_key_rotation',
            issuer: ISSUER,
            retiredKid: 'k0',
            newCurrentKid: 'k2',
          },
          { secret: SECRET, clock },
        )
        const hook = await send(r.server.port, {
          path: '/webhooks/key-rotation',
          headers: Object.entries(delivery.headers),
          body: delivery.body,
        })
        expect([hook.status, hook.text]).to.deep.equal([200, '{"received":true}'])
        expect200(await cold)
        // The follow-up fetch (not the older one) is what the cache holds now: no extra fetch.
        expect(jwks.count - base).to.equal(2)
        expect200(await r.call(token(k2)))
        expect(jwks.count - base).to.equal(2)
      } finally {
        await r.close()
      }
    })
  })
})

async function waitFor(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
    await sleep(10)
  }
}
