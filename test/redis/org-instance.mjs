// One fleet instance serving two orgs, in its own process (test/redis/orgs.test.ts): the router
// binds each org's webhook secret to that org's issuer, in front of one verifier per org, with a
// RedisFleet on the shared redis-server. Configuration from ORG_INSTANCE (JSON): { redisUrl,
// prefix, orgs: [{ partnerMcp, secret, label }] }. Serves POST /webhook, GET /verify/<org index>
// (Authorization: Bearer …) → 200 { iss } or 401 { reason }, and GET /fleet → { state, stats }.
// Prints "listening <url>" once the fleet is ready.
import { createServer } from 'node:http'
import { createKeyRotationRouter, PartnerTokenVerifier } from 'passport-agentpress-partner'
import { createRedisFleet } from 'passport-agentpress-partner/redis'

const config = JSON.parse(process.env.ORG_INSTANCE)
const fleet = createRedisFleet({
  url: config.redisUrl,
  prefix: config.prefix,
  onError: (error) => process.stderr.write(`fleet: ${error.message}\n`),
})
const verifiers = config.orgs.map((org) => new PartnerTokenVerifier(org.partnerMcp))
const router = createKeyRotationRouter({
  webhookSecret: config.orgs.map((org) => ({
    secret: org.secret,
    issuer: org.partnerMcp.issuer,
    label: org.label,
  })),
  verifiers,
  fleet,
})

const json = (res, status, body) => {
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify(body))
}

const server = createServer((req, res) => {
  if (req.url === '/webhook') {
    req.url = '/'
    router(req, res, () => json(res, 404, { error: 'not_found' }))
    return
  }
  if (req.url === '/fleet') {
    json(res, 200, { state: fleet.state, problem: fleet.problem, stats: fleet.stats })
    return
  }
  const match = /^\/verify\/(\d+)$/.exec(req.url ?? '')
  const verifier = match === null ? undefined : verifiers[Number(match[1])]
  if (verifier === undefined) return json(res, 404, { error: 'not_found' })
  const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
  verifier.verifyToken(token).then(
    (claims) => json(res, 200, { iss: claims.iss }),
    (error) => json(res, 401, { reason: error.reason ?? String(error) }),
  )
})

await fleet.start()
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`)
})
process.on('SIGTERM', () => {
  server.closeAllConnections()
  server.close()
  void fleet.close().then(() => process.exit(0))
})
