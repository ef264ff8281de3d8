/**
 * The example's configuration from environment variables. (The library itself never reads the
 * environment; applications do, here.)
 *
 * - AGENTPRESS_ISSUER            the trusted issuer, e.g. https://api.agent.press/orgs/acme-org
 *   or AGENTPRESS_ORG_SLUG (+ AGENTPRESS_ENVIRONMENT=production|staging, default production)
 * - AGENTPRESS_EXT_PROVIDER      your partner name (the ext_provider claim); required with an issuer
 * - MCP_AUDIENCE                 this server's stable URL (the aud claim); default http://127.0.0.1:$PORT/mcp
 * - AGENTPRESS_WEBHOOK_SECRET    the key-rotation webhook secret; without it no webhook route is mounted
 * - PORT                         default 3000;  HOST  default 127.0.0.1
 * - REDIS_URL                    several instances: share rotations, revocations and used tokens
 *   through Redis (redis:// or rediss://); replay rejection is then on. Needs a shared issuer
 *   (AGENTPRESS_ISSUER, e.g. one `agentpress-mock serve`): never the embedded mock
 * - AGENTPRESS_REPLAY            on|off: refuse a token used twice (default on with REDIS_URL,
 *   else off; on without REDIS_URL remembers used tokens in this process only)
 * - JWKS_WARM_UP                 `false` (or `0`) skips fetching the JWKS at boot; default on
 * - AGENTPRESS_MOCK_CONTROL      `1` serves the embedded mock's control API (/_mock/token,
 *   /_mock/rotate: what `agentpress-mock token|rotate --server` call) to loopback peers; default
 *   off, because it mints tokens this server accepts. Only with the embedded mock
 *
 * With neither AGENTPRESS_ISSUER nor AGENTPRESS_ORG_SLUG set, the server starts an embedded mock
 * AgentPress (MCP_AUDIENCE, AGENTPRESS_EXT_PROVIDER and AGENTPRESS_WEBHOOK_SECRET then configure it).
 */
import { agentPressIssuer } from 'passport-agentpress-partner'

/** A configuration mistake: printed as is, exit status 2. */
export class ConfigError extends Error {}

const LOOPBACK_HOSTS = /^(?:localhost|127(?:\.\d{1,3}){3}|::1|\[::1\])$/i

/** Whether `host` (a listen address or host name) is this machine only. */
export function isLoopbackListener(host) {
  return LOOPBACK_HOSTS.test(host)
}

/**
 * `name` must be an absolute http(s) URL; an issuer must moreover use https: (http: on loopback
 * hosts), carry no credentials or fragment and not end with "/".
 */
