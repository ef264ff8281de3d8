// Regression: the test kit's control API (/_mock/token, /_mock/rotate) trusted any loopback peer,
// so behind a loopback reverse proxy (nginx-style: Host rewritten, X-Forwarded-For / Forwarded
// added) an outside client minted tokens the example accepts. A request carrying a proxy's
// forwarding header is now refused 403, whoever sent it; a direct local request still works.
import { expect } from 'chai'
import { request, type IncomingMessage, type ServerResponse } from 'node:http'
import {
  createMockAgentPress,
  createMockControl,
  type MockAgentPress,
} from 'passport-agentpress-partner/testing'
import { listen, type Listening } from '../support/wire.js'

describe('regression: the mock control API refuses requests a proxy forwarded', () => {
  let mock: MockAgentPress
  let control: Listening
  let proxy: Listening

  before(async () => {
    mock = await createMockAgentPress()
    const handler = createMockControl(mock)
    control = await listen((req, res) =>
      handler(req, res, () => {
        res.statusCode = 404
        res.end()
      }),
    )
    // A minimal nginx-style reverse proxy on loopback: Host rewritten to the upstream, the
    // client's address added as X-Forwarded-For and Forwarded.
    proxy = await listen((req: IncomingMessage, res: ServerResponse) => {
      const upstream = request(
        `${control.url}${req.url}`,
        {
          method: req.method,
          headers: {
            ...req.headers,
            host: `127.0.0.1:${control.port}`,
            'x-forwarded-for': '203.0.113.7',
            forwarded: 'for=203.0.113.7;proto=https',
          },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        },
      )
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    })
  })
  after(async () => {
    await proxy.close()
    await control.close()
    await mock.close()
  })

  const mint = (base: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/_mock/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{"sub":"mallory"}',
    })

  it('through the proxy → 403, no token', async () => {
    const res = await mint(proxy.url)
    expect(res.status).to.equal(403)
    expect(await res.json()).to.deep.equal({
      error: 'proxied requests are not allowed: the control API is loopback only',
    })
  })

  for (const header of ['x-forwarded-for', 'forwarded', 'x-forwarded-host', 'x-real-ip', 'via']) {
    it(`a direct request carrying ${header} → 403`, async () => {
      const res = await mint(control.url, {
        [header]: header === 'forwarded' ? 'for=1.2.3.4' : '1.2.3.4',
      })
      expect(res.status).to.equal(403)
      expect(await res.json()).to.deep.equal({
        error: 'proxied requests are not allowed: the control API is loopback only',
      })
    })
  }

  it('a direct local request still mints a token', async () => {
    const res = await mint(control.url)
    expect(res.status).to.equal(200)
    const { token } = (await res.json()) as { token: string }
    expect(token.split('.')).to.have.length(3)
  })
})
