// JWKS behaviour under load: how many times each implementation fetches the JWKS
// (a) on a cold start hit by N concurrent requests with valid tokens, and
// (b) under M requests each naming a random, unknown kid.
// Both through HTTP against every verifying scenario's server, and directly on PartnerTokenVerifier.
import { Agent, request } from 'node:http'
import { AUDIENCE, EXT_PROVIDER, randomKidToken, sleep } from './lib/common.mjs'
import { makePool } from './lib/pool.mjs'
import { startServer } from './lib/procs.mjs'

const SERVER = new URL('./http/server.mjs', import.meta.url).pathname

function get(agent, port, token) {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/mcp',
        agent,
        headers: { authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
      },
    )
    req.setTimeout(15_000, () => req.destroy())
    req.on('error', () => resolve('error'))
    req.end()
  })
}

function tally(statuses) {
  const counts = {}
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1
  return counts
}

/** Runs `tasks` (functions returning promises) with at most `width` in flight. */
async function bounded(tasks, width) {
  const results = new Array(tasks.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(width, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++
        results[i] = await tasks[i]()
      }
    }),
  )
  return results
}

/** HTTP-level test of one scenario server. */
export async function jwksHttpScenario(id, { jwks, identity, pin, cold, randomKids }) {
  jwks.reset()
  const server = await startServer(
    SERVER,
    { scenario: id, issuer: jwks.issuer, jwksUrl: jwks.jwksUrl, publicJwk: identity.publicJwk },
    { cpu: 0, pin },
  )
  if (server.unavailable) return { unavailable: server.unavailable }
  try {
    const tokens = await makePool(cold, {
      privateKeyPem: identity.privateKeyPem,
      issuer: jwks.issuer,
    })
    const coldAgent = new Agent({ keepAlive: false, maxSockets: cold })
    const coldStatuses = await Promise.all(tokens.map((t) => get(coldAgent, server.port, t)))
    coldAgent.destroy()
    const coldFetches = jwks.fetches

    // Wide: our verifier holds an unknown kid until the next allowed refetch (≤ one 5 s cooldown,
    // §3), so the number of kids in flight, not the request rate, sets the duration.
    const width = Math.min(randomKids, 2000)
    const agent = new Agent({ keepAlive: true, maxSockets: width })
    const started = Date.now()
    const statuses = await bounded(
      Array.from(
        { length: randomKids },
        (_, i) => () => get(agent, server.port, randomKidToken(jwks.issuer, i)),
      ),
      width,
    )
    agent.destroy()
    return {
      cold: { fetches: coldFetches, statuses: tally(coldStatuses) },
      randomKid: {
        fetches: jwks.fetches - coldFetches,
        elapsedMs: Date.now() - started,
        statuses: tally(statuses),
      },
    }
  } finally {
    await server.stop()
  }
}

/** Direct test of PartnerTokenVerifier, including a short cooldown to show "≤ 1 per window". */
export async function jwksCore({ jwks, identity, cold, randomKids }) {
  const pkg = await import('passport-agentpress-partner').catch(() => null)
  const Verifier = pkg?.PartnerTokenVerifier
  if (typeof Verifier !== 'function') return { unavailable: 'PartnerTokenVerifier not built yet' }
  const make = (extra = {}) =>
    new Verifier({
      issuer: jwks.issuer,
      audience: AUDIENCE,
      expectedExtProvider: EXT_PROVIDER,
      jwksUrl: jwks.jwksUrl,
      ...extra,
    })
  const reasons = (settled) =>
    tally(settled.map((s) => (s.status === 'fulfilled' ? 'ok' : (s.reason?.reason ?? 'error'))))

  // (a) cold start
  jwks.reset()
  const verifier = make()
  const tokens = await makePool(cold, {
    privateKeyPem: identity.privateKeyPem,
    issuer: jwks.issuer,
  })
  const coldSettled = await Promise.allSettled(tokens.map((t) => verifier.verifyToken(t)))
  const coldFetches = jwks.fetches

  // (b) random kids, default cooldown (5 s), all in flight at once: an unknown kid waits for the
  // next allowed refetch (§3), so a bounded pool of 64 would take one cooldown per 64 kids.
  const started = Date.now()
  const settled = []
  await bounded(
    Array.from({ length: randomKids }, (_, i) => async () => {
      settled[i] = await verifier.verifyToken(randomKidToken(jwks.issuer, i)).then(
        (v) => ({ status: 'fulfilled', value: v }),
        (e) => ({ status: 'rejected', reason: e }),
      )
    }),
    randomKids,
  )
  const randomKid = {
    fetches: jwks.fetches - coldFetches,
    elapsedMs: Date.now() - started,
    outcomes: reasons(settled),
  }

  // (c) random kids with the minimum cooldown (1 s), spread over ~3.5 s: ≤ 1 fetch per window
  jwks.reset()
  const fast = make({ jwksCooldownMs: 1000 })
  await fast.verifyToken(tokens[0])
  const warmFetches = jwks.fetches
  const spreadMs = 3500
  const batches = 35
  const per = Math.ceil(randomKids / batches)
  const t0 = Date.now()
  const pending = []
  for (let b = 0; b < batches; b++) {
    // Sent on schedule, not after the previous batch's answers: held kids answer a window later.
    pending.push(
      Promise.allSettled(
        Array.from({ length: per }, (_, i) =>
          fast.verifyToken(randomKidToken(jwks.issuer, b * per + i)),
        ),
      ),
    )
    const due = t0 + ((b + 1) * spreadMs) / batches
    if (due > Date.now()) await sleep(due - Date.now())
  }
  const spreadSettled = (await Promise.all(pending)).flat()
  const spreadElapsed = Date.now() - t0
  const spread = {
    cooldownMs: 1000,
    requests: spreadSettled.length,
    elapsedMs: spreadElapsed,
    fetches: jwks.fetches - warmFetches,
    windows: Math.ceil(spreadElapsed / 1000),
    outcomes: reasons(spreadSettled),
  }

  return { cold: { fetches: coldFetches, outcomes: reasons(coldSettled) }, randomKid, spread }
}
