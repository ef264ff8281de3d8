/**
 * Several trust relationships side by side: two orgs in production (acme-org, globex) and the
 * staging environment of acme-org. One relationship = one issuer, one JWKS, one webhook secret.
 *
 * - Production and staging are separate strategies on separate routes: a staging token sent to
 *   production is refused with `issuer_mismatch`, and vice versa.
 * - One strategy serves both production orgs: it picks the verifier by the token's (unverified)
 *   `iss` among its configured issuers only; an unknown issuer is refused without any fetch.
 * - Each relationship has its own rotation webhook route and secret, so one org's secret can never
 *   refresh another org's keys.
 * - Local users are keyed by (iss, ext_provider, sub): `sub` is unique within an org only.
 *
 *   node examples/multi-org/server.mjs     # embedded mocks for the three relationships
 *
 * With real AgentPress, each relationship's issuer comes from
 * `agentPressIssuer({ orgSlug, environment })`, e.g. https://stg-api.agent.press/orgs/acme-org.
 */
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'

import express from 'express'
import {
  AgentPressPartnerStrategy,
  authenticatePartner,
  createKeyRotationRouter,
} from 'passport-agentpress-partner'
import { createMockAgentPress } from 'passport-agentpress-partner/testing'
import { refuseHostileTarget } from '../request-target.mjs'

/** The relationships: name, org, environment. */
export const RELATIONSHIPS = Object.freeze([
  { name: 'acme-production', orgSlug: 'acme-org', environment: 'production' },
  { name: 'globex-production', orgSlug: 'globex', environment: 'production' },
  { name: 'acme-staging', orgSlug: 'acme-org', environment: 'staging' },
])

/** Starts the app on 127.0.0.1 with one embedded mock AgentPress per relationship. */
export async function startMultiOrg({ port = 0 } = {}) {
  let handler
  // A request target that is not a plain path is 400 before any router sees it.
  const server = createServer((req, res) => refuseHostileTarget(req, res) || handler(req, res))
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}`
  const audiences = { production: `${url}/api`, staging: `${url}/staging/api` }

  // One mock per relationship (a mock is one issuer with its own keys and webhook secret).
  const mocks = {}
  for (const r of RELATIONSHIPS) {
    mocks[r.name] = await createMockAgentPress({
      orgSlug: r.orgSlug,
      audience: audiences[r.environment],
      extProvider: 'example-partner',
    })
  }
  const partnerMcp = (r) => ({
    issuer: mocks[r.name].issuer,
    jwksUrl: mocks[r.name].jwksUrl,
    audience: audiences[r.environment],
    expectedExtProvider: 'example-partner',
  })

  const users = new Map()
  const resolveUser = (claims) => {
    const key = JSON.stringify([claims.iss, claims.ext_provider, claims.sub])
    if (!users.has(key))
      users.set(key, { id: `usr_${users.size + 1}`, issuer: claims.iss, externalId: claims.sub })
    return users.get(key)
  }

  const strategies = {}
  for (const environment of ['production', 'staging']) {
    strategies[environment] = new AgentPressPartnerStrategy(
      {
        name: `agentpress-${environment}`,
        partnerMcp: RELATIONSHIPS.filter((r) => r.environment === environment).map(partnerMcp),
        realm: environment,
        // A plain API, not an MCP server: no RFC 9728 document is served, so none is advertised
        // (the default would point at the audience's metadata URL).
        resourceMetadataUrl: false,
      },
      async (claims) => resolveUser(claims),
    )
  }

  const app = express()
  // One webhook route and secret per relationship, before any body parser.
  for (const r of RELATIONSHIPS) {
    const verifier = strategies[r.environment].verifiers.find(
      (v) => v.issuer === mocks[r.name].issuer,
    )
    app.use(
      `/webhooks/agentpress/${r.name}`,
      createKeyRotationRouter({
        webhookSecret: mocks[r.name].webhookSecret,
        verifiers: [verifier],
      }),
    )
  }
  const whoami = (environment) => (req, res) =>
    res.json({
      environment,
      issuer: req.authInfo.issuer,
      user: req.user,
      scopes: req.authInfo.scopes,
    })
  app.get('/api/whoami', authenticatePartner(strategies.production), whoami('production'))
  app.get('/staging/api/whoami', authenticatePartner(strategies.staging), whoami('staging'))
  handler = app

  return {
    url,
    audiences,
    mocks,
    strategies,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await Promise.all(Object.values(mocks).map((mock) => mock.close()))
    },
  }
}

/** Runs the example and prints what to try. */
async function main() {
  const app = await startMultiOrg({ port: Number(process.env.PORT ?? 3002) })
  const call = async (path, token) => {
    const res = await fetch(`${app.url}${path}`, { headers: { Authorization: `Bearer ${token}` } })
    const body = await res.json()
    return res.ok
      ? `${res.status} ${body.user.id} (${body.user.externalId} @ ${body.issuer})`
      : `${res.status} ${body.error_description}`
  }
  console.log(`Multi-org example on ${app.url}, one embedded mock AgentPress per relationship:`)
  for (const r of RELATIONSHIPS) console.log(`  ${r.name.padEnd(18)} ${app.mocks[r.name].issuer}`)
  console.log('\nWho is calling, per relationship and route:')
  for (const r of RELATIONSHIPS) {
    const token = app.mocks[r.name].signToken({ sub: 'alice' })
    for (const path of ['/api/whoami', '/staging/api/whoami']) {
      console.log(`  ${r.name.padEnd(18)} → ${path.padEnd(20)} ${await call(path, token)}`)
    }
  }
  console.log('\nTry one yourself (valid 10 minutes):')
  const token = app.mocks['globex-production'].signToken({
    sub: 'bob',
    exp: Math.floor(Date.now() / 1000) + 600,
  })
  console.log(`  curl -s ${app.url}/api/whoami -H 'Authorization: Bearer ${token}'`)
  console.log('\nPress Ctrl+C to stop.')
  const stop = () => void app.close()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

// No top-level await: test runners that load this module through a CommonJS transform choke on it.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}
