/**
 * `agentpress-mock check <url>`: probes a running MCP server from outside, as an attacker or
 * AgentPress would, and reports one finding per probe. The probes:
 *
 * - discovery: the 401 without a token points at an RFC 9728 document that exists, names this
 *   URL as its `resource`, and may be read cross-origin;
 * - hostile tokens (`tokens.ts`), each of which must be 401 `invalid_token`;
 * - a foreign `Origin`;
 * - with `webhook`, unsigned and otherwise bad key-rotation deliveries (`webhook-probes.ts`);
 * - with `issuer` (a mock AgentPress: `agentpress-mock serve`, or a server embedding the mock's
 *   control API), the positive path too (`issuer-probes.ts`).
 *
 * Bounds: at most `maxRequests` requests to the server, each answered within `timeoutMs` or
 * counted as no answer; the only other socket is the loopback trap this run opens itself.
 */
import { isLoopbackHost } from '../../core/validate.js'
import { challengedWithoutToken, type CheckResult, type Finding, type Verdict } from './findings.js'
import { mockIssuer, probeIssuerPaths, type MockIssuer } from './issuer-probes.js'
import { challengeParam, ProbeError, Requester, type ProbeResponse } from './request.js'
import { probeTokens, type TokenContext } from './token-probes.js'
import { probeWebhook } from './webhook-probes.js'

export type { CheckResult, Finding } from './findings.js'

export interface CheckOptions {
  /** The MCP endpoint, e.g. `https://mcp.example.com/mcp`. */
  readonly url: URL
  /** The key-rotation webhook route. */
  readonly webhook?: URL
  /** The webhook secret of a staging/dev relationship: then bad bodies are validly signed. */
  readonly webhookSecret?: string
  /** A loopback mock AgentPress (its control API) the server trusts: the positive path. */
  readonly issuer?: URL
  /** The tool the missing-scope probe calls (default: the first `tools/list` names). */
  readonly tool?: string
  /** `ext_provider` of crafted tokens when no mock says it. */
  readonly extProvider?: string
  /** Deadline of one request. Default 8000 ms. */
  readonly timeoutMs?: number
  /** Requests the whole run may send. Default 80. */
  readonly maxRequests?: number
}

export interface CheckReport {
  readonly target: string
  readonly findings: readonly Finding[]
  readonly summary: Readonly<Record<CheckResult, number>>
  readonly requests: number
  readonly durationMs: number
}

/** What every probe needs: where, how, and what the discovery step learnt. */
export interface ProbeContext {
  readonly url: URL
  readonly requester: Requester
  add(id: string, title: string, verdict: Verdict): void
  /** POST a JSON-RPC body to the MCP endpoint with these extra headers. */
  post(headers: Record<string, string | string[]>, body?: string): Promise<ProbeResponse>
}

export const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'agentpress-mock-check', version: '1' },
  },
})

export async function runCheck(options: CheckOptions): Promise<CheckReport> {
  const started = performance.now()
  const findings: Finding[] = []
  const requester = new Requester(options.timeoutMs ?? 8000, options.maxRequests ?? 80)
  const context: ProbeContext = {
    url: options.url,
    requester,
    add: (id, title, [result, detail]) => void findings.push({ id, title, result, detail }),
    post: (headers, body = INITIALIZE) =>
      requester.send({
        method: 'POST',
        url: options.url,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
        body,
      }),
  }
  try {
    await probeAll(context, options)
  } catch (err) {
    if (!(err instanceof ProbeError)) throw err
    context.add('no-answer', 'the server answered every probe', [
      'fail',
      `${err.message}; the remaining probes were not run`,
    ])
  }
  const summary = { pass: 0, fail: 0, warn: 0, skip: 0 }
  for (const finding of findings) summary[finding.result] += 1
  return {
    target: options.url.href,
    findings,
    summary,
    requests: requester.used,
    durationMs: Math.round(performance.now() - started),
  }
}

