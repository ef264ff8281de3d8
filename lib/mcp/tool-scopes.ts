/**
 * Per-tool scopes on the one MCP endpoint. Every MCP request goes to the same `POST /mcp`, so a
 * route-level `requireScopes('mcp:write')` would refuse the read tools too; this gate reads the
 * JSON-RPC body instead and asks, for each `tools/call` of the message or batch, for the scopes
 * of the tool it names. One HTTP request gets one answer: the union of every called tool's
 * scopes in one 403 `insufficient_scope` challenge, exactly as `requireScopes` gives it
 * (MCP 2025-11-25, "Scope challenge handling": the `scope` lists what the operation needs).
 *
 * Plain `(req, res, next)` over Node's request and response: it runs unchanged under Express 4,
 * Express 5 and Connect.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

import { checkScopes } from '../core/token/scope.js'
import { optionsObject } from '../core/validate.js'
import { sendJson, type Middleware } from '../http/connect.js'
import { auditCalls } from '../http/audit.js'
import { hasUnreadBody } from '../http/raw-body.js'
import { requireScopes } from '../middleware/require-scopes.js'

/**
 * Tool name → the scopes a call of it needs, all of them (flat set, no wildcards). `[]` marks a
 * tool every authenticated caller may use.
 *
 * @example
 * ```ts
 * const toolScopes: ToolScopes = { list_notes: ['mcp:read'], add_note: ['mcp:write'] }
 * ```
 */
export type ToolScopes = Readonly<Record<string, readonly string[]>>

/**
 * What the granted scopes can be read from: the MCP SDK's `AuthInfo` (`req.auth`, or
 * `extra.authInfo` in a tool handler), our `req.authInfo`, or a list of scopes.
 *
 * @example
 * ```ts
 * const granted: GrantedScopes = extra.authInfo // { scopes: ['mcp:read'], … }
 * ```
 */
export type GrantedScopes = { readonly scopes: readonly string[] } | readonly string[] | undefined

/**
 * The middleware returned by {@link requireToolScopes}, with the table it enforces, so the MCP
 * server can list only the tools the token may call (see `limitToolsToScopes` in
 * `passport-agentpress-partner/mcp`).
 *
 * @example
 * ```ts
 * const gate: ToolScopeGate = requireToolScopes({ list_notes: ['mcp:read'] })
 * gate.allows('list_notes', ['mcp:read']) // true
 * ```
 */
export interface ToolScopeGate extends Middleware {
  /** The validated, frozen table. */
  readonly toolScopes: ToolScopes
  /**
   * Whether a token with `granted` scopes may call `tool`. A tool not in the table is allowed:
   * the gate lets its calls through as well (the MCP server answers an unknown one itself).
   */
  allows(tool: string, granted: GrantedScopes): boolean
}

// A body that Content-Type marks as JSON (`application/json`, `application/x+json`, parameters).
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

// JSON-RPC's "server error" code the MCP SDK's transport uses for its own HTTP-level refusals.
const SERVER_ERROR = -32000

/**
 * Per-tool scope gate for the JSON-RPC body of an MCP endpoint. Mount it after authentication
 * and after a JSON body parser (`express.json()`), before the MCP transport.
 *
 * - For a single message or a batch, every `tools/call` naming a tool of the table adds that
 *   tool's scopes; when the token lacks any of them the whole request is refused with one 403
 *   `insufficient_scope` whose `scope="…"` is the union (in table order), through
 *   `requireScopes`: same headers, and the JSON / JSON-RPC body after `authenticatePartner`.
 *   Nothing of the batch reaches the transport, so no tool handler runs.
 * - Other methods (`initialize`, `tools/list`, notifications …), tools not in the table and
 *   messages that are not JSON-RPC pass through: the transport answers them.
 * - With a body but no parsed JSON value (`req.body` unset, a string or bytes), nothing can be
 *   checked, and the request is never passed on (the transport would parse and run the
 *   unchecked body itself): a `Content-Type` that is not JSON gets 415 (MCP messages are JSON);
 *   a JSON one means no JSON parser ran before the gate — a server setup error, answered 501
 *   with a JSON-RPC error saying so (fixed text, no stack).
 *
 * @throws {TypeError} at creation, when the table is not an object or a tool's scopes are not a
 * list of RFC 6749 scope tokens.
 *
 * @example
 * ```ts
 * const tools = requireToolScopes({ list_notes: ['mcp:read'], add_note: ['mcp:write'] })
 * app.post('/mcp', authenticatePartner(passport, { body: 'jsonrpc' }), express.json(), tools, mcpHandler)
 * ```
 */
