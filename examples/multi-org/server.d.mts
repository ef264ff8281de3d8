// Types of server.mjs, for the tests.
import type { AgentPressPartnerStrategy } from 'passport-agentpress-partner'
import type { MockAgentPress } from 'passport-agentpress-partner/testing'

export type RelationshipName = 'acme-production' | 'globex-production' | 'acme-staging'

export declare const RELATIONSHIPS: ReadonlyArray<{
  name: RelationshipName
  orgSlug: string
  environment: 'production' | 'staging'
}>

export interface MultiOrgApp {
  url: string
  audiences: { production: string; staging: string }
  mocks: Record<RelationshipName, MockAgentPress>
  strategies: { production: AgentPressPartnerStrategy; staging: AgentPressPartnerStrategy }
  close(): Promise<void>
}

export declare function startMultiOrg(options?: { port?: number }): Promise<MultiOrgApp>
