// The small examples: the Connect notes API and the multi-org / staging+production app.
import { expect } from 'chai'

import { startConnectApp, type ConnectApp } from '../../examples/connect-app/server.mjs'
import { RELATIONSHIPS, startMultiOrg, type MultiOrgApp } from '../../examples/multi-org/server.mjs'
import { deliverWebhook } from 'passport-agentpress-partner/testing'
import { KEY_ROTATION_ERRORS } from 'passport-agentpress-partner'
import { payloadOf } from '../support/tokens.js'

describe('examples/connect-app', () => {
  let app: ConnectApp
  before(async () => {
    app = await startConnectApp()
  })
  after(async () => {
    await app?.close()
  })

  const call = (method: string, token: string | undefined, body?: string) =>
    fetch(app.audience, {
      method,
      headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { body }),
    })

  it('reads with mcp:read, refuses a write without mcp:write (403), writes with it', async () => {
    const reader = app.mock!.signToken({ scope: 'mcp:read' })
    const read = await call('GET', reader)
    expect(read.status).to.equal(200)
    expect(await read.json()).to.deep.equal({ user: 'usr_1', notes: [] })

    const refused = await call('POST', reader, 'hi')
    expect(refused.status).to.equal(403)
    expect(refused.headers.get('www-authenticate')).to.equal(
      'Bearer realm="notes", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:write", ' +
        `resource_metadata="${app.url}/.well-known/oauth-protected-resource/notes"`,
    )
    expect(await refused.json()).to.deep.equal({
      error: 'insufficient_scope',
      error_description: 'Insufficient scope',
    })

    const written = await call('POST', app.mock!.signToken({ scope: 'mcp:read mcp:write' }), 'hi')
    expect(written.status).to.equal(201)
    expect(await written.json()).to.deep.equal({ user: 'usr_1', notes: ['hi'] })
  })

  it('401 without a token, with a JSON body; metadata served', async () => {
    const res = await call('GET', undefined)
    expect(res.status).to.equal(401)
    expect(res.headers.get('www-authenticate')).to.equal(
      `Bearer realm="notes", resource_metadata="${app.url}/.well-known/oauth-protected-resource/notes"`,
    )
    expect(await res.json()).to.deep.equal({
      error: 'no_credentials',
      error_description: 'No credentials',
    })
    const prm = await fetch(`${app.url}/.well-known/oauth-protected-resource/notes`)
    expect(((await prm.json()) as { resource: string }).resource).to.equal(app.audience)
  })

  it('takes key rotations through the webhook', async () => {
    const before = await call('GET', app.mock!.signToken({ scope: 'mcp:read' }))
    expect(before.status).to.equal(200)
    const notes = await before.json()
    const event = app.mock!.rotateKeys({ emergency: true })
    const delivery = await deliverWebhook(`${app.url}/webhooks/agentpress/key-rotation`, event, {
      secret: app.mock!.webhookSecret,
    })
    expect([delivery.status, delivery.body]).to.deep.equal([200, { received: true }])
    const read = await call('GET', app.mock!.signToken({ scope: 'mcp:read' }))
    expect([read.status, read.headers.get('www-authenticate')]).to.deep.equal([200, null])
    expect(await read.json()).to.deep.equal(notes)
  })
})

describe('examples/multi-org', () => {
  let app: MultiOrgApp
  before(async () => {
    app = await startMultiOrg()
  })
  after(async () => {
    await app?.close()
  })

  const whoami = (path: string, token: string) =>
    fetch(`${app.url}${path}`, { headers: { Authorization: `Bearer ${token}` } })

  it('each relationship is accepted on its environment only; others are issuer_mismatch', async () => {
    const matrix: Record<string, number[]> = {}
    for (const r of RELATIONSHIPS) {
      const token = app.mocks[r.name].signToken({ sub: 'alice' })
      matrix[r.name] = []
      for (const path of ['/api/whoami', '/staging/api/whoami']) {
        const res = await whoami(path, token)
        matrix[r.name]!.push(res.status)
        const environment = path === '/api/whoami' ? 'production' : 'staging'
        const body = (await res.json()) as { user?: { id?: unknown } }
        if (res.status === 401) {
          expect(res.headers.get('www-authenticate')).to.equal(
            `Bearer realm="${environment}", error="invalid_token", error_description="Issuer does not match"`,
          )
          expect(body).to.deep.equal({
            error: 'invalid_token',
            error_description: 'Issuer does not match',
          })
        } else {
          expect(res.headers.get('www-authenticate')).to.equal(null)
          const issuer = app.mocks[r.name].issuer
          expect(String(body.user?.id)).to.match(/^usr_\d+$/)
          expect(body).to.deep.equal({
            environment,
            issuer,
            user: { id: body.user?.id, issuer, externalId: 'alice' },
            scopes: String(payloadOf(token).scope).split(' '),
          })
        }
      }
    }
    expect(matrix).to.deep.equal({
      'acme-production': [200, 401],
      'globex-production': [200, 401],
      'acme-staging': [401, 200],
    })
  })

  it('keys users by issuer too: the same sub in two orgs is two users', async () => {
    const acme = (await (
      await whoami('/api/whoami', app.mocks['acme-production'].signToken({ sub: 'carol' }))
    ).json()) as {
      user: { id: string }
    }
    const globex = (await (
      await whoami('/api/whoami', app.mocks['globex-production'].signToken({ sub: 'carol' }))
    ).json()) as { user: { id: string } }
    expect(acme.user.id).to.not.equal(globex.user.id)
  })

  it("one org's webhook secret cannot rotate another org's keys", async () => {
    const event = app.mocks['acme-production'].rotateKeys()
    const wrong = await deliverWebhook(`${app.url}/webhooks/agentpress/acme-production`, event, {
      secret: app.mocks['globex-production'].webhookSecret,
    })
    expect([wrong.status, wrong.body]).to.deep.equal([
      401,
      {
        error: 'signature_mismatch',
        error_description: KEY_ROTATION_ERRORS.signature_mismatch.description,
      },
    ])
    const right = await deliverWebhook(`${app.url}/webhooks/agentpress/acme-production`, event, {
      secret: app.mocks['acme-production'].webhookSecret,
    })
    expect([right.status, right.body]).to.deep.equal([200, { received: true }])
    const after = await whoami('/api/whoami', app.mocks['acme-production'].signToken())
    expect([after.status, after.headers.get('www-authenticate')]).to.deep.equal([200, null])
    expect(((await after.json()) as { issuer: string }).issuer).to.equal(
      app.mocks['acme-production'].issuer,
    )
  })
})
