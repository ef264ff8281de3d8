/**
 * Runs the example on an embedded mock AgentPress behind a loopback proxy that adds a fresh partner
 * token (scopes mcp:read mcp:write) to every request, as AgentPress does, so that the official MCP
 * conformance suite — which cannot send a bearer token itself — can reach the MCP server:
 *
 *   node examples/express-mcp-server/conformance-proxy.mjs      # prints the proxy's /mcp URL
 *   npx @modelcontextprotocol/conformance server --url <that URL>   (Node 22)
 *
 * Host and Origin naming the proxy are rewritten to the example's own, so the transport's
 * DNS-rebinding protection still judges every other value the suite sends. Loopback only.
 */
import { createServer, request } from 'node:http'

import { startServer } from './server.mjs'

startServer({ port: 0, log: () => {} }).then((server) => {
  const target = new URL(server.mcpUrl)
  const proxy = createServer((req, res) => {
    const own = `127.0.0.1:${proxy.address().port}`
    const headers = { ...req.headers }
    if (headers.host === own) headers.host = target.host
    if (headers.origin === `http://${own}`) headers.origin = target.origin
    headers.authorization = `Bearer ${server.mock.signToken({ scope: 'mcp:read mcp:write' })}`
    const upstream = request(
      { host: '127.0.0.1', port: target.port, path: req.url, method: req.method, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.setTimeout(30_000, () => upstream.destroy())
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  proxy.listen(0, '127.0.0.1', () => {
    console.log(`http://127.0.0.1:${proxy.address().port}/mcp`)
  })
  const stop = () => {
    proxy.close()
    void server.close()
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
})
