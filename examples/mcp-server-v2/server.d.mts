// Types of server.mjs, for the tests that start it.
import type { MockAgentPress } from 'passport-agentpress-partner/testing'

export declare const MCP_PATH: '/mcp'

export interface StartServerOptions {
  /** Default 3001; 0 picks a free port. The server always listens on 127.0.0.1. */
  port?: number
  log?: (line: string) => void
  /** Called by every tool handler with the `ctx.http.authInfo` it saw. */
  onToolCall?: (call: { tool: string; authInfo: unknown }) => void
}

export interface RunningServer {
  readonly url: string
  readonly mcpUrl: string
  readonly metadataUrl: string
  readonly mock: MockAgentPress
  close(): Promise<void>
}

export declare function startServer(options?: StartServerOptions): Promise<RunningServer>
