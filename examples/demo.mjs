/**
 * `npm run demo`: a scripted walkthrough that needs nothing else running.
 *
 * It starts the example MCP server (examples/express-mcp-server) on a free port with its embedded
 * mock AgentPress, then drives it with the official MCP SDK client, the way AgentPress would call a
 * partner: a Streamable HTTP transport carrying `Authorization: Bearer <token>`. Each step checks
 * its outcome; any surprise ends the demo with exit status 1.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { deliverWebhook } from 'passport-agentpress-partner/testing'

import { startServer } from './express-mcp-server/server.mjs'

const TOTAL = 8
let step = 0

function say(title, ...details) {
  step++
  console.log(`\n[${step}/${TOTAL}] ${title}`)
  for (const line of details) console.log(`      ${line}`)
}

function fail(message) {
  throw Object.assign(new Error(message), { demoFailure: true })
}

/**
 * An MCP client authenticated with a fresh token from `mint()` on every request, as AgentPress
 * does (the server refuses a token used twice). The wrapped fetch also records the last POST's
 * status and `WWW-Authenticate`, so the demo can show what the server answered.
 */
function clientFor(mcpUrl, mint) {
  const seen = { status: undefined, challenge: undefined }
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    fetch: async (input, init) => {
      const headers = new Headers(init?.headers)
      headers.set('Authorization', `Bearer ${mint()}`)
      const response = await fetch(input, { ...init, headers })
      if (init?.method === 'POST') {
        seen.status = response.status
        seen.challenge = response.headers.get('www-authenticate') ?? undefined
      }
      return response
    },
  })
  const client = new Client({ name: 'agentpress-demo-client', version: '1.0.0' })
  return { client, transport, seen }
}

async function connected(mcpUrl, mint) {
  const c = clientFor(mcpUrl, mint)
  await c.client.connect(c.transport)
  return c
}

const textOf = (result) => result.content?.find((item) => item.type === 'text')?.text

/** Flips one character in the middle of the signature: still well-formed, no longer valid. */
function tamper(token) {
  const [header, payload, signature] = token.split('.')
  const i = Math.floor(signature.length / 2)
  const flipped = signature[i] === 'A' ? 'B' : 'A'
  return `${header}.${payload}.${signature.slice(0, i)}${flipped}${signature.slice(i + 1)}`
}

