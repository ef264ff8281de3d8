/**
 * RFC 9728 OAuth 2.0 Protected Resource Metadata for the MCP server: the document an MCP client
 * fetches (from the `resource_metadata="…"` of a challenge, or by the well-known path) to learn
 * which authorization servers vouch for this resource and which scopes it knows.
 *
 * A plain `(req, res, next)` function over Node's own request and response: it runs unchanged
 * under Express 4, Express 5 and Connect, and imports none of them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isScopeToken } from './core/scope.js'
import { optionsObject, rejectUnknownKeys, secureUrl } from './core/validate.js'
import { pathOf, sendJson, type NextFunction } from './http/connect.js'

/** The RFC 9728 §3 well-known suffix. */
const WELL_KNOWN = '/.well-known/oauth-protected-resource'

/**
 * Options of {@link protectedResourceMetadata}.
 *
 * @example
 * ```ts
 * const options: ProtectedResourceMetadataOptions = {
 *   resource: 'https://mcp.example.com/mcp',
 *   authorizationServers: agentPressIssuer({ orgSlug: 'acme-org' }).issuer,
 *   scopesSupported: ['mcp:read', 'mcp:write'],
 *   resourceName: 'Example MCP server',
 *   maxAgeSec: 600,
 * }
 * app.use(protectedResourceMetadata(options))
 * ```
 */
export interface ProtectedResourceMetadataOptions {
  /**
   * The protected resource identifier: your MCP server's stable URL, i.e. the `audience` the
   * partner tokens are issued for (e.g. `https://mcp.example.com/mcp`). `https:`, or `http:` on a
   * loopback host; no query, fragment or credentials (RFC 9728 §1.2).
   */
  resource: string
  /**
   * The issuers that may sign tokens for this resource (`authorization_servers`): the AgentPress
   * issuer of each trusted org and environment, e.g. `https://api.agent.press/orgs/acme-org`.
   */
  authorizationServers: string | readonly string[]
  /** `scopes_supported`: the scopes your tools use, e.g. `['mcp:read', 'mcp:write']`. */
  scopesSupported?: readonly string[] | undefined
  /** `resource_name`: a human-readable name of the server. */
  resourceName?: string | undefined
  /** `resource_documentation`: a documentation URL (`https:`, or `http:` on loopback). */
  resourceDocumentation?: string | undefined
  /** `Cache-Control` max-age of the document, in seconds. Default 3600; 0 sends `no-cache`. */
  maxAgeSec?: number | undefined
}

/**
 * The RFC 9728 §2 document this package serves.
 *
 * @example
 * ```ts
 * // `prm.metadata`, and the body of GET /.well-known/oauth-protected-resource/mcp
 * const metadata: ProtectedResourceMetadata = {
 *   resource: 'https://mcp.example.com/mcp',
 *   authorization_servers: ['https://api.agent.press/orgs/acme-org'],
 *   scopes_supported: ['mcp:read', 'mcp:write'],
 *   bearer_methods_supported: ['header'],
 * }
 * ```
 */
export interface ProtectedResourceMetadata {
  readonly resource: string
  readonly authorization_servers: readonly string[]
  readonly scopes_supported?: readonly string[]
  readonly bearer_methods_supported: readonly ['header']
  readonly resource_name?: string
  readonly resource_documentation?: string
}

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

const KNOWN = new Set([
  'resource',
  'authorizationServers',
  'scopesSupported',
  'resourceName',
  'resourceDocumentation',
  'maxAgeSec',
])

const ALLOW = 'GET, HEAD, OPTIONS'
const METHOD_NOT_ALLOWED = JSON.stringify({
  error: 'method_not_allowed',
  error_description: 'Only GET, HEAD and OPTIONS are allowed',
})

// The one URL policy (`secureUrl`), and RFC 9728 §1.2: a resource identifier has no query.
function checkUrl(value: unknown, name: string, allowQuery = false): URL {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${name} must be a non-empty URL string`)
  }
  const url = secureUrl(value, name)
  if (!allowQuery && (url.search || value.includes('?'))) {
    throw new TypeError(`${name} must not contain a query`)
  }
  return url
}

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

function checkStrings(value: unknown, name: string): string[] {
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(`${name} must be a non-empty array of URL strings`)
  }
  return list.map((item: unknown, index) => {
    checkUrl(item, `${name}[${index}]`)
    return item as string
  })
}

function normalize(input: unknown): {
  metadata: ProtectedResourceMetadata
  resource: URL
  maxAgeSec: number
} {
  const options = optionsObject(input, 'protectedResourceMetadata: options must be an object')
  rejectUnknownKeys(options, KNOWN, 'protectedResourceMetadata')
  const resource = checkUrl(options.resource, 'options.resource')

  // Issuers are compared byte for byte (SPEC §2), so they are published exactly as configured,
  // not as `URL#href` would rewrite them (it adds a trailing `/` to a bare origin).
  const authorizationServers = checkStrings(
    options.authorizationServers,
    'options.authorizationServers',
  )
  if (new Set(authorizationServers).size !== authorizationServers.length) {
    throw new TypeError('options.authorizationServers must not contain duplicates')
  }

  let scopes: string[] | undefined
  if (options.scopesSupported !== undefined) {
    if (!Array.isArray(options.scopesSupported)) {
      throw new TypeError('options.scopesSupported must be an array of scope strings')
    }
    scopes = options.scopesSupported.map((scope: unknown, index) => {
      if (!isScopeToken(scope)) {
        throw new TypeError(
          `options.scopesSupported[${index}] must be a non-empty RFC 6749 scope token (no spaces or quotes)`,
        )
      }
      return scope
    })
    if (new Set(scopes).size !== scopes.length) {
      throw new TypeError('options.scopesSupported must not contain duplicates')
    }
  }

  const name = options.resourceName
  if (name !== undefined && (typeof name !== 'string' || name.trim().length === 0)) {
    throw new TypeError('options.resourceName must be a non-empty string')
  }
  const documentation =
    options.resourceDocumentation === undefined
      ? undefined
      : checkUrl(options.resourceDocumentation, 'options.resourceDocumentation', true).href

  const maxAgeSec = options.maxAgeSec ?? 3600
  if (typeof maxAgeSec !== 'number' || !Number.isSafeInteger(maxAgeSec) || maxAgeSec < 0) {
    throw new TypeError(
      `options.maxAgeSec must be a whole number of seconds >= 0, got ${String(maxAgeSec)}`,
    )
  }

  const metadata: ProtectedResourceMetadata = Object.freeze({
    // RFC 9728 §3.3: `resource` must be identical to the identifier the client used, which for
    // MCP is the token audience; keep the caller's spelling.
    resource: options.resource as string,
    authorization_servers: Object.freeze(authorizationServers),
    ...(scopes === undefined ? {} : { scopes_supported: Object.freeze(scopes) }),
    // SPEC §2: tokens are accepted in the Authorization header only.
    bearer_methods_supported: Object.freeze(['header'] as const),
    ...(name === undefined ? {} : { resource_name: name as string }),
    ...(documentation === undefined ? {} : { resource_documentation: documentation }),
  })
  return { metadata, resource, maxAgeSec }
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
  const { metadata, resource, maxAgeSec } = normalize(options)
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
