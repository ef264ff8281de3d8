// Fan-out latency across processes: three example-server processes (REDIS_URL set, replay on)
// and one loopback Redis; an emergency rotation is delivered to instance 1, and instances 2 and 3
// are polled (a fresh token signed by the retired key per request) until they refuse it. The
// latency is from the webhook POST to that first refusal. Bounded in rotations and time.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createMockAgentPress } from 'passport-agentpress-partner/testing'

const SERVER = fileURLToPath(
  new URL('../../examples/express-mcp-server/server.mjs', import.meta.url),
)
const AUDIENCE = 'http://127.0.0.1:9/mcp'
const BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} })

function startExample(mock, redisUrl) {
  const child = spawn(process.execPath, [SERVER], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      AGENTPRESS_ISSUER: mock.issuer,
      AGENTPRESS_EXT_PROVIDER: mock.extProvider,
      AGENTPRESS_WEBHOOK_SECRET: mock.webhookSecret,
      MCP_AUDIENCE: AUDIENCE,
      REDIS_URL: redisUrl,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error('example server did not start in 15 s'))
    }, 15_000)
    const onData = (chunk) => {
      out += chunk
      const match = /MCP server:\s+(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(out)
      if (match && out.includes('Press Ctrl+C to stop.')) {
        clearTimeout(timer)
        child.stdout.off('data', onData)
        child.stdout.resume()
        resolve({ child, base: match[1] })
      }
    }
    child.stdout.on('data', onData)
    child.once('exit', (code) => reject(new Error(`example server exited ${code}`)))
  })
}

async function stopExample({ child }) {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
  await exited
  clearTimeout(timer)
}

async function status(base, token) {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    },
    body: BODY,
  })
  await res.arrayBuffer()
  return res.status
}

const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]

/** Runs `rotations` emergency rotations; resolves `{ samples, p50, p99, max, newKeyFailures }`. */
export async function fanoutLatency({ redisUrl, rotations, timeLimitMs = 60_000 }) {
  const mock = await createMockAgentPress({ audience: AUDIENCE })
  const published = []
  const publishAll = () => {
    for (const key of mock.keys)
      if (!published.some((jwk) => jwk.kid === key.kid)) published.push(key.publicJwk)
    // Retired keys stay listed: only the fanned-out revocation can refuse them.
    mock.setJwksDocument({ keys: published })
  }
  publishAll()
  const instances = []
  const latencies = []
  let newKeyFailures = 0
  const until = Date.now() + timeLimitMs
  try {
    for (let i = 0; i < 3; i++) instances.push(await startExample(mock, redisUrl))
    for (const { base } of instances) await status(base, mock.signToken())
    for (let round = 0; round < rotations && Date.now() < until; round++) {
      const probes = Array.from({ length: 400 }, () => mock.signToken())
      const event = mock.rotateKeys({ emergency: true })
      publishAll()
      const signed = mock.signWebhook(event)
      const start = performance.now()
      const res = await fetch(`${instances[0].base}/webhooks/agentpress/key-rotation`, {
        method: 'POST',
        headers: signed.headers,
        body: signed.body,
      })
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`webhook answered ${res.status}`)
      await Promise.all(
        instances.slice(1).map(async ({ base }) => {
          for (;;) {
            const token = probes.pop()
            if (token === undefined) throw new Error('retired kid still accepted after 400 probes')
            if ((await status(base, token)) === 401) {
              latencies.push(performance.now() - start)
              return
            }
          }
        }),
      )
      for (const { base } of instances) {
        if ((await status(base, mock.signToken())) !== 200) newKeyFailures++
      }
    }
  } finally {
    await Promise.all(instances.map(stopExample))
    await mock.close()
  }
  latencies.sort((a, b) => a - b)
  return {
    samples: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
    newKeyFailures,
  }
}

// A token's answer, by reason: its kid revoked, or (used once already) a replay.
async function refusal(base, token) {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
    },
    body: BODY,
  })
  await res.arrayBuffer()
  const challenge = res.headers.get('www-authenticate') ?? ''
  if (res.status === 401 && challenge.includes('Signing key not found')) return 'revoked'
  if (res.status === 401 && challenge.includes('Token already used')) return 'replayed'
  return `status ${res.status}`
}

/**
 * The same fan-out with the issuer's JWKS hanging (accepting connections, never answering): the
 * emergency must reach instances 2 and 3 before instance 1's own refetch gives up. Every key is
 * published and learnt first; each round's probe token was used once, so it answers "replayed"
 * until its kid is revoked and "revoked" after (no token is spent per probe). Resolves
 * `{ samples, p50, p99, max, originAnswers }` (`originAnswers`: instance 1's statuses, 503 each).
 */
export async function fanoutLatencyJwksHanging({ redisUrl, rotations, timeLimitMs = 60_000 }) {
  const mock = await createMockAgentPress({ audience: AUDIENCE })
  const published = []
  const publishAll = () => {
    for (const key of mock.keys)
      if (!published.some((jwk) => jwk.kid === key.kid)) published.push(key.publicJwk)
    mock.setJwksDocument({ keys: published })
  }
  publishAll()
  const instances = []
  const latencies = []
  const answers = []
  const until = Date.now() + timeLimitMs
  try {
    for (let i = 0; i < 3; i++) instances.push(await startExample(mock, redisUrl))
    const kids = []
    const tokens = []
    for (let i = 0; i <= rotations; i++) {
      kids.push(mock.currentKid)
      tokens.push(mock.signToken())
      mock.rotateKeys()
      publishAll()
    }
    // One normal rotation through instance 1: every instance refreshes and knows every key.
    const learn = mock.signWebhook(mock.rotateKeys())
    publishAll()
    const res = await fetch(`${instances[0].base}/webhooks/agentpress/key-rotation`, {
      method: 'POST',
      headers: learn.headers,
      body: learn.body,
    })
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`webhook answered ${res.status}`)
    for (const [i, token] of tokens.entries()) {
      for (let tries = 0; (await status(instances[i % 3].base, token)) !== 200; tries++) {
        if (tries > 100) throw new Error('an instance never learnt the keys')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
    mock.setJwksMode('stall')
    for (let round = 0; round < rotations && Date.now() < until; round++) {
      const signed = mock.signWebhook({
        id: `evt_bench_hanging_${round}`,
        type: 'signing_key_rotation',
        issuer: mock.issuer,
        retiredKid: kids[round],
        newCurrentKid: kids[round + 1],
        emergency: true,
      })
      const start = performance.now()
      answers.push(
        fetch(`${instances[0].base}/webhooks/agentpress/key-rotation`, {
          method: 'POST',
          headers: signed.headers,
          body: signed.body,
        }).then(async (r) => (await r.arrayBuffer(), r.status)),
      )
      await Promise.all(
        instances.slice(1).map(async ({ base }) => {
          for (;;) {
            const answer = await refusal(base, tokens[round])
            if (answer === 'revoked') return latencies.push(performance.now() - start)
            if (answer !== 'replayed') throw new Error(`probe answered ${answer}`)
            if (performance.now() - start > 10_000) throw new Error('retired kid accepted 10 s on')
          }
        }),
      )
    }
    return await summary(latencies, await Promise.all(answers))
  } finally {
    mock.setJwksMode('ok')
    await Promise.all(instances.map(stopExample))
    await mock.close()
  }
}

function summary(latencies, originAnswers) {
  latencies.sort((a, b) => a - b)
  const counts = {}
  for (const answer of originAnswers) counts[answer] = (counts[answer] ?? 0) + 1
  return {
    samples: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
    originAnswers: counts,
  }
}
