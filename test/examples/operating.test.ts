// The example MCP server as an operator runs it: keys warmed at boot, a readiness endpoint, and
// one log line per rotation, webhook refusal and JWKS failure, none carrying a secret or token.
import { expect } from 'chai'

import { startServer, type RunningServer } from '../../examples/express-mcp-server/server.mjs'
import { deliverWebhook } from 'passport-agentpress-partner/testing'
import { closedPort } from '../support/servers.js'

describe('examples/express-mcp-server: readiness and operator logs', function () {
  this.timeout(20_000)
  let server: RunningServer
  const log: string[] = []

  before(async () => {
    server = await startServer({ port: 0, log: (line) => log.push(line) })
  })
  after(() => server?.close())

  it('warms the keys up at boot: one fetch, one line, and the readiness endpoint answers 200', async () => {
    expect(log).to.deep.equal([
      // The embedded mock's control API is off by default, and the log says why (issue 26 item 8).
      'mock control API off: /_mock/token and /_mock/rotate would mint tokens this server accepts ' +
        'for any loopback peer (a reverse proxy on this machine too), so they are never served by ' +
        'default; set AGENTPRESS_MOCK_CONTROL=1 (startServer({ mockControl: true })) to use ' +
        '`agentpress-mock token|rotate|check --issuer` against this server',
      `signing keys ready for ${server.issuer} (1 key(s))`,
    ])
    expect(server.mock!.jwksRequestCount).to.equal(1)
    const res = await fetch(server.readyUrl)
    expect(res.status).to.equal(200)
    expect(res.headers.get('cache-control')).to.equal('no-store')
    const body = (await res.json()) as { ready: boolean; issuers: Array<Record<string, unknown>> }
    expect(body.ready).to.equal(true)
    expect(body.issuers.map((s) => [s.issuer, s.state, s.keyCount])).to.deep.equal([
      [server.issuer, 'fresh', 1],
    ])
    expect(server.mock!.jwksRequestCount).to.equal(1)
  })

  it('a webhook with a wrong secret: 401 and one line naming the reason, not the secret', async () => {
    const wrong = 'whsec_someoneelseentirely01230'
    const result = await deliverWebhook(server.webhookUrl!, server.mock!.rotateKeys(), {
      secret: wrong,
    })
    expect(result.status).to.equal(401)
    expect(log.at(-1)).to.equal('key rotation webhook refused: 401 signature_mismatch')
    expect(log.join('\n')).to.not.include(wrong)
    expect(log.join('\n')).to.not.include(server.mock!.webhookSecret)
  })

  it('an emergency rotation: one line saying the retired key is refused', async () => {
    const event = server.mock!.rotateKeys({ emergency: true })
    const result = await deliverWebhook(server.webhookUrl!, event, {
      secret: server.mock!.webhookSecret,
    })
    expect(result.status).to.equal(200)
    expect(log.at(-1)).to.equal(
      `key rotation: signing keys refreshed for ${server.issuer} (delivery ${event.id}); ` +
        'emergency: the retired key is refused',
    )
    expect(log.join('\n')).to.not.include(event.retiredKid)
  })

  it('a JWKS failure: one line with the reason; the webhook answers 503 and says so', async () => {
    const mock = server.mock!
    mock.setJwksMode('error')
    try {
      const event = mock.rotateKeys()
      const result = await deliverWebhook(server.webhookUrl!, event, { secret: mock.webhookSecret })
      expect(result.status).to.equal(503)
      expect(log.slice(-2)).to.deep.equal([
        `JWKS fetch failed for ${server.issuer}: http_status (HTTP 500)`,
        `key rotation: JWKS refresh failed, answered 503 so AgentPress retries (delivery ${event.id})`,
      ])
      // Fresh keys still answer: the server stays ready.
      expect((await fetch(server.readyUrl)).status).to.equal(200)
    } finally {
      mock.setJwksMode('ok')
    }
  })

  it('a JWKS outage at boot is logged, not fatal: readiness is 503 until the keys arrive', async () => {
    const lines: string[] = []
    const issuer = `http://127.0.0.1:${await closedPort()}/orgs/nobody`
    const down = await startServer({
      port: 0,
      log: (line) => lines.push(line),
      agentpress: {
        issuer,
        extProvider: 'example-partner',
        jwksUrl: `${issuer}/.well-known/jwks.json`,
      },
    })
    try {
      expect(lines).to.deep.equal([
        `JWKS fetch failed for ${issuer}: network`,
        `signing keys unavailable for ${issuer}: answering 503`,
        `signing keys not reachable at boot for ${issuer}: network`,
      ])
      const res = await fetch(down.readyUrl)
      expect(res.status).to.equal(503)
      expect(res.headers.get('retry-after')).to.equal('5')
      expect(((await res.json()) as { ready: boolean }).ready).to.equal(false)
    } finally {
      await down.close()
    }
  })
})