async function demo() {
  const serverLog = []
  const toolCalls = []
  const server = await startServer({
    port: 0,
    replay: 'on',
    log: (line) => serverLog.push(line),
    onToolCall: (call) => toolCalls.push(call),
  })
  const { mock, mcpUrl } = server
  try {
    console.log(
      'AgentPress partner MCP demo: nothing else running; an embedded mock AgentPress signs the tokens.',
    )
    console.log(`MCP server ${mcpUrl}, trusting ${server.issuer}`)
    console.log('Replay rejection is on: the client mints a fresh token for every request.')

    // 1. Connect and list tools with a read-only token.
    const readToken = () => mock.signToken({ sub: 'alice', scope: 'mcp:read' })
    const reader = await connected(mcpUrl, readToken)
    const { tools } = await reader.client.listTools()
    const names = tools.map((tool) => tool.name)
    // tools/list shows only what this token may call: the write tool is not listed.
    if (names.join(',') !== 'list_notes') fail(`unexpected tools ${names}`)
    say(
      `Connected as alice (scope "mcp:read") and listed tools: ${names.join(', ')}`,
      `server: ${reader.client.getServerVersion()?.name} ${reader.client.getServerVersion()?.version}`,
    )

    // 2. A tool within the token's scopes.
    const listed = await reader.client.callTool({ name: 'list_notes', arguments: {} })
    if (listed.isError) fail(`list_notes failed: ${textOf(listed)}`)
    const seenBy = toolCalls.at(-1)?.authInfo
    if (seenBy?.extra?.user?.externalId !== 'alice')
      fail('the tool handler did not receive the user')
    say(
      'Called list_notes (needs mcp:read): allowed',
      `result: ${textOf(listed)}`,
      `the tool handler received authInfo: clientId=${seenBy.clientId}, scopes=[${seenBy.scopes.join(' ')}], ` +
        `user=${seenBy.extra.user.id} (sub ${seenBy.extra.user.externalId})`,
    )

    // 3. A tool outside the token's scopes: HTTP 403 before the MCP server runs anything.
    let refusal
    try {
      await reader.client.callTool({
        name: 'add_note',
        arguments: { text: 'should not be written' },
      })
    } catch (err) {
      refusal = err
    }
    if (
      refusal === undefined ||
      reader.seen.status !== 403 ||
      !/error="insufficient_scope"/.test(reader.seen.challenge)
    ) {
      fail(
        `add_note with a read-only token was not refused with 403 insufficient_scope (${reader.seen.status})`,
      )
    }
    say(
      'Called add_note (needs mcp:write) with the read-only token: refused, HTTP 403',
      `WWW-Authenticate: ${reader.seen.challenge}`,
    )
    await reader.client.close()

    // 4. The same call with a token that carries mcp:write.
    const writer = await connected(mcpUrl, () =>
      mock.signToken({ sub: 'alice', scope: 'mcp:read mcp:write' }),
    )
    const added = await writer.client.callTool({
      name: 'add_note',
      arguments: { text: 'hello from the demo' },
    })
    if (added.isError) fail(`add_note failed: ${textOf(added)}`)
    say('Called add_note with scope "mcp:read mcp:write": allowed', `result: ${textOf(added)}`)
    await writer.client.close()

    // 5. A tampered token.
    const tampered = clientFor(mcpUrl, () => tamper(readToken()))
    let tamperError
    try {
      await tampered.client.connect(tampered.transport)
    } catch (err) {
      tamperError = err
    }
    if (tamperError === undefined || tampered.seen.status !== 401) {
      fail(`a tampered token was not refused with 401 (${tampered.seen.status})`)
    }
    say(
      'Connected with a tampered token (one signature character changed): refused, HTTP 401',
      `WWW-Authenticate: ${tampered.seen.challenge}`,
    )

    // 6. Key rotation through the signed webhook.
    const fetchesBefore = mock.jwksRequestCount
    const event = mock.rotateKeys()
    const delivery = await deliverWebhook(server.webhookUrl, event, { secret: mock.webhookSecret })
    if (delivery.status !== 200) fail(`the rotation webhook was answered ${delivery.status}`)
    const refetched = mock.jwksRequestCount - fetchesBefore
    say(
      `Rotated the signing key ${event.retiredKid} → ${event.newCurrentKid} and delivered the signed webhook`,
      `${server.webhookUrl} answered ${delivery.status} ${JSON.stringify(delivery.body)}`,
      `the server refetched the JWKS at once (${refetched} fetch)${serverLog.length ? `; server log: ${serverLog.at(-1)}` : ''}`,
    )

    // 7. The next call, signed with the new key.
    const fresh = () => mock.signToken({ sub: 'alice', scope: 'mcp:read' })
    const kid = JSON.parse(Buffer.from(fresh().split('.')[0], 'base64url').toString()).kid
    if (kid !== event.newCurrentKid) fail('the fresh token is not signed with the new key')
    const afterRotation = await connected(mcpUrl, fresh)
    const again = await afterRotation.client.callTool({ name: 'list_notes', arguments: {} })
    if (again.isError) fail(`list_notes after rotation failed: ${textOf(again)}`)
    const extraFetches = mock.jwksRequestCount - fetchesBefore - refetched
    say(
      `Called list_notes with a token signed by the new key ${kid}: allowed`,
      `result: ${textOf(again)}`,
      `JWKS fetches caused by this call: ${extraFetches} (the webhook had already brought the new key)`,
    )
    await afterRotation.client.close()

    // 8. Users were provisioned on first contact, once.
    const users = server.users.list()
    if (users.length !== 1) fail(`expected one provisioned user, found ${users.length}`)
    say(
      'First-contact provisioning: one local user for (ext_provider, sub)',
      `${users[0].id} = (${users[0].extProvider}, ${users[0].externalId}), notes: ${JSON.stringify(users[0].notes)}`,
    )
    console.log('\nDemo complete: every step behaved as expected.')
  } finally {
    await server.close()
  }
}

const deadline = setTimeout(() => {
  console.error('\nDemo FAILED: did not finish within 60 s')
  process.exit(1)
}, 60_000)
deadline.unref()

try {
  await demo()
} catch (err) {
  console.error(`\nDemo FAILED at step ${step + 1}: ${err.demoFailure ? err.message : err.stack}`)
  process.exitCode = 1
}