function checkUrl(name, value, { issuer = false } = {}) {
  let url
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(`${name} must be an absolute URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`${name} must be an http: or https: URL, got ${JSON.stringify(value)}`)
  }
  if (!issuer) return
  if (url.protocol !== 'https:' && !isLoopbackListener(url.hostname)) {
    throw new ConfigError(
      `${name} must use https: (http: only for localhost / 127.0.0.1), got ${JSON.stringify(value)}`,
    )
  }
  if (url.username !== '' || url.password !== '' || url.hash !== '' || value.includes('#')) {
    throw new ConfigError(`${name} must not contain credentials or a fragment`)
  }
  if (value.endsWith('/')) {
    throw new ConfigError(
      `${name} must not end with "/" (AgentPress issuers have none): use ${value.replace(/\/+$/, '')}`,
    )
  }
}

/** `AGENTPRESS_MOCK_CONTROL`: on only when asked for in so many words. */
function onOff(name, value) {
  if (value === undefined || /^(?:0|false|off|no)$/i.test(value)) return false
  if (/^(?:1|true|on|yes)$/i.test(value)) return true
  throw new ConfigError(
    `${name} must be 1 (serve the mock control API) or 0 (default), got ${JSON.stringify(value)}`,
  )
}

/** @param {NodeJS.ProcessEnv} env */
export function configFromEnv(env = process.env) {
  const get = (name) => {
    const value = env[name]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }
  const port = get('PORT') === undefined ? 3000 : Number(get('PORT'))
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`PORT must be a port number, got ${JSON.stringify(env.PORT)}`)
  }
  const config = {
    port,
    host: get('HOST') ?? '127.0.0.1',
    audience: get('MCP_AUDIENCE'),
    extProvider: get('AGENTPRESS_EXT_PROVIDER'),
    webhookSecret: env.AGENTPRESS_WEBHOOK_SECRET === '' ? undefined : env.AGENTPRESS_WEBHOOK_SECRET,
    warmUp: !/^(?:0|false|no|off)$/i.test(get('JWKS_WARM_UP') ?? ''),
    redisUrl: get('REDIS_URL'),
    replay: get('AGENTPRESS_REPLAY'),
    mockControl: onOff('AGENTPRESS_MOCK_CONTROL', get('AGENTPRESS_MOCK_CONTROL')),
  }
  if (config.replay !== undefined && config.replay !== 'on' && config.replay !== 'off') {
    throw new ConfigError('AGENTPRESS_REPLAY must be "on" or "off"')
  }
  if (config.audience !== undefined) checkUrl('MCP_AUDIENCE', config.audience)
  // The router's rule (§5), checked here so the message names the variable.
  if (config.webhookSecret !== undefined) {
    if (config.webhookSecret.length < 16) {
      throw new ConfigError('AGENTPRESS_WEBHOOK_SECRET must be at least 16 characters long')
    }
    if (/^\s|\s$/u.test(config.webhookSecret)) {
      throw new ConfigError(
        'AGENTPRESS_WEBHOOK_SECRET must not have leading or trailing whitespace',
      )
    }
  }

  const issuer = get('AGENTPRESS_ISSUER')
  const orgSlug = get('AGENTPRESS_ORG_SLUG')
  const environment = get('AGENTPRESS_ENVIRONMENT')
  if (issuer === undefined && orgSlug === undefined) {
    if (environment !== undefined) {
      throw new ConfigError('AGENTPRESS_ENVIRONMENT needs AGENTPRESS_ORG_SLUG')
    }
    if (!isLoopbackListener(config.host)) {
      // The embedded mock's control API mints tokens this server accepts: never beyond this machine.
      throw new ConfigError(
        `HOST=${config.host} with the embedded mock AgentPress: its control API (/_mock/token, ` +
          '/_mock/rotate) mints tokens this server accepts, so it runs on a loopback HOST only ' +
          '(127.0.0.1, localhost or ::1). Set AGENTPRESS_ISSUER or AGENTPRESS_ORG_SLUG to listen elsewhere.',
      )
    }
    if (config.redisUrl !== undefined) {
      // Each instance would start its own mock: its own issuer, keys and webhook secret. Tokens
      // minted for one would be refused by the others (issuer_mismatch), and so would its relays.
      throw new ConfigError(
        'REDIS_URL with the embedded mock AgentPress: every instance would run its own mock (its own ' +
          "issuer, keys and webhook secret), so the instances could not trust each other's tokens " +
          'or relays. Start one mock for the whole fleet (npx agentpress-mock serve) and point every ' +
          'instance at it with the AGENTPRESS_ISSUER, AGENTPRESS_EXT_PROVIDER, MCP_AUDIENCE and ' +
          'AGENTPRESS_WEBHOOK_SECRET it prints (see docs/fleet.md)',
      )
    }
    return { ...config, agentpress: undefined } // embedded mock
  }
  if (issuer !== undefined && orgSlug !== undefined) {
    throw new ConfigError('set AGENTPRESS_ISSUER or AGENTPRESS_ORG_SLUG, not both')
  }
  if (config.mockControl) {
    throw new ConfigError(
      'AGENTPRESS_MOCK_CONTROL serves the embedded mock AgentPress, and there is none with ' +
        'AGENTPRESS_ISSUER or AGENTPRESS_ORG_SLUG set: unset one of them',
    )
  }
  if (config.extProvider === undefined) {
    throw new ConfigError(
      'AGENTPRESS_EXT_PROVIDER is required with a real issuer (your partner name)',
    )
  }
  let trusted = issuer
  if (issuer !== undefined) checkUrl('AGENTPRESS_ISSUER', issuer, { issuer: true })
  if (orgSlug !== undefined) {
    if (environment !== undefined && environment !== 'production' && environment !== 'staging') {
      throw new ConfigError('AGENTPRESS_ENVIRONMENT must be "production" or "staging"')
    }
    try {
      trusted = agentPressIssuer({ orgSlug, environment: environment ?? 'production' }).issuer
    } catch (err) {
      throw new ConfigError(`AGENTPRESS_ORG_SLUG: ${err.message}`)
    }
  }
  return { ...config, agentpress: { issuer: trusted, extProvider: config.extProvider } }
}
