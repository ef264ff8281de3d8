// What the adversarial catalogue's files share (tokens.test.ts, jwks.test.ts, webhook.test.ts): the
// fixed clock, the exact answer a row expects (`expectAnswer`), the token row context (`contextFor`),
// the app builders, and `catalogueSuite()`, the setup every catalogue describe registers.
import { expect } from 'chai'
import express5 from 'express'
import { type KeyObject } from 'node:crypto'
import { newEd25519KeyPair } from '../../lib/testing/ed25519-key.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import {
  AgentPressPartnerStrategy,
  createKeyRotationRouter,
  type PartnerTokenClaims,
} from 'passport-agentpress-partner'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { buildApp, finalhandlerPage, newPassport, type Stack } from '../support/stacks.js'
import { startCountingServer, type CountingServer } from '../support/servers.js'
import { crashWatch, quietErrors, type WireResponse } from '../support/wire.js'
import { SPEC_DESCRIPTIONS } from '../support/spec.js'
import type { Ed25519BackendName } from '../support/backends.js'

const express4 = createRequire(import.meta.url)('express4') as typeof express5

export const REALM = 'mcp'
export const PRM = 'https://mcp.example.com/.well-known/oauth-protected-resource'
export const NOW_MS = Date.UTC(2026, 10, 21, 12, 0, 0)
export const NOW = NOW_MS / 1000
export const clock = () => NOW_MS
// Intervals run on their own clock (§3). The token rows advance it by more than the kid-miss
// cooldown before each row, so every unknown kid is decided by its own refetch at once instead of
// being held for the next allowed one (which the JWKS-cache rows exercise).
let mono = 0
const monotonicClock = () => mono
/** Moves the monotonic clock of the token apps forward. */
export const advanceMonotonicClock = (ms: number) => {
  mono += ms
}

export const DESCRIPTION = SPEC_DESCRIPTIONS
export type TokenReason = keyof typeof DESCRIPTION
export type Expected =
  TokenReason | 'no_credentials' | 'invalid_request' | 'jwks_unavailable' | { user: string }

export const challengeOf = (params: string) =>
  `Bearer realm="${REALM}"${params ? `, ${params}` : ''}, resource_metadata="${PRM}"`

/** Status, WWW-Authenticate lines, Retry-After and body that `expected` must produce. */
export function wireOf(expected: Expected): {
  status: number
  challenges: string[]
  retryAfter?: string
  body: string
} {
  if (typeof expected === 'object') {
    return { status: 200, challenges: [], body: JSON.stringify({ user: { sub: expected.user } }) }
  }
  switch (expected) {
    case 'no_credentials':
      return { status: 401, challenges: [challengeOf('')], body: 'Unauthorized' }
    case 'invalid_request':
      return {
        status: 400,
        challenges: [
          challengeOf(
            'error="invalid_request", error_description="Malformed authorization header"',
          ),
        ],
        body: finalhandlerPage('AgentPressHttpError: Malformed authorization header', 400),
      }
    case 'jwks_unavailable':
      return {
        status: 503,
        challenges: [],
        retryAfter: '5',
        body: finalhandlerPage('JwksUnavailableError: Signing keys unavailable', 503),
      }
    default:
      return {
        status: 401,
        challenges: [
          challengeOf(`error="invalid_token", error_description="${DESCRIPTION[expected]}"`),
        ],
        // Passport's own answer to a failure: res.end(STATUS_CODES[401]).
        body: 'Unauthorized',
      }
  }
}

/** Asserts the exact answer, and that nothing the client sent is reflected. */
export function expectAnswer(
  res: WireResponse,
  expected: Expected,
  sent: readonly string[],
  kid?: unknown,
): void {
  const want = wireOf(expected)
  expect(res.status, res.text).to.equal(want.status)
  expect(res.all('www-authenticate')).to.deep.equal(want.challenges)
  expect(res.get('retry-after')).to.equal(want.retryAfter)
  expect(res.text).to.equal(want.body)
  if (want.status === 200) return
  const whole = `${res.lines.map(([n, v]) => `${n}: ${v}`).join('\n')}\n\n${res.text}`
  for (const line of sent) {
    const value = line.replace(/^\S+\s+/, '')
    if (value.length >= 8) expect(whole).to.not.include(value)
    for (const segment of value.split('.'))
      if (segment.length >= 8) expect(whole).to.not.include(segment)
  }
  if (typeof kid === 'string' && kid.length >= 4) expect(whole, 'kid reflected').to.not.include(kid)
}

export interface Ctx {
  mock: MockAgentPress
  /** Private key of the mock's current kid. */
  key: KeyObject
  kid: string
  /** An attacker's own Ed25519 key pair, published nowhere. */
  attacker: { privateKey: KeyObject; publicKey: KeyObject; jwk: Record<string, string> }
  trapUrl: string
  header(extra?: Record<string, unknown>): Record<string, unknown>
  claims(extra?: Record<string, unknown>): Record<string, unknown>
  /** A token signed with the current key; members given as undefined are removed. */
  tok(claims?: Record<string, unknown>, header?: Record<string, unknown>): string
}

