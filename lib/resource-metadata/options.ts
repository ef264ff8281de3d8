/**
 * The options of `protectedResourceMetadata`, validated once, and the RFC 9728 §2 document they
 * make (frozen).
 */
import { OFFLINE_ACCESS, isScopeToken, offlineAccessRefused } from '../core/token/scope.js'
import { optionsObject, rejectUnknownKeys, secureUrl } from '../core/validate.js'

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

const KNOWN = new Set([
  'resource',
  'authorizationServers',
  'scopesSupported',
  'resourceName',
  'resourceDocumentation',
  'maxAgeSec',
])

// The one URL policy (`secureUrl`), and RFC 9728 §1.2: a resource identifier has no query.
/** @internal */
export function checkUrl(value: unknown, name: string, allowQuery = false): URL {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${name} must be a non-empty URL string`)
  }
  const url = secureUrl(value, name)
  if (!allowQuery && (url.search || value.includes('?'))) {
    throw new TypeError(`${name} must not contain a query`)
  }
  return url
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

/** Validates the options and builds the document. @internal */
export function normalizeMetadataOptions(input: unknown): {
  metadata: ProtectedResourceMetadata
  resource: URL
  maxAgeSec: number
} {
  const options = optionsObject(input, 'protectedResourceMetadata: options must be an object')
  rejectUnknownKeys(options, KNOWN, 'protectedResourceMetadata')
  const resource = checkUrl(options.resource, 'options.resource')

  // Issuers are compared byte for byte (§2), so they are published exactly as configured,
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
      if (scope === OFFLINE_ACCESS) {
        throw new TypeError(offlineAccessRefused(`options.scopesSupported[${index}]`))
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
    // §2: tokens are accepted in the Authorization header only.
    bearer_methods_supported: Object.freeze(['header'] as const),
    ...(name === undefined ? {} : { resource_name: name as string }),
    ...(documentation === undefined ? {} : { resource_documentation: documentation }),
  })
  return { metadata, resource, maxAgeSec }
}
