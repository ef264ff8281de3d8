/**
 * AgentPress's issuer URLs (§1): one per org and environment, with the JWKS beside it.
 */

/**
 * An AgentPress environment.
 *
 * @example
 * ```ts
 * const environment: AgentPressEnvironment = 'staging'
 * agentPressIssuer({ orgSlug: 'acme-org', environment }).issuer
 * // 'https://stg-api.agent.press/orgs/acme-org'
 * ```
 */
export type AgentPressEnvironment = 'production' | 'staging'

const HOSTS: Readonly<Record<AgentPressEnvironment, string>> = Object.freeze({
  production: 'https://api.agent.press',
  staging: 'https://stg-api.agent.press',
})

// Org slugs are URL path segments; anything else would let configuration smuggle a path.
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/

/**
 * The `issuer` and `jwksUrl` of an AgentPress org in one environment.
 *
 * @example
 * ```ts
 * agentPressIssuer({ orgSlug: 'acme-org' })
 * // { issuer: 'https://api.agent.press/orgs/acme-org',
 * //   jwksUrl: 'https://api.agent.press/orgs/acme-org/.well-known/jwks.json' }
 * agentPressIssuer({ orgSlug: 'acme-org', environment: 'staging' }).issuer
 * // 'https://stg-api.agent.press/orgs/acme-org'
 * ```
 */
export function agentPressIssuer(options: {
  orgSlug: string
  environment?: AgentPressEnvironment
}): { issuer: string; jwksUrl: string } {
  const { orgSlug, environment = 'production' } = options ?? ({} as never)
  if (typeof orgSlug !== 'string' || !SLUG.test(orgSlug)) {
    throw new TypeError('agentPressIssuer: orgSlug must be lower-case letters, digits and hyphens')
  }
  const host = Object.hasOwn(HOSTS, environment) ? HOSTS[environment] : undefined
  if (host === undefined) {
    throw new TypeError('agentPressIssuer: environment must be "production" or "staging"')
  }
  const issuer = `${host}/orgs/${orgSlug}`
  return { issuer, jwksUrl: `${issuer}/.well-known/jwks.json` }
}
