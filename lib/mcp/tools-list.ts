/**
 * `tools/list` by scope, for an `McpServer` of either MCP SDK (v1 `@modelcontextprotocol/sdk`, v2
 * `@modelcontextprotocol/server`): both return a registered tool with `disable()` from
 * `registerTool(…)`, and both leave disabled tools out of `tools/list` and refuse to run them.
 * Names no SDK, so `/mcp` and `/mcp/v2` share it.
 */
import type { GrantedScopes, ToolScopeGate } from './tool-scopes.js'

/**
 * Makes `tools/list` of one `McpServer` list only the tools `granted` may call under `gate`'s
 * table (MCP 2026-07-28 lets the list vary by authorization). Call it on a fresh server, before
 * registering tools: from then on each `server.registerTool(…)` of a tool the token may not call
 * registers it disabled — the SDK leaves disabled tools out of `tools/list` and refuses to run
 * them. Tools outside the table stay listed, as the gate lets their calls through. Meant for one
 * server per request (stateless Streamable HTTP), where `granted` is that request's `req.auth`.
 *
 * @example
 * ```ts
 * const tools = requireToolScopes({ list_notes: ['mcp:read'], add_note: ['mcp:write'] })
 * app.post('/mcp', authenticatePartner(passport), express.json(), tools, async (req, res) => {
 *   const server = limitToolsToScopes(new McpServer({ name: 'notes', version: '1.0.0' }), tools, req.auth)
 *   server.registerTool('list_notes', { description: 'List notes' }, listNotes)
 *   server.registerTool('add_note', { description: 'Add a note', inputSchema }, addNote)
 *   // … connect a StreamableHTTPServerTransport and handle the request
 * })
 * ```
 */
export function limitToolsToScopes<S extends ToolRegistry>(
  server: S,
  gate: ToolScopeGate,
  granted: GrantedScopes,
): S {
  if (typeof gate?.allows !== 'function') {
    throw new TypeError('limitToolsToScopes() needs the gate returned by requireToolScopes()')
  }
  const register = server.registerTool.bind(server) as (...args: unknown[]) => RegisteredTool
  const limited = (name: unknown, ...rest: unknown[]): RegisteredTool => {
    const tool = register(name, ...rest)
    if (typeof name === 'string' && !gate.allows(name, granted)) tool.disable()
    return tool
  }
  server.registerTool = limited as unknown as S['registerTool']
  return server
}

/**
 * The part of an SDK's `McpServer` {@link limitToolsToScopes} uses. Structural on purpose: each SDK
 * ships separate ESM and CommonJS declarations of `McpServer`, whose private members make them
 * different types, and v1's and v2's must both be accepted.
 *
 * @example
 * ```ts
 * const registry: ToolRegistry = new McpServer({ name: 'notes', version: '1.0.0' })
 * ```
 */
export interface ToolRegistry {
  registerTool(name: string, ...rest: never[]): RegisteredTool
}

interface RegisteredTool {
  disable(): void
}