async function probeAll(context: ProbeContext, options: CheckOptions): Promise<void> {
  const { url } = context
  const local = isLoopbackHost(url.hostname)
  context.add(
    'transport',
    'the MCP endpoint is served over https',
    url.protocol === 'https:'
      ? ['pass', 'https']
      : local
        ? ['pass', 'http on a loopback host (local development)']
        : [
            'warn',
            'plain http to a non-loopback host: tokens would cross the network in clear text',
          ],
  )

  const mock: MockIssuer | undefined =
    options.issuer === undefined ? undefined : await mockIssuer(context, options.issuer)

  // 1. No token: the challenge, and the discovery it points at.
  const anonymous = await context.post({})
  context.add('no-token', 'POST without a token', challengedWithoutToken(anonymous))
  const metadata = await probeDiscovery(context, anonymous)

  // 2. Hostile tokens.
  const tokenContext: TokenContext = {
    audience: metadata?.resource ?? url.href,
    issuer: mock?.config.issuer ?? metadata?.issuer,
    jwksUrl: mock?.config.jwksUrl,
    scope: metadata?.scopes.join(' ') || 'mcp:read',
    extProvider: mock?.config.extProvider ?? options.extProvider ?? 'agentpress-check',
    local,
  }
  await probeTokens(context, tokenContext, mock)

  // 3. A foreign Origin (the Streamable HTTP transport MUST validate it); with a valid token
  // from the mock the transport's own check is reached, without one the authentication answers.
  const origin = { origin: 'https://agentpress-check.invalid' }
  if (mock === undefined) {
    const answer = await context.post(origin)
    context.add(
      'foreign-origin',
      'POST with a foreign Origin (no token)',
      answer.status >= 200 && answer.status < 300
        ? ['fail', `ACCEPTED: ${answer.status}`]
        : answer.status >= 500
          ? ['fail', `${answer.status}: a server error`]
          : [
              'pass',
              `${answer.status} (refused before the transport; --issuer reaches its Origin check)`,
            ],
    )
  } else {
    const answer = await context.post({
      ...origin,
      authorization: `Bearer ${await mock.mint({})}`,
    })
    context.add(
      'foreign-origin',
      'POST with a valid token and a foreign Origin',
      answer.status >= 400 && answer.status < 500
        ? ['pass', `${answer.status}`]
        : ['fail', `${answer.status}: a foreign Origin must be refused (403)`],
    )
  }

  // 4. The webhook.
  if (options.webhook === undefined) {
    context.add('webhook', 'key-rotation webhook probes', ['skip', 'no --webhook URL given'])
  } else {
    await probeWebhook(context, options.webhook, options.webhookSecret, tokenContext.issuer)
  }

  // 5. The positive path, last: its emergency rotation changes the mock's keys.
  if (mock === undefined) {
    context.add('positive-path', 'valid tokens from a mock AgentPress', [
      'skip',
      'no --issuer (mock AgentPress) given',
    ])
  } else {
    await probeIssuerPaths(context, mock, options)
  }
}

interface Metadata {
  readonly resource: string
  readonly issuer: string | undefined
  readonly scopes: readonly string[]
}

/** RFC 9728: the document the challenge names (or the well-known URL derived from ours). */
async function probeDiscovery(
  context: ProbeContext,
  anonymous: ProbeResponse,
): Promise<Metadata | undefined> {
  const { url } = context
  const named = challengeParam(anonymous, 'resource_metadata')
  const derived = new URL(
    `/.well-known/oauth-protected-resource${url.pathname === '/' ? '' : url.pathname}`,
    url,
  )
  let where: URL
  try {
    where = new URL(named ?? derived.href)
  } catch {
    context.add('prm-document', 'the Protected Resource Metadata document', [
      'fail',
      `resource_metadata is not a URL: ${JSON.stringify(named)}`,
    ])
    return undefined
  }
  const title = `GET ${where.href}`
  if (where.protocol !== 'https:' && !isLoopbackHost(where.hostname)) {
    context.add('prm-transport', 'the metadata is served over https', [
      'warn',
      `plain http to a non-loopback host: ${where.origin}`,
    ])
  }
  const answer = await context.requester.send({
    method: 'GET',
    url: where,
    headers: { accept: 'application/json', origin: 'https://agentpress-check.invalid' },
  })
  if (answer.status !== 200) {
    context.add('prm-document', title, ['fail', `${answer.status}: expected 200 with the document`])
    return undefined
  }
  let document: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(answer.body)
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error()
    document = parsed as Record<string, unknown>
  } catch {
    context.add('prm-document', title, ['fail', '200, but the body is not a JSON object'])
    return undefined
  }
  const problems: string[] = []
  const resource = document.resource
  if (typeof resource !== 'string') problems.push('no "resource" string')
  else if (resource !== url.href && resource !== url.href.replace(/\/$/, '')) {
    problems.push(`"resource" is ${JSON.stringify(resource)}, not ${JSON.stringify(url.href)}`)
  }
  const servers = document.authorization_servers
  const stringList = (value: unknown): value is string[] =>
    Array.isArray(value) && value.every((item) => typeof item === 'string')
  if (servers !== undefined && !stringList(servers)) {
    problems.push('"authorization_servers" is not an array of strings')
  }
  if (document.scopes_supported !== undefined && !stringList(document.scopes_supported)) {
    problems.push('"scopes_supported" is not an array of strings')
  }
  const methods = document.bearer_methods_supported
  if (methods !== undefined && !(stringList(methods) && methods.includes('header'))) {
    problems.push('"bearer_methods_supported" does not list "header"')
  }
  if (named !== undefined && where.href !== derived.href) {
    problems.push(`served at ${where.href}, not the well-known ${derived.href} (RFC 9728 §3.1)`)
  }
  context.add(
    'prm-document',
    title,
    problems.length === 0
      ? ['pass', `200, resource ${resource as string}`]
      : ['fail', problems.join('; ')],
  )
  const cors = answer.headers['access-control-allow-origin']
  context.add(
    'prm-cors',
    'the metadata may be read cross-origin (browser-based MCP clients)',
    cors === '*' || cors === 'https://agentpress-check.invalid'
      ? ['pass', `Access-Control-Allow-Origin: ${cors}`]
      : ['fail', 'no Access-Control-Allow-Origin on the metadata document'],
  )
  if (typeof resource !== 'string') return undefined
  return {
    resource,
    issuer: stringList(servers) ? servers[0] : undefined,
    scopes: stringList(document.scopes_supported) ? document.scopes_supported : [],
  }
}
