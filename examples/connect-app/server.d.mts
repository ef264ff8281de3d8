// Types of server.mjs, for the tests.
import type { MockAgentPress } from 'passport-agentpress-partner/testing'

export interface ConnectApp {
  url: string
  audience: string
  mock: MockAgentPress | undefined
  close(): Promise<void>
}

export declare function startConnectApp(options?: {
  port?: number
  agentpress?: { issuer: string; extProvider: string; jwksUrl?: string; webhookSecret: string }
}): Promise<ConnectApp>
