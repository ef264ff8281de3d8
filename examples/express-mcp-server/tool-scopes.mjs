/**
 * Per-tool scopes on one MCP endpoint, answered as HTTP 403 `insufficient_scope`.
 *
 * Every MCP request goes to the same `POST /mcp`, so a route-level `requireScopes('mcp:write')`
 * would refuse the read tool too. This middleware looks into the already-parsed JSON-RPC body:
 * for each `tools/call` (single message or batch) it collects the scopes of the named tool and
 * hands the decision to the package's `requireScopes(...)`, so the refusal is exactly the one a
 * route-level check gives: 403, `WWW-Authenticate: Bearer …, error="insufficient_scope",
 * scope="<that tool's scopes>"` and, after `authenticatePartner(passport, { body: 'jsonrpc' })`,
 * the JSON-RPC error body. Other methods (`initialize`, `tools/list`, …) pass. A name not in the
 * table passes too: the MCP server answers it "tool not found" — so build the table from the same
 * list the tools are registered from (see tools.mjs), and keep the in-handler check as a backstop.
 *
 * Mount it after authentication and after `express.json()`.
 */
import { requireScopes } from 'passport-agentpress-partner'

/** The MCP SDK's own answer to a POST that is not JSON, so every framework gives the same one. */
const UNSUPPORTED_MEDIA_TYPE = JSON.stringify({
  jsonrpc: '2.0',
  error: {
    code: -32000,
    message: 'Unsupported Media Type: Content-Type must be application/json',
  },
  id: null,
})

/** Whether the media type of `header` is exactly application/json (parameters allowed). */
function isJson(header) {
  if (typeof header !== 'string') return false
  return header.split(';', 1)[0].trim().toLowerCase() === 'application/json'
}

/**
 * Answers 415 with the MCP SDK's JSON-RPC body, no stack: what a non-JSON POST gets whether the
 * body parser left `req.body` undefined (Express 5) or `{}` (Express 4).
 */
export function refuseNonJson(res) {
  res.writeHead(415, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(UNSUPPORTED_MEDIA_TYPE),
  })
  res.end(UNSUPPORTED_MEDIA_TYPE)
}

/**
 * @param {Readonly<Record<string, readonly string[]>>} toolScopes tool name → scopes it needs
 * @returns {(req: any, res: any, next: (err?: unknown) => void) => void}
 */
export function requireToolScopes(toolScopes) {
  const table = new Map()
  for (const [tool, scopes] of Object.entries(toolScopes)) {
    // requireScopes validates the scopes now, at startup, not on the first call.
    requireScopes(...scopes)
    table.set(tool, [...scopes])
  }
  const checks = new Map() // "a b" → requireScopes('a', 'b'), built once per combination

  return function requireToolScopesMiddleware(req, res, next) {
    // Decide on the Content-Type, never on what the parser left: Express 4 leaves {} and Express 5
    // undefined for a body it did not parse, and neither may reach the table as "no tools".
    if (!isJson(req.headers['content-type'])) return refuseNonJson(res)
    if (req.body === undefined) {
      return next(new Error('requireToolScopes: mount express.json() before it'))
    }
    const messages = Array.isArray(req.body) ? req.body : [req.body]
    const needed = new Set()
    for (const message of messages) {
      if (message === null || typeof message !== 'object' || message.method !== 'tools/call')
        continue
      const name = message.params?.name
      if (typeof name === 'string' && table.has(name))
        for (const scope of table.get(name)) needed.add(scope)
    }
    if (needed.size === 0) return next()
    const key = [...needed].sort().join(' ')
    let check = checks.get(key)
    if (check === undefined) {
      check = requireScopes(...key.split(' '))
      checks.set(key, check)
    }
    check(req, res, next)
  }
}