export function requireToolScopes(toolScopes: ToolScopes): ToolScopeGate {
  const input = optionsObject(toolScopes, 'requireToolScopes() needs an object: tool name → scopes')
  const table = new Map<string, readonly string[]>()
  // Each scope's first position in the table: the order of every challenge's scope list.
  const order = new Map<string, number>()
  for (const tool of Object.keys(input)) {
    const scopes = checkScopes(
      input[tool],
      `requireToolScopes() toolScopes[${JSON.stringify(tool)}]`,
      true,
    )
    table.set(tool, scopes)
    for (const scope of scopes) if (!order.has(scope)) order.set(scope, order.size)
  }
  const frozen: ToolScopes = Object.freeze(Object.fromEntries(table))
  // One requireScopes per distinct union; their number is bounded by the table's combinations.
  const checks = new Map<string, Middleware>()
  const checkFor = (needed: readonly string[]): Middleware => {
    const key = needed.join(' ')
    let check = checks.get(key)
    if (check === undefined) {
      check = requireScopes(...(needed as [string, ...string[]]))
      if (checks.size < 1024) checks.set(key, check)
    }
    return check
  }

  const gate = function requireToolScopesMiddleware(req, res, next) {
    // A non-JSON body is refused on its Content-Type, never on what the parser left: Express 4's
    // express.json() leaves {} and Express 5's undefined, and both must answer the same 415.
    if (hasUnreadBody(req) && !JSON_TYPE.test(req.headers['content-type'] ?? '')) {
      return refuseUnparsed(req, res)
    }
    const body = (req as IncomingMessage & { body?: unknown }).body
    if (typeof body !== 'object' || body === null || body instanceof Uint8Array) {
      // Nothing was sent (a GET, an empty POST): nothing to check.
      if (body === undefined && !hasUnreadBody(req)) return next()
      return refuseUnparsed(req, res)
    }
    auditCalls(req, body)
    const needed = new Set<string>()
    for (const message of Array.isArray(body) ? body : [body]) {
      for (const scope of calledToolScopes(table, message)) needed.add(scope)
    }
    if (needed.size === 0) return next()
    checkFor([...needed].sort((a, b) => order.get(a)! - order.get(b)!))(req, res, next)
  } as ToolScopeGate & { toolScopes: ToolScopes }
  Object.defineProperty(gate, 'toolScopes', { value: frozen, enumerable: true })
  gate.allows = (tool, granted) => {
    const scopes = table.get(tool)
    if (scopes === undefined) return true
    const have = grantedList(granted)
    return scopes.every((scope) => have.includes(scope))
  }
  return Object.freeze(gate)
}

// The scopes of the table's tool that a `tools/call` message names; none for anything else.
function calledToolScopes(
  table: ReadonlyMap<string, readonly string[]>,
  message: unknown,
): readonly string[] {
  if (message === null || typeof message !== 'object') return []
  const { method, params } = message as { method?: unknown; params?: unknown }
  if (method !== 'tools/call' || params === null || typeof params !== 'object') return []
  const name = (params as { name?: unknown }).name
  return typeof name === 'string' ? (table.get(name) ?? []) : []
}

function grantedList(granted: GrantedScopes): readonly unknown[] {
  if (Array.isArray(granted)) return granted
  const scopes = (granted as { scopes?: unknown } | undefined)?.scopes
  return Array.isArray(scopes) ? scopes : []
}

// No JSON value to read (no parser ran, or `express.raw()` / `express.text()` did): never passed
// on, since the transport would parse and run the unchecked body itself.
function refuseUnparsed(req: IncomingMessage, res: ServerResponse): void {
  const isJson = JSON_TYPE.test(req.headers['content-type'] ?? '')
  const message = isJson
    ? 'Server setup error: no JSON body parser before the tool scope gate'
    : 'Unsupported Media Type: Content-Type must be application/json'
  const body = { jsonrpc: '2.0', id: null, error: { code: SERVER_ERROR, message } }
  sendJson(res, isJson ? 501 : 415, JSON.stringify(body))
}
