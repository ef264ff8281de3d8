/**
 * The MCP server: one `McpServer` per request (stateless Streamable HTTP), with a read tool and a
 * write tool. `TOOLS` is the single table the HTTP scope gate (`requireToolScopes`), the
 * `tools/list` filter (`limitToolsToScopes`) and the in-handler check read, so a tool cannot be
 * registered without its scopes.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { limitToolsToScopes } from 'passport-agentpress-partner/mcp'
import { z } from 'zod'

/** Tool name → what it needs and does. */
export const TOOLS = Object.freeze({
  list_notes: {
    scopes: ['mcp:read'],
    title: 'List notes',
    description: "List the calling user's notes.",
    inputSchema: {},
    run: (user) => ({ notes: user.notes }),
  },
  add_note: {
    scopes: ['mcp:write'],
    title: 'Add a note',
    description: "Add a note to the calling user's notes.",
    inputSchema: { text: z.string().min(1).max(500).describe('The note') },
    run: (user, args) => {
      user.notes.push(args.text)
      return { added: args.text, count: user.notes.length }
    },
  },
})

/** Tool name → scopes, for `requireToolScopes`. */
export const TOOL_SCOPES = Object.freeze(
  Object.fromEntries(Object.entries(TOOLS).map(([name, tool]) => [name, tool.scopes])),
)

/**
 * With `tools` (the `requireToolScopes` gate) and the request's `authInfo`, only the tools that
 * token may call are listed by `tools/list`.
 *
 * @param {{
 *   onToolCall?: (call: { tool: string, authInfo: unknown }) => void,
 *   tools?: import('passport-agentpress-partner').ToolScopeGate,
 *   authInfo?: { scopes: string[] },
 * }} [options]
 */
export function createMcpServer({ onToolCall, tools, authInfo } = {}) {
  let server = new McpServer({ name: 'agentpress-partner-example', version: '1.0.0' })
  if (tools !== undefined) server = limitToolsToScopes(server, tools, authInfo)
  for (const [name, tool] of Object.entries(TOOLS)) {
    server.registerTool(
      name,
      { title: tool.title, description: tool.description, inputSchema: tool.inputSchema },
      async (args, extra) => {
        // `extra.authInfo` is the `req.auth` the strategy set: token, clientId (ext_provider),
        // scopes, expiresAt, resource, and extra.user / extra.claims.
        const authInfo = extra.authInfo
        onToolCall?.({ tool: name, authInfo })
        const user = authInfo?.extra?.user
        // Backstop: the HTTP gate already refused missing scopes with 403; never rely on one layer.
        if (user === undefined || !tool.scopes.every((scope) => authInfo.scopes.includes(scope))) {
          return { isError: true, content: [{ type: 'text', text: 'Insufficient scope' }] }
        }
        const result = {
          user: { id: user.id, externalId: user.externalId },
          ...tool.run(user, args),
        }
        return { content: [{ type: 'text', text: JSON.stringify(result) }] }
      },
    )
  }
  return server
}
