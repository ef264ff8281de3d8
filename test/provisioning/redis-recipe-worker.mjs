// One process of the multi-process provisioning test: the Redis `SET NX` recipe of
// docs/authorization.md ("Provisioning"), as written there, behind provisionOnce. It connects,
// says "ready", waits for "go" on stdin (so every process starts at once), makes CALLS concurrent
// first calls for one new user, and prints what it saw as one JSON line.
import { provisionOnce, provisioningKey } from 'passport-agentpress-partner'
import { createClient } from 'redis'

const [url, callsText] = process.argv.slice(2)
const calls = Number(callsText)
const redis = await createClient({ url }).connect()
let creates = 0

// --- the recipe ---
const provisionUser = provisionOnce(async (claims) => {
  const key = `user:${provisioningKey(claims)}`
  const found = await redis.get(key)
  if (found !== null) return JSON.parse(found)
  creates++
  const fresh = {
    id: await redis.incr('users:next-id'),
    externalId: claims.sub,
    orgId: claims.org_id,
  }
  // SET NX: only the first writer of the whole fleet stores its user; every process reads that one.
  await redis.set(key, JSON.stringify(fresh), { NX: true })
  return JSON.parse(await redis.get(key))
})
// --- end of the recipe ---

const claims = {
  iss: 'https://acme.agentpress.example',
  ext_provider: 'notes',
  sub: 'new-user',
  org_id: 'org_1',
}
process.stdout.write('ready\n')
process.stdin.once('data', async () => {
  const users = await Promise.all(Array.from({ length: calls }, () => provisionUser({ ...claims })))
  process.stdout.write(
    `${JSON.stringify({ ids: [...new Set(users.map((u) => u.id))], creates })}\n`,
  )
  await redis.quit()
  process.exit(0)
})
