// provisionOnce: concurrent first calls for one new user share one creation in a process, and the
// documented Redis SET NX recipe stores exactly one user across three processes (a real
// redis-server on a free loopback port, three real Node processes started at the same moment).
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  provisionOnce,
  provisioningKey,
  type PartnerTokenClaims,
} from 'passport-agentpress-partner'
import { createClient } from 'redis'

import { startRedis, type RedisServer } from '../support/redis.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const claims = (sub: string, iss = 'https://acme.agentpress.example') =>
  ({ iss, ext_provider: 'notes', sub, org_id: 'org_1' }) as unknown as PartnerTokenClaims

describe('provisionOnce()', () => {
  describe('in one process', () => {
    it('50 concurrent first calls for one new user → exactly one create; every caller gets its user', async () => {
      const users = new Map<string, { id: number }>()
      let creates = 0
      let release!: () => void
      const gate = new Promise<void>((resolve) => (release = resolve))
      const provision = provisionOnce(async (c: PartnerTokenClaims) => {
        const found = users.get(provisioningKey(c))
        if (found) return found
        creates++
        await gate // the create is slow: every other call arrives while it runs
        const user = { id: creates }
        users.set(provisioningKey(c), user)
        return user
      })
      const calls = Array.from({ length: 50 }, () => provision(claims('u1')))
      release()
      const got = await Promise.all(calls)
      expect(creates).to.equal(1)
      expect(new Set(got).size).to.equal(1)
      expect(got[0]).to.deep.equal({ id: 1 })
      // Settled: the next call runs again and finds the stored user (nothing is cached).
      expect(await provision(claims('u1'))).to.equal(got[0])
      expect(creates).to.equal(1)
    })

    it('distinct users (another sub, another issuer) are not coalesced', async () => {
      const seen: string[] = []
      const provision = provisionOnce(async (c: PartnerTokenClaims) => {
        seen.push(`${c.iss} ${c.sub}`)
        return c.sub
      })
      await Promise.all([
        provision(claims('a')),
        provision(claims('a')),
        provision(claims('b')),
        provision(claims('a', 'https://other.agentpress.example')),
      ])
      expect(seen.sort()).to.deep.equal([
        'https://acme.agentpress.example a',
        'https://acme.agentpress.example b',
        'https://other.agentpress.example a',
      ])
    })

    it('a failed create rejects every waiter, and is not remembered', async () => {
      let attempts = 0
      const provision = provisionOnce((_c: PartnerTokenClaims) => {
        attempts++
        if (attempts === 1) throw new Error('database down')
        return 'user'
      })
      const results = await Promise.allSettled([provision(claims('x')), provision(claims('x'))])
      expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected'])
      expect(attempts).to.equal(1)
      expect(await provision(claims('x'))).to.equal('user')
    })

    it('provisionOnce(key, create): the same coalescing for a key of your own', async () => {
      let creates = 0
      const create = async () => {
        creates++
        await new Promise((resolve) => setTimeout(resolve, 10))
        return { id: 'k' }
      }
      const got = await Promise.all(
        Array.from({ length: 50 }, () => provisionOnce('key-1', create)),
      )
      expect(creates).to.equal(1)
      expect(new Set(got).size).to.equal(1)
    })

    it('bad arguments: TypeErrors naming the fix', async () => {
      expect(() => provisionOnce(42 as never))
        .to.throw(TypeError)
        .with.property(
          'message',
          'provisionOnce(create) needs create to be a function: (claims) => user',
        )
      expect(() => provisionOnce('', async () => 1))
        .to.throw(TypeError)
        .with.property('message', 'provisionOnce(key, create) needs a non-empty key')
      expect(() => provisioningKey({ iss: 'i', ext_provider: 'p', sub: '' }))
        .to.throw(TypeError)
        .with.property('message', 'provisioningKey() needs claims with a non-empty string sub')
      const provision = provisionOnce(async () => 1)
      let error: unknown
      await provision({} as PartnerTokenClaims).catch((err) => (error = err))
      expect(error).to.be.instanceOf(TypeError)
    })

    it('provisioningKey is unambiguous', () => {
      expect(provisioningKey({ iss: 'a', ext_provider: 'b c', sub: 'd' })).to.not.equal(
        provisioningKey({ iss: 'a', ext_provider: 'b', sub: 'c d' }),
      )
      expect(provisioningKey({ iss: 'https://i', ext_provider: 'notes', sub: 'u1' })).to.equal(
        '["https://i","notes","u1"]',
      )
    })
  })

  describe('across three processes: the Redis SET NX recipe', function () {
    this.timeout(60_000)
    let redis: RedisServer
    before(async () => {
      redis = await startRedis()
    })
    after(async () => {
      await redis?.stop()
    })

    it('three processes × 50 concurrent first calls → exactly one stored user, seen by all 150', async () => {
      const workers = Array.from({ length: 3 }, () =>
        spawn(process.execPath, [join(HERE, 'redis-recipe-worker.mjs'), redis.url, '50'], {
          stdio: ['pipe', 'pipe', 'inherit'],
        }),
      )
      const lines = workers.map((child) => {
        const out: string[] = []
        let buffer = ''
        child.stdout.setEncoding('utf8')
        child.stdout.on('data', (chunk: string) => {
          buffer += chunk
          for (let i = buffer.indexOf('\n'); i !== -1; i = buffer.indexOf('\n')) {
            out.push(buffer.slice(0, i))
            buffer = buffer.slice(i + 1)
          }
        })
        return out
      })
      const waitFor = async (n: number) => {
        const deadline = Date.now() + 30_000
        while (lines.some((out) => out.length < n)) {
          if (Date.now() > deadline) throw new Error(`workers said ${JSON.stringify(lines)}`)
          if (workers.some((w) => w.exitCode !== null && w.exitCode !== 0)) {
            throw new Error('a worker failed')
          }
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      }
      try {
        await waitFor(1)
        expect(lines.map((out) => out[0])).to.deep.equal(['ready', 'ready', 'ready'])
        for (const worker of workers) worker.stdin.write('go\n')
        await waitFor(2)
        const results = lines.map(
          (out) => JSON.parse(out[1]!) as { ids: number[]; creates: number },
        )
        // Each process ran its creation path at most once (provisionOnce); all saw one user.
        for (const result of results) {
          expect(result.creates).to.be.at.most(1)
          expect(result.ids).to.have.length(1)
        }
        expect(new Set(results.flatMap((r) => r.ids)).size).to.equal(1)
        const client = await createClient({ url: redis.url }).connect()
        try {
          const keys = await client.keys('user:*')
          expect(keys).to.deep.equal([
            'user:["https://acme.agentpress.example","notes","new-user"]',
          ])
          const stored = JSON.parse((await client.get(keys[0]!))!) as { id: number; orgId: string }
          expect(stored.id).to.equal(results[0]!.ids[0])
          expect(stored.orgId).to.equal('org_1')
        } finally {
          await client.quit()
        }
      } finally {
        for (const worker of workers) if (worker.exitCode === null) worker.kill()
        await Promise.all(
          workers.map((w) => (w.exitCode === null ? once(w, 'exit') : Promise.resolve())),
        )
      }
    })
  })
})
