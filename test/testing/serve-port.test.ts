// `createMockAgentPress({ port })` (validated like the mock's other options) and
// `agentpress-mock serve`, which now serves through it (issue 19: no second JWKS server of its own):
// one loopback port answers the mock's JWKS (with its ETag / 304) and the control API.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'

import { PartnerTokenVerifier } from 'passport-agentpress-partner'
import { createMockAgentPress } from 'passport-agentpress-partner/testing'

const CLI = fileURLToPath(new URL('../../dist/testing/cli.js', import.meta.url))

describe('createMockAgentPress: the port option', () => {
  for (const port of [-1, 65_536, 1.5, Number.NaN, '4010', null]) {
    it(`port ${typeof port === 'string' ? JSON.stringify(port) : String(port)} → TypeError naming the option`, async () => {
      let error: unknown
      await createMockAgentPress({ port } as never).then(
        (mock) => mock.close(),
        (e: unknown) => (error = e),
      )
      expect(error).to.be.instanceOf(TypeError)
      expect((error as Error).message).to.equal(
        `options.port must be a whole number from 0 to 65535 (0 picks a free port), got ${String(port)}`,
      )
    })
  }

  it('a chosen port: the issuer and JWKS URL carry it; a port in use rejects with EADDRINUSE', async () => {
    const first = await createMockAgentPress()
    try {
      const port = Number(new URL(first.url).port)
      let error: unknown
      await createMockAgentPress({ port }).then(
        (mock) => mock.close(),
        (e: unknown) => (error = e),
      )
      expect((error as NodeJS.ErrnoException).code).to.equal('EADDRINUSE')
      await first.close()
      const again = await createMockAgentPress({ port, orgSlug: 'acme-org' })
      try {
        expect(again.url).to.equal(`http://127.0.0.1:${port}`)
        expect(again.issuer).to.equal(`http://127.0.0.1:${port}/orgs/acme-org`)
        expect(again.jwksUrl).to.equal(
          `http://127.0.0.1:${port}/orgs/acme-org/.well-known/jwks.json`,
        )
        const verifier = new PartnerTokenVerifier(again.partnerMcp)
        expect((await verifier.verifyToken(again.signToken({ sub: 'alice' }))).sub).to.equal(
          'alice',
        )
      } finally {
        await again.close()
      }
    } finally {
      await first.close()
    }
  })
})

describe('agentpress-mock serve: one mock AgentPress on one port', () => {
  let child: ChildProcess
  let config: { url: string; issuer: string; jwksUrl: string; currentKid: string }
  before(async () => {
    child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--json', '--org', 'acme-org'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const [line] = (await once(child.stdout!, 'data')) as [Buffer]
    clearTimeout(timer)
    config = JSON.parse(line.toString('utf8')) as typeof config
  })
  after(async () => {
    if (child.exitCode !== null) return
    child.kill('SIGTERM')
    await once(child, 'close')
  })

  it('the JWKS is the mock’s: a strong ETag, and a matching If-None-Match answered 304', async () => {
    const res = await fetch(config.jwksUrl)
    expect(res.status).to.equal(200)
    expect(res.headers.get('content-type')).to.equal('application/json')
    const etag = res.headers.get('etag')
    expect(etag).to.match(/^"[\w-]{27}"$/)
    const body = (await res.json()) as { keys: Array<{ kid: string }> }
    expect(body.keys.map((key) => key.kid)).to.deep.equal([config.currentKid])
    const again = await fetch(config.jwksUrl, { headers: { 'if-none-match': etag! } })
    expect([again.status, await again.text()]).to.deep.equal([304, ''])
  })

  it('the JWKS path answers GET and HEAD only (405 with Allow otherwise)', async () => {
    const head = await fetch(config.jwksUrl, { method: 'HEAD' })
    expect(head.status).to.equal(200)
    const post = await fetch(config.jwksUrl, { method: 'POST', body: '{}' })
    expect([post.status, post.headers.get('allow'), await post.text()]).to.deep.equal([
      405,
      'GET, HEAD',
      '',
    ])
  })

  it('the control API answers on the same port and describes that same issuer', async () => {
    expect(new URL(config.jwksUrl).origin).to.equal(config.url)
    const res = await fetch(`${config.url}/_mock/config`)
    expect(res.status).to.equal(200)
    expect(await res.json()).to.deep.include({
      issuer: config.issuer,
      jwksUrl: config.jwksUrl,
      currentKid: config.currentKid,
    })
    const missing = await fetch(`${config.url}/orgs/other-org/.well-known/jwks.json`)
    expect([missing.status, await missing.text()]).to.deep.equal([404, '{"error":"not found"}'])
  })

  it('SIGTERM stops it (exit 0)', async () => {
    child.kill('SIGTERM')
    const [code] = (await once(child, 'close')) as [number | null]
    expect(code).to.equal(0)
  })
})
