/**
 * The tools of the MCP SDK v2 example: one `McpServer` (`@modelcontextprotocol/server`) per
 * request, a read tool and a write tool. `TOOLS` is the one table the HTTP scope gate
 * (`requireToolScopes`), the `tools/list` filter (`limitToolsToScopes`) and the in-handler check
 * read. In v2 a tool handler reads the request's `AuthInfo` as `ctx.http.authInfo` (v1:
 * `extra.authInfo`): the `req.auth` our strategy set, or v2's `requireBearerAuth` with our adapter.
 */
import { McpServer } from '@modelcontextprotocol/server'
import { limitToolsToScopes } from 'passport-agentpress-partner/mcp/v2'
import { z } from 'zod'

/** Tool name → what it needs and does. Notes live per user id, in memory. */
export const TOOLS = Object.freeze({
  list_notes: {
    scopes: ['mcp:read'],
    description: "List the calling user's notes.",
    inputSchema: undefined,
    run: (notes) => ({ notes }),
  },
  add_note: {
    scopes: ['mcp:write'],
    description: "Add a note to the calling user's notes.",
    inputSchema: z.object({ text: z.string().min(1).max(500).describe('The note') }),
    run: (notes, args) => {
      notes.push(args.text)
      return { added: args.text, count: notes.length }
    },
  },
})

/** Tool name → scopes, for `requireToolScopes`. */
export const TOOL_SCOPES = Object.freeze(
  Object.fromEntries(Object.entries(TOOLS).map(([name, tool]) => [name, tool.scopes])),
)

/**
 * @param {{
 *   tools: import('passport-agentpress-partner/mcp/v2').ToolScopeGate,
 *   authInfo: { scopes: string[] },
 *   notesOf: (userId: string) => string[],
 *   onToolCall?: (call: { tool: string, authInfo: unknown }) => void,
 * }} options
 */
export function createMcpServer({ tools, authInfo, notesOf, onToolCall }) {
  const server = limitToolsToScopes(
    new McpServer({ name: 'agentpress-partner-example-v2', version: '1.0.0' }),
    tools,
    authInfo,
  )
  for (const [name, tool] of Object.entries(TOOLS)) {
    const handler = async (args, ctx) => {
      const auth = ctx.http?.authInfo
      onToolCall?.({ tool: name, authInfo: auth })
      const user = auth?.extra?.user
      // Backstop: the HTTP gate already refused missing scopes with 403; never rely on one layer.
      if (user === undefined || !tool.scopes.every((scope) => auth.scopes.includes(scope))) {
        return { isError: true, content: [{ type: 'text', text: 'Insufficient scope' }] }
      }
      const result = { user: user.id, ...tool.run(notesOf(user.id), args) }
      return { content: [{ type: 'text', text: JSON.stringify(result) }] }
    }
    server.registerTool(
      name,
      tool.inputSchema === undefined
        ? { description: tool.description }
        : { description: tool.description, inputSchema: tool.inputSchema },
      // Without an inputSchema v2 calls the handler with (ctx) only.
      tool.inputSchema === undefined ? (ctx) => handler(undefined, ctx) : handler,
    )
  }
  return server
}
