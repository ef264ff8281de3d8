/**
 * The positive path, against a server that trusts a mock AgentPress (staging or development):
 * `check` asks the mock's loopback control API (`/_mock/…`, see `mock-control.ts`) for tokens, so
 * it still holds no key of its own. A valid token must be served; a token without the tool's
 * scope must be 403 `insufficient_scope`; a replayed token 401 `token_replayed` when the server
 * rejects replays; and after an emergency rotation delivered to `--webhook`, a token of the
 * retired key must be refused. The rotation changes the mock's keys, so it runs last.
 */
import {
  MOCK_CONTROL_PATH,
  type MockRotateRequest,
  type MockTokenRequest,
} from '../mock-control.js'
import type { CheckOptions, ProbeContext } from './check.js'
import { describe, refusedAsInvalidToken, type Verdict } from './findings.js'
import { challengeParam, ProbeError, type ProbeResponse } from './request.js'

export interface MockConfig {
  readonly issuer: string
  readonly jwksUrl: string
  readonly audience: string
  readonly extProvider: string
}

export interface MockIssuer {
  readonly config: MockConfig
  /** A token minted by the mock (its defaults, then `request`). */
  mint(request: MockTokenRequest): Promise<string>
  /** The claims of a freshly minted default token. */
  claims(): Promise<Record<string, unknown>>
  /** Rotates the mock's key (and delivers the webhook): `{ event, delivery }`. */
  rotate(request: MockRotateRequest): Promise<Record<string, unknown>>
}

export async function mockIssuer(context: ProbeContext, where: URL): Promise<MockIssuer> {
  const control = async (path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const answer = await context.requester.send({
      method: body === undefined ? 'GET' : 'POST',
      url: new URL(`${MOCK_CONTROL_PATH}/${path}`, where),
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    })
    let parsed: unknown
    try {
      parsed = JSON.parse(answer.body)
    } catch {
      parsed = undefined
    }
    if (answer.status !== 200 || parsed === null || typeof parsed !== 'object') {
      throw new ProbeError(
        `the mock at ${where.origin} answered ${answer.status} to ${MOCK_CONTROL_PATH}/${path}`,
        'network',
      )
    }
    return parsed as Record<string, unknown>
  }
  const config = (await control('config')) as unknown as MockConfig
  const mint = async (request: MockTokenRequest): Promise<string> =>
    String((await control('token', request)).token)
  return {
    config,
    mint,
    claims: async () => (await control('token', {})).claims as Record<string, unknown>,
    rotate: (request) => control('rotate', request),
  }
}

const accepted = (answer: ProbeResponse): boolean => answer.status >= 200 && answer.status < 300

/** The JSON-RPC result in a JSON or an SSE (`data: …`) answer. */
function jsonRpcResult(answer: ProbeResponse): Record<string, unknown> | undefined {
  const texts = [answer.body, ...answer.body.split('\n').filter((l) => l.startsWith('data:'))]
  for (const text of texts) {
    try {
      const parsed = JSON.parse(text.replace(/^data:\s*/, '')) as { result?: unknown }
      if (parsed !== null && typeof parsed.result === 'object') {
        return parsed.result as Record<string, unknown>
      }
    } catch {
      // not this one
    }
  }
  return undefined
}

export async function probeIssuerPaths(
  context: ProbeContext,
  mock: MockIssuer,
  options: CheckOptions,
): Promise<void> {
  const bearer = async (request: MockTokenRequest = {}): Promise<Record<string, string>> => ({
    authorization: `Bearer ${await mock.mint(request)}`,
  })

  // A valid token.
  const valid = await context.post(await bearer())
  context.add(
    'valid-token',
    'a valid token from the mock (initialize)',
    accepted(valid) ? ['pass', `${valid.status}`] : ['fail', `${describe(valid)}: expected 2xx`],
  )

  // A tool call without the tool's scope.
  let tool = options.tool
  if (tool === undefined) {
    const list = await context.post(
      await bearer(),
      JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }),
    )
    const tools = jsonRpcResult(list)?.tools
    if (Array.isArray(tools) && typeof tools[0]?.name === 'string') tool = tools[0].name as string
  }
  if (tool === undefined) {
    context.add('missing-scope', 'tools/call without the tool’s scope', [
      'skip',
      'tools/list named no tool (pass --tool NAME)',
    ])
  } else {
    const call = JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: tool, arguments: {} },
    })
    const answer = await context.post(await bearer({ scope: 'agentpress-check:none' }), call)
    const error = challengeParam(answer, 'error')
    context.add(
      'missing-scope',
      `tools/call ${tool} with scope "agentpress-check:none"`,
      answer.status === 403 && error === 'insufficient_scope'
        ? ['pass', `${describe(answer)} scope="${challengeParam(answer, 'scope') ?? ''}"`]
        : accepted(answer)
          ? ['fail', `ACCEPTED: ${answer.status}: the tool ran without its scope`]
          : ['fail', `${describe(answer)}: expected 403 insufficient_scope`],
    )
  }

  // The same token twice.
  const once = await bearer()
  const first = await context.post(once)
  const second = await context.post(once)
  context.add('replay', 'the same token twice', replayVerdict(first, second))

  // An emergency rotation, told to the server through its webhook.
  if (options.webhook === undefined) {
    context.add('emergency-rotation', 'an emergency rotation retires the old key', [
      'skip',
      'no --webhook URL given (the rotation is delivered there)',
    ])
    return
  }
  const old = await bearer()
  const rotated = await mock.rotate({ emergency: true, webhookUrl: options.webhook.href })
  const delivery = rotated.delivery as { status?: number; error?: string } | undefined
  if (typeof delivery?.status !== 'number' || delivery.status < 200 || delivery.status > 299) {
    context.add('emergency-rotation', 'an emergency rotation retires the old key', [
      'fail',
      `the signed rotation webhook was not accepted: ${delivery?.error ?? delivery?.status}`,
    ])
    return
  }
  const refused = refusedAsInvalidToken(await context.post(old), 'Signing key not found')
  const fresh = await context.post(await bearer())
  context.add(
    'emergency-rotation',
    'after an emergency rotation: the retired kid refused, the new one served',
    refused[0] !== 'pass'
      ? [refused[0], `retired kid: ${refused[1]}`]
      : accepted(fresh)
        ? ['pass', `retired kid ${refused[1]}; new kid ${fresh.status}`]
        : ['fail', `retired kid ${refused[1]}; but the new kid got ${describe(fresh)}`],
  )
}

function replayVerdict(first: ProbeResponse, second: ProbeResponse): Verdict {
  if (!accepted(first)) return ['fail', `the first use got ${describe(first)}: expected 2xx`]
  if (accepted(second)) {
    return ['warn', 'accepted twice: replay rejection is off (a captured token works until exp)']
  }
  const [result, detail] = refusedAsInvalidToken(second, 'Token already used')
  return [result, `second use ${detail}`]
}