// ── Shared fixtures ──────────────────────────────────────────────────────────────────────────
export function contextFor(mock: MockAgentPress, trap: CountingServer): Ctx {
  const attackerPair = newEd25519KeyPair()
  const attackerJwk = attackerPair.publicKey.export({ format: 'jwk' }) as Record<string, string>
  const current = () => mock.keys.at(-1)!
  const ctx: Ctx = {
    mock,
    get key() {
      return current().privateKey
    },
    get kid() {
      return current().kid
    },
    attacker: {
      ...attackerPair,
      jwk: { ...attackerJwk, kid: 'attacker-kid', use: 'sig', alg: 'EdDSA' },
    },
    trapUrl: trap.url,
    header: (extra = {}) => ({ alg: 'EdDSA', typ: 'JWT', kid: current().kid, ...extra }),
    claims: (extra = {}) => {
      const base: Record<string, unknown> = {
        iss: mock.issuer,
        aud: mock.audience,
        ext_provider: mock.extProvider,
        sub: 'user-123',
        jti: 'jti-0001',
        scope: 'mcp:read mcp:write',
        iat: NOW,
        exp: NOW + 60,
      }
      for (const [k, v] of Object.entries(extra)) {
        if (v === undefined) delete base[k]
        else base[k] = v
      }
      return base
    },
    tok: (claims = {}, header = {}) => mock.signToken(claims, header),
  }
  return ctx
}

export const echoUser = (req: IncomingMessage, res: ServerResponse) => {
  res.statusCode = 200
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify({ user: (req as IncomingMessage & { user?: unknown }).user }))
}

// ── App builders ─────────────────────────────────────────────────────────────────────────────
export function tokenApp(
  stack: Stack,
  mock: MockAgentPress,
  ed25519: Ed25519BackendName = 'node:crypto',
) {
  return tokenAppFor(stack, { ...mock.partnerMcp, clock, monotonicClock, ed25519 })
}

export function tokenAppFor(
  stack: Stack,
  partnerMcp: ConstructorParameters<typeof AgentPressPartnerStrategy>[0]['partnerMcp'] & object,
) {
  const passport = newPassport()
  passport.use(
    new AgentPressPartnerStrategy(
      { partnerMcp: partnerMcp as never, realm: REALM, resourceMetadataUrl: PRM },
      async (claims: PartnerTokenClaims) => ({ sub: claims.sub }),
    ),
  )
  return buildApp(stack, [
    {
      path: '/mcp',
      handlers: [passport.authenticate('agentpress-partner', { session: false }), echoUser],
    },
  ])
}

export function hookApp(stack: Stack, hooks: MockAgentPress, secret: string) {
  const passport = newPassport()
  const strategy = new AgentPressPartnerStrategy(
    { partnerMcp: { ...hooks.partnerMcp, clock } },
    async () => ({}),
  )
  passport.use(strategy)
  const router = createKeyRotationRouter({
    webhookSecret: secret,
    strategy,
    clock,
    bodyTimeoutMs: 400,
  })
  // Mounted with use(path, router), as the README says: the framework strips the mount path.
  if (stack === 'connect')
    return buildApp('connect', [{ path: '/webhooks/agentpress/key-rotation', handlers: [router] }])
  const app = stack === 'express4' ? express4() : express5()
  app.use('/webhooks/agentpress/key-rotation', router)
  return app
}

/** What `catalogueSuite()` hands the describe that called it; live once its `before` has run. */
export interface CatalogueSuite {
  /** The mock AgentPress the token rows are signed by. */
  readonly mock: MockAgentPress
  /** A server no row may ever make anything fetch. */
  readonly trap: CountingServer
  /** console.error lines finalhandler wrote (5xx rows). */
  readonly errors: { readonly lines: string[] }
}

/**
 * Registers the catalogue's setup in the calling describe: a mock AgentPress and a trap server
 * (before/after), a crash watch (no unhandled rejection or uncaught exception after any test) and
 * silenced error logs (finalhandler logs the deliberate 500/503 rows with console.error).
 */
export function catalogueSuite(): CatalogueSuite {
  const watch = crashWatch()
  const errors = quietErrors()
  let mock: MockAgentPress | undefined
  let trap: CountingServer | undefined

  before(async () => {
    mock = await createMockAgentPress({ orgSlug: 'acme', clock })
    trap = await startCountingServer()
  })
  after(async () => {
    await mock?.close()
    await trap?.close()
  })
  afterEach(() => {
    expect(watch.crashes, 'no unhandled rejection or uncaught exception').to.deep.equal([])
  })
  return {
    get mock() {
      return mock!
    },
    get trap() {
      return trap!
    },
    errors,
  }
}
