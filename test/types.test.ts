// Mistakes the types catch: each `@ts-expect-error` below fails `npm test`'s typecheck if the
// line it covers ever compiles. The same calls then run, to show what a JavaScript caller gets
// (the run-time checks stay).
import { expect } from 'chai'
import type { Request } from 'express'
import type { IncomingMessage } from 'node:http'
import {
  AgentPressPartnerStrategy,
  createKeyRotationRouter,
  requireScopes,
  type PartnerTokenClaims,
  type VerifyFunction,
} from 'passport-agentpress-partner'
import { type VerifyDone } from '../dist/http/verify-callback.js'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'

interface AppUser {
  id: number
  externalId: string
}

describe('types that catch mistakes', () => {
  let mock: MockAgentPress
  before(async () => {
    mock = await createMockAgentPress()
  })
  after(() => mock.close())

  it('requireScopes() with no scope: a compile error, and a TypeError at run time', () => {
    // @ts-expect-error: at least one scope
    const none = () => requireScopes()
    expect(none).to.throw(TypeError, 'requireScopes() scopes must name at least one scope')
    expect(requireScopes('mcp:read')).to.be.a('function')
  })

  it('passReqToCallback: true with a two-argument verify is a compile error', () => {
    const partnerMcp = mock.partnerMcp
    const twoArguments: VerifyFunction = (claims, done) => done(null, { sub: claims.sub })
    // @ts-expect-error: the request would arrive as `claims`
    new AgentPressPartnerStrategy({ partnerMcp, passReqToCallback: true }, twoArguments)
    // @ts-expect-error: written inline, `claims` is the request and `done` the claims
    new AgentPressPartnerStrategy({ partnerMcp, passReqToCallback: true }, (c, d) => d(null, c))
    // And the reverse: a three-argument verify without passReqToCallback.
    const threeArguments = (_req: IncomingMessage, _c: PartnerTokenClaims, done: VerifyDone) =>
      done(null, {})
    // @ts-expect-error: the claims would arrive as `req`
    new AgentPressPartnerStrategy({ partnerMcp }, threeArguments)
    const right = new AgentPressPartnerStrategy(
      { partnerMcp, passReqToCallback: true },
      threeArguments,
    )
    expect(right.name).to.equal('agentpress-partner')
  })

  it('a verify returning something other than the user type is a compile error', () => {
    const partnerMcp = mock.partnerMcp
    const good = new AgentPressPartnerStrategy<AppUser>({ partnerMcp }, async (claims) => ({
      id: 1,
      externalId: claims.sub,
    }))
    // @ts-expect-error: id must be a number
    new AgentPressPartnerStrategy<AppUser>({ partnerMcp }, async (c) => ({
      id: c.sub,
      externalId: c.sub,
    }))
    // @ts-expect-error: a done-style verify is held to the same type
    new AgentPressPartnerStrategy<AppUser>({ partnerMcp }, (claims, done) => done(null, claims.sub))
    // @ts-expect-error: returning a value that is neither a user, a refusal nor a promise of one
    new AgentPressPartnerStrategy<AppUser>({ partnerMcp }, () => 'alice')
    // Refusals and done-style callbacks stay fine.
    new AgentPressPartnerStrategy<AppUser>({ partnerMcp }, async () => null)
    new AgentPressPartnerStrategy<AppUser>({ partnerMcp }, (_claims, done) => {
      done(null, false)
    })
    expect(good.verifiers).to.have.length(1)
  })

  it('with passReqToCallback, req is the framework’s request, not IncomingMessage', () => {
    const partnerMcp = mock.partnerMcp
    // This program imports passport-agentpress-partner/express (test/express.test.ts): Express's.
    new AgentPressPartnerStrategy({ partnerMcp, passReqToCallback: true }, async (req, claims) => {
      const host: string | undefined = req.get('host')
      // @ts-expect-error: typed, not any
      const wrong: number = req.get('host')
      return { sub: claims.sub, host, wrong }
    })
    // Or whatever the annotation says, as long as it is a request.
    type Tenanted = IncomingMessage & { tenant: string }
    new AgentPressPartnerStrategy(
      { partnerMcp, passReqToCallback: true },
      async (req: Tenanted, claims) => `${req.tenant}:${claims.sub}`,
    )
    const notARequest = async (req: { tenant: string }, claims: PartnerTokenClaims) =>
      `${req.tenant}:${claims.sub}`
    // @ts-expect-error: not a request
    new AgentPressPartnerStrategy({ partnerMcp, passReqToCallback: true }, notARequest)
    const explicit = (req: Request) => req.path
    expect(explicit).to.be.a('function')
  })

  it('createKeyRotationRouter with both or neither of strategy and verifiers: compile errors and TypeErrors', () => {
    const strategy = new AgentPressPartnerStrategy(
      { partnerMcp: mock.partnerMcp },
      async () => ({}),
    )
    const webhookSecret = mock.webhookSecret
    const neither = () =>
      // @ts-expect-error: one of the two is required
      createKeyRotationRouter({ webhookSecret })
    const both = () =>
      // @ts-expect-error: not both
      createKeyRotationRouter({ webhookSecret, strategy, verifiers: strategy.verifiers })
    expect(neither).to.throw(TypeError, 'strategy or verifiers is required')
    expect(both).to.throw(TypeError, 'pass either strategy or verifiers, not both')
    expect(createKeyRotationRouter({ webhookSecret, strategy })).to.be.a('function')
    expect(createKeyRotationRouter({ webhookSecret, verifiers: strategy.verifiers })).to.be.a(
      'function',
    )
  })
})
