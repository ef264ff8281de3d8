// Types of server.mjs, for TypeScript callers (the end-to-end tests).
import type { AgentPressPartnerStrategy } from 'passport-agentpress-partner'
import type { MockAgentPress } from 'passport-agentpress-partner/testing'
import type { RedisFleet } from 'passport-agentpress-partner/redis'

export declare const MCP_PATH: '/mcp'
export declare const WEBHOOK_PATH: '/webhooks/agentpress/key-rotation'
export declare const READY_PATH: '/readyz'
export declare const FLEET_PATH: '/readyz/fleet'
export declare const SCOPES: string[]

/** A local user, provisioned on first contact from `(ext_provider, sub)`. */
export interface ExampleUser {
  id: string
  extProvider: string
  externalId: string
  createdAt: string
  notes: string[]
}

export interface StartServerOptions {
  /** Default 3000; 0 picks a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** The `aud` this server accepts; default `http://127.0.0.1:<port>/mcp`. */
  audience?: string
  /** The trusted AgentPress; absent: an embedded mock is started. */
  agentpress?: { issuer: string; extProvider: string; jwksUrl?: string; webhookSecret?: string }
  /** ext_provider of the embedded mock. */
  extProvider?: string
  /** Webhook secret (embedded mock, or the real one when `agentpress` has none). */
  webhookSecret?: string
  /** First-contact provisioning; false answers unknown users 403 user_not_provisioned. Default true. */
  autoProvision?: boolean
  /** Fetch the JWKS before taking traffic (logged, never fatal). Default true. */
  warmUp?: boolean
  /** Called by every tool handler with the `authInfo` the MCP SDK handed it. */
  onToolCall?: (call: { tool: string; authInfo: unknown }) => void
  /** Operator log lines (boot readiness, rotations, webhook refusals, JWKS failures). Default `console.log`. */
  log?: (line: string) => void
  /** Several instances: a Redis URL for `passport-agentpress-partner/redis` (replay on by default). */
  redisUrl?: string
  /** Replay rejection: Redis with `redisUrl`, else this process's memory. Default on with `redisUrl`. */
  replay?: 'on' | 'off'
  /**
   * Serve the embedded mock's control API (`/_mock/token`, `/_mock/rotate`) to loopback peers
   * (`AGENTPRESS_MOCK_CONTROL=1` for `npm start`). Default false: it mints tokens this server
   * accepts, so those paths are 404. Only with the embedded mock (a ConfigError with `agentpress`).
   */
  mockControl?: boolean
}

export interface RunningServer {
  url: string
  mcpUrl: string
  audience: string
  issuer: string
  metadataUrl: string
  webhookUrl: string | undefined
  /** The readiness endpoint (`readinessHandler`). */
  readyUrl: string
  mock: MockAgentPress | undefined
  users: { list(): ExampleUser[] }
  strategy: AgentPressPartnerStrategy
  fleet: RedisFleet | undefined
  close(): Promise<void>
}

export declare function startServer(options?: StartServerOptions): Promise<RunningServer>
