// A loopback JWKS endpoint that counts its fetches, standing in for AgentPress's
// `<issuer>/.well-known/jwks.json`. Binds 127.0.0.1 only.
import { createServer } from 'node:http'
import { ORG_PATH } from './common.mjs'

export async function startJwksServer(publicJwk) {
  let fetches = 0
  const body = JSON.stringify({ keys: [publicJwk] })
  const server = createServer((req, res) => {
    if (req.url === `${ORG_PATH}/.well-known/jwks.json`) {
      fetches++
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      })
      res.end(body)
      return
    }
    if (req.url === `${ORG_PATH}/__fetches`) {
      // lets a bench child process read the count without sharing memory
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ fetches }))
      return
    }
    res.writeHead(404).end()
  })
  server.keepAliveTimeout = 1000
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  const issuer = `http://127.0.0.1:${port}${ORG_PATH}`
  return {
    issuer,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    get fetches() {
      return fetches
    },
    reset() {
      fetches = 0
    },
    close() {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}
