import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { expect } from 'chai'
import connect from 'connect'
import express5 from 'express'
import request from 'supertest'
import { discoverOAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/client/auth.js'
import { getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js'

import {
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type ProtectedResourceMetadataOptions,
} from 'passport-agentpress-partner'
import { type ProtectedResourceMetadataHandler } from '../../dist/resource-metadata/metadata.js'

// `express4` is an npm alias of express@4 with no types of its own; it has express's API.
const express4 = createRequire(import.meta.url)('express4') as typeof express5

const OPTIONS: ProtectedResourceMetadataOptions = {
  resource: 'https://mcp.example.com/mcp',
  authorizationServers: [
    'https://api.agent.press/orgs/acme-org',
    'https://stg-api.agent.press/orgs/acme-org',
  ],
  scopesSupported: ['mcp:read', 'mcp:write'],
}

const DOCUMENT = {
  resource: 'https://mcp.example.com/mcp',
  authorization_servers: [
    'https://api.agent.press/orgs/acme-org',
    'https://stg-api.agent.press/orgs/acme-org',
  ],
  scopes_supported: ['mcp:read', 'mcp:write'],
  bearer_methods_supported: ['header'],
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

// Each framework mounts the middleware at the root, with a route behind it to prove next().
const FRAMEWORKS: ReadonlyArray<[string, (prm: ProtectedResourceMetadataHandler) => Handler]> = [
  [
    'Express 4',
    (prm) => {
      const app = express4()
      app.use(prm)
      app.get('/mcp', (_req, res) => void res.status(200).send('behind'))
      return app as unknown as Handler
    },
  ],
  [
    'Express 5',
    (prm) => {
      const app = express5()
      app.use(prm)
      app.get('/mcp', (_req, res) => void res.status(200).send('behind'))
      return app as unknown as Handler
    },
  ],
  [
    'Connect',
    (prm) => {
      const app = connect()
      app.use(prm)
      app.use('/mcp', (_req: IncomingMessage, res: ServerResponse) => {
        res.statusCode = 200
        res.end('behind')
      })
      return app as unknown as Handler
    },
  ],
]

describe('protectedResourceMetadata (RFC 9728)', () => {
  for (const [name, mount] of FRAMEWORKS) {
    describe(name, () => {
      const app = mount(protectedResourceMetadata(OPTIONS))

      it('GET at the path-aware URL (RFC 9728 §3.1) serves the document', async () => {
        const res = await request(app).get('/.well-known/oauth-protected-resource/mcp').expect(200)
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
        expect(res.headers['access-control-allow-origin']).to.equal('*')
        expect(res.headers['cache-control']).to.equal('public, max-age=3600')
        expect(res.body).to.deep.equal(DOCUMENT)
      })

      it('GET at the bare well-known URL serves the same document', async () => {
        const res = await request(app).get('/.well-known/oauth-protected-resource').expect(200)
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
        expect(res.headers['access-control-allow-origin']).to.equal('*')
        expect(res.headers['cache-control']).to.equal('public, max-age=3600')
        expect(res.text).to.equal(JSON.stringify(DOCUMENT))
      })

      it('ignores the query string', async () => {
        const res = await request(app)
          .get('/.well-known/oauth-protected-resource/mcp?x=1')
          .expect(200)
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
        expect(res.text).to.equal(JSON.stringify(DOCUMENT))
      })

      it('HEAD answers 200 with the headers and no body', async () => {
        const res = await request(app).head('/.well-known/oauth-protected-resource/mcp').expect(200)
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8')
        expect(res.headers['content-length']).to.equal(
          String(Buffer.byteLength(JSON.stringify(DOCUMENT))),
        )
        expect(res.headers['access-control-allow-origin']).to.equal('*')
        expect(res.text ?? '').to.equal('')
      })

      it('OPTIONS answers the CORS preflight with 204', async () => {
        const res = await request(app)
          .options('/.well-known/oauth-protected-resource/mcp')
          .set('Origin', 'https://client.example')
          .set('Access-Control-Request-Method', 'GET')
          .set('Access-Control-Request-Headers', 'mcp-protocol-version, x-evil')
          .expect(204)
        expect(res.headers['access-control-allow-origin']).to.equal('*')
        expect(res.headers['access-control-allow-methods']).to.equal('GET, HEAD, OPTIONS')
        expect(res.headers['access-control-allow-headers']).to.equal(
          'Authorization, Content-Type, MCP-Protocol-Version',
        )
        expect(res.headers['access-control-max-age']).to.equal('86400')
        expect(res.text).to.equal('')
      })

      for (const method of ['post', 'put', 'delete', 'patch'] as const) {
        it(`${method.toUpperCase()} is 405 with Allow`, async () => {
          const res = await request(app)
            [method]('/.well-known/oauth-protected-resource/mcp')
            .expect(405)
          expect(res.headers.allow).to.equal('GET, HEAD, OPTIONS')
          expect(res.headers['access-control-allow-origin']).to.equal('*')
          expect(res.body).to.deep.equal({
            error: 'method_not_allowed',
            error_description: 'Only GET, HEAD and OPTIONS are allowed',
          })
        })
      }

      it('passes other paths to next()', async () => {
        const res = await request(app).get('/mcp').expect(200)
        expect(res.text).to.equal('behind')
        for (const path of [
          '/.well-known/oauth-protected-resource/other',
          '/.well-known/oauth-protected-resource/mcp/',
          '/.well-known/oauth-authorization-server',
        ]) {
          // The framework's own 404, untouched by the metadata handler (no CORS, no document).
          const missing = await request(app).get(path).expect(404)
          expect(missing.headers['access-control-allow-origin'], path).to.equal(undefined)
          expect(missing.headers['content-type'], path).to.not.match(/^application\/json/)
          expect(missing.text, path).to.not.include('authorization_servers')
        }
      })
    })
  }

  describe('a resource without a path', () => {
    const prm = protectedResourceMetadata({ ...OPTIONS, resource: 'https://mcp.example.com' })

    it('answers only the bare well-known path', async () => {
      expect(prm.paths).to.deep.equal(['/.well-known/oauth-protected-resource'])
      expect(prm.url).to.equal('https://mcp.example.com/.well-known/oauth-protected-resource')
      const res = await request(FRAMEWORKS[1]![1](prm))
        .get('/.well-known/oauth-protected-resource')
        .expect(200)
      expect(res.body).to.deep.equal({ ...DOCUMENT, resource: 'https://mcp.example.com' })
      // Nothing is served at a path-aware URL for an empty path.
      await request(FRAMEWORKS[1]![1](prm))
        .get('/.well-known/oauth-protected-resource/')
        .expect(404)
    })
  })

  describe('the document', () => {
    it('is frozen and exposes its paths and URL', () => {
      const prm = protectedResourceMetadata(OPTIONS)
      expect(prm.metadata).to.deep.equal(DOCUMENT)
      expect(Object.isFrozen(prm.metadata)).to.equal(true)
      expect(Object.isFrozen(prm.metadata.authorization_servers)).to.equal(true)
      expect(prm.paths).to.deep.equal([
        '/.well-known/oauth-protected-resource/mcp',
        '/.well-known/oauth-protected-resource',
      ])
      expect(prm.url).to.equal('https://mcp.example.com/.well-known/oauth-protected-resource/mcp')
    })

    it('does not change when the caller mutates its options afterwards', async () => {
      const servers = ['https://api.agent.press/orgs/acme-org']
      const scopes = ['mcp:read']
      const prm = protectedResourceMetadata({
        resource: OPTIONS.resource,
        authorizationServers: servers,
        scopesSupported: scopes,
      })
      servers.push('https://evil.example')
      scopes.push('admin')
      const res = await request(FRAMEWORKS[1]![1](prm)).get(
        '/.well-known/oauth-protected-resource/mcp',
      )
      expect(res.status).to.equal(200)
      expect(res.body).to.deep.equal({
        resource: OPTIONS.resource,
        authorization_servers: ['https://api.agent.press/orgs/acme-org'],
        scopes_supported: ['mcp:read'],
        bearer_methods_supported: ['header'],
      })
    })

    it('keeps issuers and the resource exactly as configured (no trailing-slash rewriting)', () => {
      const prm = protectedResourceMetadata({
        resource: 'http://127.0.0.1:3000/mcp',
        authorizationServers: 'http://127.0.0.1:4010',
      })
      expect(prm.metadata).to.deep.equal({
        resource: 'http://127.0.0.1:3000/mcp',
        authorization_servers: ['http://127.0.0.1:4010'],
        bearer_methods_supported: ['header'],
      })
    })

    it('carries resource_name, resource_documentation and the cache setting when given', async () => {
      const prm = protectedResourceMetadata({
        ...OPTIONS,
        resourceName: 'Example MCP',
        resourceDocumentation: 'https://docs.example.com/mcp',
        maxAgeSec: 0,
      })
      const expected = {
        ...DOCUMENT,
        resource_name: 'Example MCP',
        resource_documentation: 'https://docs.example.com/mcp',
      }
      expect(prm.metadata).to.deep.equal(expected)
      const res = await request(FRAMEWORKS[1]![1](prm)).get('/.well-known/oauth-protected-resource')
      expect(res.status).to.equal(200)
      expect(res.headers['cache-control']).to.equal('no-cache')
      expect(res.body).to.deep.equal(expected)
    })

    it('is what the official MCP SDK client discovers for the resource', async () => {
      // The resource URL needs the port, so the middleware is built once the server listens.
      let inner: ProtectedResourceMetadataHandler | undefined
      const server: Server = createServer((req, res) =>
        inner!(req, res, () => {
          res.statusCode = 404
          res.end()
        }),
      )
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      try {
        const { port } = server.address() as AddressInfo
        const resource = `http://127.0.0.1:${port}/mcp`
        inner = protectedResourceMetadata({
          resource,
          authorizationServers: ['https://api.agent.press/orgs/acme-org'],
          scopesSupported: ['mcp:read'],
        })
        const found = await discoverOAuthProtectedResourceMetadata(resource)
        expect(found).to.deep.equal({
          resource,
          authorization_servers: ['https://api.agent.press/orgs/acme-org'],
          scopes_supported: ['mcp:read'],
          bearer_methods_supported: ['header'],
        })
      } finally {
        server.closeAllConnections()
        await new Promise<void>((resolve) => server.close(() => resolve()))
      }
    })
  })

  describe('protectedResourceMetadataUrl', () => {
    const cases: ReadonlyArray<[string, string]> = [
      [
        'https://mcp.example.com/mcp',
        'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
      ],
      ['https://mcp.example.com', 'https://mcp.example.com/.well-known/oauth-protected-resource'],
      ['https://mcp.example.com/', 'https://mcp.example.com/.well-known/oauth-protected-resource'],
      [
        'https://mcp.example.com:8443/a/b',
        'https://mcp.example.com:8443/.well-known/oauth-protected-resource/a/b',
      ],
      [
        'http://127.0.0.1:3000/mcp',
        'http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp',
      ],
    ]
    for (const [resource, url] of cases) {
      it(`${resource} → ${url} (as the MCP SDK computes it)`, () => {
        expect(protectedResourceMetadataUrl(resource)).to.equal(url)
        expect(getOAuthProtectedResourceMetadataUrl(new URL(resource))).to.equal(url)
      })
    }

    it('validates its argument like the option', () => {
      expect(() => protectedResourceMetadataUrl('http://mcp.example.com/mcp')).to.throw(
        TypeError,
        'resource must use https: (http: is allowed only for loopback hosts), got http:',
      )
    })
  })

  describe('option validation', () => {
    const bad: ReadonlyArray<[string, unknown, string]> = [
      ['options missing', undefined, 'protectedResourceMetadata: options must be an object'],
      ['options an array', [], 'protectedResourceMetadata: options must be an object'],
      [
        'an unknown option',
        { ...OPTIONS, audience: 'x' },
        'Unknown protectedResourceMetadata option: audience',
      ],
      [
        'resource missing',
        { ...OPTIONS, resource: undefined },
        'options.resource must be a non-empty URL string',
      ],
      [
        'resource relative',
        { ...OPTIONS, resource: '/mcp' },
        'options.resource must be an absolute URL, got "/mcp"',
      ],
      [
        'resource on http: to a public host',
        { ...OPTIONS, resource: 'http://mcp.example.com/mcp' },
        'options.resource must use https: (http: is allowed only for loopback hosts), got http:',
      ],
      [
        'resource with a fragment',
        { ...OPTIONS, resource: 'https://mcp.example.com/mcp#x' },
        'options.resource must not contain a fragment',
      ],
      [
        'resource with a query',
        { ...OPTIONS, resource: 'https://mcp.example.com/mcp?tenant=a' },
        'options.resource must not contain a query',
      ],
      [
        'resource with credentials',
        { ...OPTIONS, resource: 'https://u:p@mcp.example.com/mcp' },
        'options.resource must not contain credentials',
      ],
      [
        'authorizationServers missing',
        { ...OPTIONS, authorizationServers: undefined },
        'options.authorizationServers must be a non-empty array of URL strings',
      ],
      [
        'authorizationServers empty',
        { ...OPTIONS, authorizationServers: [] },
        'options.authorizationServers must be a non-empty array of URL strings',
      ],
      [
        'an authorization server that is not a URL',
        { ...OPTIONS, authorizationServers: ['https://api.agent.press/orgs/a', 'acme'] },
        'options.authorizationServers[1] must be an absolute URL, got "acme"',
      ],
      [
        'a duplicate authorization server',
        { ...OPTIONS, authorizationServers: ['https://a.example', 'https://a.example'] },
        'options.authorizationServers must not contain duplicates',
      ],
      [
        'scopesSupported not an array',
        { ...OPTIONS, scopesSupported: 'mcp:read mcp:write' },
        'options.scopesSupported must be an array of scope strings',
      ],
      [
        'a scope with a space',
        { ...OPTIONS, scopesSupported: ['mcp:read', 'mcp:read mcp:write'] },
        'options.scopesSupported[1] must be a non-empty RFC 6749 scope token (no spaces or quotes)',
      ],
      [
        'an empty scope',
        { ...OPTIONS, scopesSupported: [''] },
        'options.scopesSupported[0] must be a non-empty RFC 6749 scope token (no spaces or quotes)',
      ],
      [
        'a duplicate scope',
        { ...OPTIONS, scopesSupported: ['mcp:read', 'mcp:read'] },
        'options.scopesSupported must not contain duplicates',
      ],
      [
        'an empty resourceName',
        { ...OPTIONS, resourceName: ' ' },
        'options.resourceName must be a non-empty string',
      ],
      [
        'resourceDocumentation on ftp:',
        { ...OPTIONS, resourceDocumentation: 'ftp://docs.example.com' },
        'options.resourceDocumentation must use https: (http: is allowed only for loopback hosts), got ftp:',
      ],
      [
        'maxAgeSec negative',
        { ...OPTIONS, maxAgeSec: -1 },
        'options.maxAgeSec must be a whole number of seconds >= 0, got -1',
      ],
      [
        'maxAgeSec NaN',
        { ...OPTIONS, maxAgeSec: Number.NaN },
        'options.maxAgeSec must be a whole number of seconds >= 0, got NaN',
      ],
      [
        'maxAgeSec Infinity',
        { ...OPTIONS, maxAgeSec: Number.POSITIVE_INFINITY },
        'options.maxAgeSec must be a whole number of seconds >= 0, got Infinity',
      ],
    ]
    for (const [label, options, message] of bad) {
      it(`refuses ${label}`, () => {
        const build = () => protectedResourceMetadata(options as ProtectedResourceMetadataOptions)
        expect(build).to.throw(TypeError).with.property('message', message)
      })
    }
  })
})
