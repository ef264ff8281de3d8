// Instances of a fleet inside one test process (the multi-process tests spawn the example server
// instead): a real Express 5 app with real Passport, the rotation router and a RedisFleet on one
// real redis-server.
import express from 'express'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import passportModule from 'passport'
import { createClient } from 'redis'
import {
  AgentPressPartnerStrategy,
  createKeyRotationRouter,
  type PartnerTokenVerifier,
} from 'passport-agentpress-partner'
import {
  createRedisFleet,
  type RedisFleet,
  type RedisFleetOptions,
} from 'passport-agentpress-partner/redis'
import type { MockAgentPress } from 'passport-agentpress-partner/testing'
import { passportJson } from './stacks.js'

export const WEBHOOK = '/webhook'

export interface Instance {
  readonly url: string
  readonly fleet: RedisFleet
  readonly verifier: PartnerTokenVerifier
  close(): Promise<void>
}

/**
 * One instance: GET /mcp (JSON refusals) echoing `sub`, POST /webhook with the fleet. `partnerMcp`
 * overrides the mock's verifier options (a JWKS URL that fails, say).
 */
export async function startInstance(
  mock: MockAgentPress,
  fleetOptions: RedisFleetOptions,
  partnerMcp: { jwksUrl?: string } = {},
): Promise<Instance> {
  const fleet = createRedisFleet(fleetOptions)
  const strategy = new AgentPressPartnerStrategy(
    { partnerMcp: { ...mock.partnerMcp, ...partnerMcp, replay: fleet }, realm: 'mcp' },
    async (claims) => ({ id: claims.sub }),
  )
  const passport = new passportModule.Passport()
  passport.use(strategy)
  const app = express()
  app.use(WEBHOOK, createKeyRotationRouter({ webhookSecret: mock.webhookSecret, strategy, fleet }))
  app.get('/mcp', passportJson(passport, { body: 'json' }), (req, res) => {
    res.json({ sub: (req.user as { id: string }).id })
  })
  const server: Server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  await fleet.start()
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fleet,
    verifier: strategy.verifiers[0] as PartnerTokenVerifier,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await fleet.close()
    },
  }
}

export interface Answer {
  status: number
  challenge: string | null
  retryAfter: string | null
  body: unknown
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // keep the text
  }
  return {
    status: response.status,
    challenge: response.headers.get('www-authenticate'),
    retryAfter: response.headers.get('retry-after'),
    body,
  }
}

/** GET /mcp with a bearer token. */
export async function call(url: string, token: string): Promise<Answer> {
  return answer(await fetch(`${url}/mcp`, { headers: { Authorization: `Bearer ${token}` } }))
}

/** POSTs a signed delivery (body + headers) to the instance's webhook. */
export async function post(
  url: string,
  signed: { body: string; headers: Record<string, string> },
): Promise<Answer> {
  return answer(
    await fetch(`${url}${WEBHOOK}`, { method: 'POST', headers: signed.headers, body: signed.body }),
  )
}

/** A node-redis client of the test itself, to look at (or tamper with) what the fleet stored. */
export async function inspector(url: string) {
  const client = createClient({ url })
  client.on('error', () => {})
  await client.connect()
  return client
}

/** Resolves once `check()` is true; rejects after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export const REPLAYED = {
  status: 401,
  challenge:
    'Bearer realm="mcp", error="invalid_token", error_description="Token already used", resource_metadata="http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp"',
  retryAfter: null,
  body: { error: 'invalid_token', error_description: 'Token already used' },
}

export const REVOKED = {
  status: 401,
  challenge:
    'Bearer realm="mcp", error="invalid_token", error_description="Signing key not found", resource_metadata="http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp"',
  retryAfter: null,
  body: { error: 'invalid_token', error_description: 'Signing key not found' },
}
