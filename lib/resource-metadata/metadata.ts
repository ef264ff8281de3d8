/**
 * RFC 9728 OAuth 2.0 Protected Resource Metadata for the MCP server: the document an MCP client
 * fetches (from the `resource_metadata="…"` of a challenge, or by the well-known path) to learn
 * which authorization servers vouch for this resource and which scopes it knows.
 *
 * A plain `(req, res, next)` function over Node's own request and response: it runs unchanged
 * under Express 4, Express 5 and Connect, and imports none of them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pathOf, sendJson, type NextFunction } from '../http/connect.js'
import {
  checkUrl,
  normalizeMetadataOptions,
  type ProtectedResourceMetadata,
  type ProtectedResourceMetadataOptions,
} from './options.js'

export type { ProtectedResourceMetadata, ProtectedResourceMetadataOptions } from './options.js'

/** The RFC 9728 §3 well-known suffix. */
const WELL_KNOWN = '/.well-known/oauth-protected-resource'

/**
 * The middleware returned by {@link protectedResourceMetadata}, with what it serves.
 *
 * @example
 * ```ts
 * const prm: ProtectedResourceMetadataHandler = protectedResourceMetadata({
 *   resource: 'https://mcp.example.com/mcp',
 *   authorizationServers: ['https://api.agent.press/orgs/acme-org'],
 * })
 * app.use(prm)
 * prm.paths
 * // ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']
 * prm.url // 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp'
 * ```
 */
export interface ProtectedResourceMetadataHandler {
  (req: IncomingMessage, res: ServerResponse, next: NextFunction): void
  /** The frozen document. */
  readonly metadata: ProtectedResourceMetadata
  /** The request paths answered: the RFC 9728 §3.1 path-aware one first, then the bare one. */
  readonly paths: readonly string[]
  /** The URL to advertise as the strategy's `resourceMetadataUrl`. */
  readonly url: string
}

const ALLOW = 'GET, HEAD, OPTIONS'
const METHOD_NOT_ALLOWED = JSON.stringify({
  error: 'method_not_allowed',
  error_description: 'Only GET, HEAD and OPTIONS are allowed',
})

/**
 * The Protected Resource Metadata URL of `resource` (RFC 9728 §3.1): the well-known suffix is
 * inserted between the host and the resource's path, so `https://h/mcp` gives
 * `https://h/.well-known/oauth-protected-resource/mcp`. Put it in the strategy's
 * `resourceMetadataUrl`; it is the URL the official MCP SDK computes for the same resource.
 *
 * @example
 * ```ts
 * protectedResourceMetadataUrl('https://mcp.example.com/mcp')
 * // 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp'
 * protectedResourceMetadataUrl('https://mcp.example.com')
 * // 'https://mcp.example.com/.well-known/oauth-protected-resource'
 * ```
 */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = checkUrl(resource, 'resource')
  return `${url.origin}${wellKnownPath(url)}`
}

function wellKnownPath(resource: URL): string {
  // RFC 9728 §3.1: a resource without a path (or `/`) uses the bare well-known path.
  return resource.pathname === '/' ? WELL_KNOWN : `${WELL_KNOWN}${resource.pathname}`
}

/**
 * Serves RFC 9728 Protected Resource Metadata for one MCP resource. Mount it at the application
 * root (`app.use(prm)`): it answers the path-aware well-known path of RFC 9728 §3.1 (for
 * `https://h/mcp`, `/.well-known/oauth-protected-resource/mcp`) and the bare
 * `/.well-known/oauth-protected-resource`, and passes every other request to `next()`.
 *
 * - `GET`/`HEAD`: 200, `application/json`, `Access-Control-Allow-Origin: *` (browser-based MCP
 *   clients read it cross-origin; it holds nothing secret), `Cache-Control: public, max-age=3600`.
 * - `OPTIONS`: 204 CORS preflight answer.
 * - Any other method: 405 with `Allow: GET, HEAD, OPTIONS`.
 *
 * The document: `resource` (the audience), `authorization_servers` (the trusted issuers),
 * `scopes_supported` when given, `bearer_methods_supported: ["header"]`. Options are validated
 * once, here, and the document is frozen.
 *
 * @example
 * ```ts
 * import { protectedResourceMetadata } from 'passport-agentpress-partner'
 *
 * const prm = protectedResourceMetadata({
 *   resource: 'https://mcp.example.com/mcp',
 *   authorizationServers: ['https://api.agent.press/orgs/acme-org'],
 *   scopesSupported: ['mcp:read', 'mcp:write'],
 * })
 * app.use(prm)
 * // new AgentPressPartnerStrategy({ ..., resourceMetadataUrl: prm.url }, verify)
 * ```
 */
export function protectedResourceMetadata(
  options: ProtectedResourceMetadataOptions,
): ProtectedResourceMetadataHandler {
  const { metadata, resource, maxAgeSec } = normalizeMetadataOptions(options)
  const primary = wellKnownPath(resource)
  const paths = Object.freeze(primary === WELL_KNOWN ? [WELL_KNOWN] : [primary, WELL_KNOWN])
  const body = JSON.stringify(metadata)
  const length = String(Buffer.byteLength(body))
  const cacheControl = maxAgeSec === 0 ? 'no-cache' : `public, max-age=${maxAgeSec}`

  const handler = (req: IncomingMessage, res: ServerResponse, next: NextFunction): void => {
    if (!paths.includes(pathOf(req.url))) return next()
    if (res.headersSent) return next()
    res.setHeader('Access-Control-Allow-Origin', '*')
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        res.statusCode = 200
        res.setHeader('Content-Type', 'application/json; charset=utf-8')
        res.setHeader('Content-Length', length)
        res.setHeader('Cache-Control', cacheControl)
        // Node writes no body for HEAD whatever is passed to end().
        res.end(req.method === 'HEAD' ? undefined : body)
        return
      case 'OPTIONS':
        res.statusCode = 204
        res.setHeader('Access-Control-Allow-Methods', ALLOW)
        // A fixed list: request headers are never reflected into response headers.
        res.setHeader(
          'Access-Control-Allow-Headers',
          'Authorization, Content-Type, MCP-Protocol-Version',
        )
        res.setHeader('Access-Control-Max-Age', '86400')
        res.setHeader('Content-Length', '0')
        res.end()
        return
      default: {
        sendJson(res, 405, METHOD_NOT_ALLOWED, { Allow: ALLOW })
      }
    }
  }
  return Object.defineProperties(handler, {
    metadata: { value: metadata, enumerable: true },
    paths: { value: paths, enumerable: true },
    url: { value: `${resource.origin}${primary}`, enumerable: true },
  }) as ProtectedResourceMetadataHandler
}
