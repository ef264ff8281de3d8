// The diagnostics channels: exact messages for every decision, fetch, delivery and revocation, seen
// by real subscribers while real requests go through a real Express 5 app with real Passport.
import { expect } from 'chai'
import { tracingChannel } from 'node:diagnostics_channel'
import express from 'express'
import {
  AUTH_ERRORS,
  AgentPressPartnerStrategy,
  MemoryReplayStore,
  MultiIssuerVerifier,
  PartnerTokenVerifier,
  createKeyRotationRouter,
} from 'passport-agentpress-partner'
import { DIAGNOSTICS_CHANNELS } from 'passport-agentpress-partner/diagnostics'
import {
  createMockAgentPress,
  deliverWebhook,
  type MockAgentPress,
} from 'passport-agentpress-partner/testing'
import { listen, send, type Listening } from '../../support/wire.js'
import { newPassport, passportJson } from '../../support/stacks.js'
import { recordChannels, withoutDuration, type Recorder } from '../../support/channels.js'
import { closedPort } from '../../support/servers.js'
import { flipChar, parts, payloadOf } from '../../support/tokens.js'

const AUDIENCE = 'http://127.0.0.1:3000/mcp'
const NOW = () => Math.floor(Date.now() / 1000)

describe('diagnostics channels', function () {
  this.timeout(20_000)
  let mock: MockAgentPress
  let down: MockAgentPress
  let server: Listening
  let recorder: Recorder
  // The pairs a replay-protected route has already seen.
  const usedPairs = new MemoryReplayStore()
  // Everything a message must never contain: tokens, signatures, kids, secrets.
  const secrets = new Set<string>()
  // Every message of every test, for the leak check at the end.
  const everything: unknown[] = []

  const token = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) => {
    const t = mock.signToken(claims, header)
    secrets.add(t)
    secrets.add(parts(t)[2])
    return t
  }

  before(async () => {
    mock = await createMockAgentPress({ audience: AUDIENCE })
    down = await createMockAgentPress({ audience: AUDIENCE })
    down.setJwksMode('error')
    secrets.add(mock.webhookSecret)
    const passport = newPassport()
    const verify = async (claims: { sub: string }) =>
      claims.sub === 'ghost' ? null : { id: claims.sub }
    passport.use(
      new AgentPressPartnerStrategy(
        { partnerMcp: mock.partnerMcp, realm: 'mcp', resourceMetadataUrl: false },
        verify,
      ),
    )
    passport.use(
      new AgentPressPartnerStrategy(
        {
          partnerMcp: mock.partnerMcp,
          realm: 'mcp',
          resourceMetadataUrl: false,
          requiredScopes: ['mcp:admin'],
          name: 'admin',
        },
        verify,
      ),
    )
    // Replay rejection on: a store already holding some pairs, and one that cannot answer.
    passport.use(
      new AgentPressPartnerStrategy(
        {
          partnerMcp: { ...mock.partnerMcp, replay: usedPairs },
          realm: 'mcp',
          resourceMetadataUrl: false,
          name: 'replay',
        },
        verify,
      ),
    )
    passport.use(
      new AgentPressPartnerStrategy(
        {
          partnerMcp: {
            ...mock.partnerMcp,
            replay: {
              claim() {
                throw new Error('replay store unreachable')
              },
            },
          },
          realm: 'mcp',
          name: 'replay-down',
        },
        verify,
      ),
    )
    passport.use(
      new AgentPressPartnerStrategy(
        { partnerMcp: down.partnerMcp, realm: 'mcp', resourceMetadataUrl: false, name: 'down' },
        verify,
      ),
    )
    passport.use(
      new AgentPressPartnerStrategy(
        { partnerMcp: mock.partnerMcp, realm: 'mcp', resourceMetadataUrl: false, name: 'boom' },
        async () => {
          throw new Error('user store down')
        },
      ),
    )
    const app = express()
    const ok: express.RequestHandler = (_req, res) => {
      res.json({ ok: true })
    }
    app.get('/mcp', passportJson(passport, { body: 'json' }), ok)
    app.get('/admin', passportJson(passport, { body: 'json', strategy: 'admin' }), ok)
    app.get('/down', passportJson(passport, { body: 'json', strategy: 'down' }), ok)
    app.get('/boom', passportJson(passport, { body: 'json', strategy: 'boom' }), ok)
    app.get('/replay', passportJson(passport, { body: 'json', strategy: 'replay' }), ok)
    app.get('/replay-down', passportJson(passport, { body: 'json', strategy: 'replay-down' }), ok)
    // The default error handler's page would carry the message: answer a bare 500 instead.
    app.use(((_err, _req, res, _next) => {
      res.status(500).json({ error: 'server_error' })
    }) as express.ErrorRequestHandler)
    server = await listen(app)
  })
  after(async () => {
    await server.close()
    await mock.close()
    await down.close()
  })
  beforeEach(() => {
    recorder = recordChannels()
  })
  afterEach(() => {
    recorder.stop()
    everything.push(...recorder.all)
  })

  const get = (path: string, authorization?: string | string[]) =>
    send(server.port, {
      method: 'GET',
      path,
      headers:
        authorization === undefined
          ? []
          : (Array.isArray(authorization) ? authorization : [authorization]).map(
              (value) => ['Authorization', value] as const,
            ),
    })

  describe('token and request decisions over HTTP', () => {
    const invalid = (description: string) =>
      `Bearer realm="mcp", error="invalid_token", error_description="${description}"`

    // [label, path, Authorization, status, WWW-Authenticate, body, token message, request message]
    type Row = readonly [
      string,
      string,
      () => string | string[] | undefined,
      number,
      string | undefined,
      Record<string, string>,
      Record<string, unknown> | undefined,
      Record<string, unknown>,
    ]
    const refused = (reason: string) => ({ outcome: 'refused', reason, issuer: mock.issuer })
    const row = (
      reason: string,
      description: string,
      authorization: () => string,
      tokenMessage: Record<string, unknown> | undefined = refused(reason),
    ): Row => [
      reason,
      '/mcp',
      authorization,
      401,
      invalid(description),
      { error: 'invalid_token', error_description: description },
      tokenMessage,
      { outcome: 'refused', reason, status: 401 },
    ]

    const rows = (): Row[] => [
      row('malformed', 'Malformed token', () => 'Bearer abc.def.ghi', {
        outcome: 'refused',
        reason: 'malformed',
        issuer: mock.issuer,
      }),
      row(
        'alg_not_allowed',
        'Algorithm not allowed',
        () => `Bearer ${token({}, { alg: 'HS256' })}`,
      ),
      row(
        'kid_missing_or_unknown',
        'Signing key not found',
        () => `Bearer ${token({}, { kid: 'ap-unknown' })}`,
      ),
      row('signature_invalid', 'Signature verification failed', () => {
        const [h, p, s] = parts(token())
        return `Bearer ${h}.${p}.${flipChar(s, 3)}`
      }),
      row(
        'issuer_mismatch',
        'Issuer does not match',
        () => `Bearer ${token({ iss: 'https://api.agent.press/orgs/other' })}`,
      ),
      row(
        'audience_mismatch',
        'Audience does not match',
        () => `Bearer ${token({ aud: 'https://elsewhere.example/mcp' })}`,
      ),
      row(
        'expired',
        'Token expired',
        () => `Bearer ${token({ iat: NOW() - 200, exp: NOW() - 140 })}`,
      ),
      row(
        'not_yet_valid',
        'Token not yet valid',
        () => `Bearer ${token({ iat: NOW() + 300, exp: NOW() + 360 })}`,
      ),
      row(
        'missing_claim',
        'Required claim missing or invalid',
        () => `Bearer ${token({ sub: undefined })}`,
      ),
      row(
        'ext_provider_mismatch',
        'ext_provider does not match',
        () => `Bearer ${token({ ext_provider: 'someone-else' })}`,
      ),
      [
        'no_credentials',
        '/mcp',
        () => undefined,
        401,
        'Bearer realm="mcp"',
        { error: 'no_credentials', error_description: 'No credentials' },
        undefined,
        { outcome: 'refused', reason: 'no_credentials', status: 401 },
      ],
      [
        'invalid_request',
        '/mcp',
        () => [`Bearer ${token()}`, `Bearer ${token()}`],
        400,
        'Bearer realm="mcp", error="invalid_request", error_description="Malformed authorization header"',
        { error: 'invalid_request', error_description: 'Malformed authorization header' },
        undefined,
        { outcome: 'refused', reason: 'invalid_request', status: 400 },
      ],
      [
        'insufficient_scope',
        '/admin',
        () => `Bearer ${token()}`,
        403,
        'Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:admin"',
        { error: 'insufficient_scope', error_description: 'Insufficient scope' },
        { outcome: 'accepted', reason: null, issuer: mock.issuer },
        { outcome: 'refused', reason: 'insufficient_scope', status: 403 },
      ],
      [
        'user_not_provisioned',
        '/mcp',
        () => `Bearer ${token({ sub: 'ghost' })}`,
        403,
        'Bearer realm="mcp", error="user_not_provisioned", error_description="User not provisioned"',
        { error: 'user_not_provisioned', error_description: 'User not provisioned' },
        { outcome: 'accepted', reason: null, issuer: mock.issuer },
        { outcome: 'refused', reason: 'user_not_provisioned', status: 403 },
      ],
      [
        'token_replayed',
        '/replay',
        () => {
          const t = token()
          usedPairs.claim(mock.issuer, payloadOf(t).jti as string, Date.now() + 120_000)
          return `Bearer ${t}`
        },
        401,
        invalid('Token already used'),
        { error: 'invalid_token', error_description: 'Token already used' },
        refused('token_replayed'),
        { outcome: 'refused', reason: 'token_replayed', status: 401 },
      ],
      [
        'replay_unavailable',
        '/replay-down',
        () => `Bearer ${token()}`,
        503,
        undefined,
        { error: 'replay_unavailable', error_description: 'Replay check unavailable' },
        { outcome: 'unavailable', reason: 'replay_unavailable', issuer: mock.issuer },
        { outcome: 'unavailable', reason: 'replay_unavailable', status: 503 },
      ],
      [
        'jwks_unavailable',
        '/down',
        () => {
          const t = down.signToken()
          secrets.add(t)
          return `Bearer ${t}`
        },
        503,
        undefined,
        { error: 'jwks_unavailable', error_description: 'Signing keys unavailable' },
        { outcome: 'unavailable', reason: 'jwks_unavailable', issuer: down.issuer },
        { outcome: 'unavailable', reason: 'jwks_unavailable', status: 503 },
      ],
    ]

    it('an accepted token: one token and one request message, exactly', async () => {
      const res = await get('/mcp', `Bearer ${token()}`)
      expect(res.status).to.equal(200)
      expect(res.text).to.equal('{"ok":true}')
      expect(recorder.of('tokenDecision').map(withoutDuration)).to.deep.equal([
        { outcome: 'accepted', reason: null, issuer: mock.issuer },
      ])
      expect(recorder.of('requestDecision')).to.deep.equal([
        { outcome: 'accepted', reason: null, status: null },
      ])
    })

    it('a server error (the verify callback throws): outcome error, status 500, no reason', async () => {
      const res = await get('/boom', `Bearer ${token()}`)
      expect(res.status).to.equal(500)
      expect(res.text).to.equal('{"error":"server_error"}')
      expect(recorder.of('tokenDecision').map(withoutDuration)).to.deep.equal([
        { outcome: 'accepted', reason: null, issuer: mock.issuer },
      ])
      expect(recorder.of('requestDecision')).to.deep.equal([
        { outcome: 'error', reason: null, status: 500 },
      ])
    })

    it('the rows cover every reason of the refusal table, once each', () => {
      expect(
        rows()
          .map(([label]) => label)
          .sort(),
      ).to.deep.equal(Object.keys(AUTH_ERRORS).sort())
    })

    for (const reason of Object.keys(AUTH_ERRORS)) {
      it(`${reason}: exact answer and exact messages`, async () => {
        const [, path, authorization, status, challenge, body, tokenMessage, requestMessage] =
          rows().find(([label]) => label === reason)!
        const res = await get(path, authorization())
        expect(res.status, res.text).to.equal(status)
        expect(res.all('www-authenticate')).to.deep.equal(
          challenge === undefined ? [] : [challenge],
        )
        if (status === 503) expect(res.get('retry-after')).to.equal('5')
        expect(JSON.parse(res.text)).to.deep.equal(body)
        expect(recorder.of('tokenDecision').map(withoutDuration)).to.deep.equal(
          tokenMessage === undefined ? [] : [tokenMessage],
        )
        expect(recorder.of('requestDecision')).to.deep.equal([requestMessage])
      })
    }
  })

  describe('JWKS fetches', () => {
    const startMessage = (v: PartnerTokenVerifier, forced: boolean) => ({
      issuer: v.issuer,
      url: v.jwksUrl,
      forced,
    })

    it('a success: start (forced) and end with the key count; state cold → fresh', async () => {
      const verifier = new PartnerTokenVerifier(mock.partnerMcp)
      await verifier.refreshJwks()
      expect(recorder.of('jwksFetchStart')).to.deep.equal([startMessage(verifier, true)])
      expect(recorder.of('jwksFetchEnd').map(withoutDuration)).to.deep.equal([
        {
          issuer: mock.issuer,
          url: mock.jwksUrl,
          outcome: 'success',
          reason: null,
          httpStatus: null,
          keyCount: 1,
        },
      ])
      expect(recorder.of('jwksState')).to.deep.equal([
        { issuer: mock.issuer, previous: 'cold', state: 'fresh' },
      ])
    })

    it('a fetch caused by a request is not forced', async () => {
      const verifier = new PartnerTokenVerifier(mock.partnerMcp)
      await verifier.verifyToken(token())
      expect(recorder.of('jwksFetchStart')).to.deep.equal([startMessage(verifier, false)])
    })

    const failures: ReadonlyArray<
      readonly [string, Parameters<MockAgentPress['setJwksMode']>[0], number | null]
    > = [
      ['http_status', 'error', 500],
      ['redirect', 'redirect', 302],
      ['too_large', 'oversized', null],
      ['invalid_json', 'garbage', null],
      ['invalid_jwks', 'keys_null', null],
      ['timeout', 'stall', null],
    ]
    for (const [reason, mode, httpStatus] of failures) {
      it(`a failure (${reason}): exact end message; state cold → unavailable`, async () => {
        const failing = await createMockAgentPress({ audience: AUDIENCE })
        try {
          failing.setJwksMode(mode)
          // A short deadline only where the deadline is the point: a loaded machine may take
          // longer than that to stream the first 64 KiB of the oversized body.
          const verifier = new PartnerTokenVerifier({
            ...failing.partnerMcp,
            jwksTimeoutMs: mode === 'stall' ? 300 : 5_000,
          })
          const error = await verifier.refreshJwks().then(
            () => undefined,
            (e: unknown) => e,
          )
          expect((error as { reason?: unknown }).reason).to.equal(reason)
          expect(recorder.of('jwksFetchStart')).to.deep.equal([startMessage(verifier, true)])
          expect(recorder.of('jwksFetchEnd').map(withoutDuration)).to.deep.equal([
            {
              issuer: failing.issuer,
              url: failing.jwksUrl,
              outcome: 'failure',
              reason,
              httpStatus,
              keyCount: null,
            },
          ])
          expect(recorder.of('jwksState')).to.deep.equal([
            { issuer: failing.issuer, previous: 'cold', state: 'unavailable' },
          ])
        } finally {
          await failing.close()
        }
      })
    }

    it('a failure (network): nothing listening', async () => {
      const port = await closedPort()
      const url = `http://127.0.0.1:${port}/orgs/x/.well-known/jwks.json`
      const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, jwksUrl: url })
      await verifier.refreshJwks().catch(() => {})
      expect(recorder.of('jwksFetchEnd').map(withoutDuration)).to.deep.equal([
        {
          issuer: mock.issuer,
          url,
          outcome: 'failure',
          reason: 'network',
          httpStatus: null,
          keyCount: null,
        },
      ])
    })

    it('fresh → unavailable is not announced while stale keys serve; a refetch announces nothing new', async () => {
      let now = Date.now()
      const verifier = new PartnerTokenVerifier({ ...mock.partnerMcp, clock: () => now })
      await verifier.refreshJwks()
      now += 3_600_000 // past max age: stale
      mock.setJwksMode('error')
      try {
        await verifier.refreshJwks().catch(() => {})
      } finally {
        mock.setJwksMode('ok')
      }
      await verifier.refreshJwks()
      expect(recorder.of('jwksState')).to.deep.equal([
        { issuer: mock.issuer, previous: 'cold', state: 'fresh' },
        { issuer: mock.issuer, previous: 'fresh', state: 'stale' },
        { issuer: mock.issuer, previous: 'stale', state: 'fresh' },
      ])
    })
  })

  describe('webhook deliveries and revocations', () => {
    let hook: Listening
    let verifier: PartnerTokenVerifier
    let rotating: MockAgentPress

    before(async () => {
      rotating = await createMockAgentPress({ audience: AUDIENCE })
      secrets.add(rotating.webhookSecret)
      verifier = new PartnerTokenVerifier(rotating.partnerMcp)
      await verifier.refreshJwks()
      const app = express()
      app.use(
        '/webhooks/agentpress/key-rotation',
        createKeyRotationRouter({ webhookSecret: rotating.webhookSecret, verifiers: [verifier] }),
      )
      hook = await listen(app)
    })
    after(async () => {
      await hook.close()
      await rotating.close()
    })

    const deliver = async (event: Record<string, unknown>, secret = rotating.webhookSecret) => {
      const signed = rotating.signWebhook(event)
      for (const value of Object.values(signed.headers)) secrets.add(value)
      return deliverWebhook(`${hook.url}/webhooks/agentpress/key-rotation`, event, { secret })
    }

    it('accepted, then duplicate (same id), with issuer, emergency and id', async () => {
      const event = rotating.rotateKeys()
      secrets.add(event.retiredKid)
      secrets.add(event.newCurrentKid)
      expect((await deliver({ ...event })).body).to.deep.equal({ received: true })
      expect((await deliver({ ...event })).body).to.deep.equal({ received: true, duplicate: true })
      const base = {
        status: 200,
        issuer: rotating.issuer,
        emergency: false,
        eventId: event.id,
        secretIndex: 0,
        secretLabel: null,
      }
      expect(recorder.of('webhookDelivery')).to.deep.equal([
        { outcome: 'accepted', reason: null, ...base },
        { outcome: 'duplicate', reason: null, ...base },
      ])
      expect(recorder.of('jwksRevocation')).to.deep.equal([])
    })

    it('ignored: an authentic event for an issuer nobody trusts', async () => {
      const event = { ...rotating.rotateKeys(), issuer: 'https://api.agent.press/orgs/nobody' }
      expect((await deliver(event)).body).to.deep.equal({
        received: true,
        ignored: 'unknown_issuer',
      })
      expect(recorder.of('webhookDelivery')).to.deep.equal([
        {
          outcome: 'ignored',
          reason: 'unknown_issuer',
          status: 200,
          issuer: 'https://api.agent.press/orgs/nobody',
          emergency: false,
          eventId: event.id,
          secretIndex: 0,
          secretLabel: null,
        },
      ])
    })

    it('refused: signed with a wrong secret → 401 signature_mismatch, nothing of the event', async () => {
      const wrong = 'whsec_thisisnottherightsecret0'
      secrets.add(wrong)
      const result = await deliver({ ...rotating.rotateKeys({ emergency: true }) }, wrong)
      expect(result.status).to.equal(401)
      expect(result.body).to.deep.equal({
        error: 'signature_mismatch',
        error_description: 'Signature does not match',
      })
      expect(recorder.of('webhookDelivery')).to.deep.equal([
        {
          outcome: 'refused',
          reason: 'signature_mismatch',
          status: 401,
          issuer: null,
          emergency: null,
          eventId: null,
          secretIndex: null,
          secretLabel: null,
        },
      ])
      expect(recorder.of('jwksRevocation')).to.deep.equal([])
    })

    it('an emergency rotation: one revocation (no kid), then accepted with emergency: true', async () => {
      const event = rotating.rotateKeys({ emergency: true })
      secrets.add(event.retiredKid)
      expect((await deliver({ ...event })).status).to.equal(200)
      expect(recorder.of('jwksRevocation')).to.deep.equal([
        { issuer: rotating.issuer, revokedCount: 1 },
      ])
      expect(recorder.of('webhookDelivery')).to.deep.equal([
        {
          outcome: 'accepted',
          reason: null,
          status: 200,
          issuer: rotating.issuer,
          emergency: true,
          eventId: event.id,
          secretIndex: 0,
          secretLabel: null,
        },
      ])
      // Revocation is announced before the refresh starts (the old key is refused at once).
      const order = recorder.all.map(([key]) => key).filter((k) => k !== 'jwksState')
      expect(order).to.deep.equal([
        'jwksRevocation',
        'jwksFetchStart',
        'jwksFetchEnd',
        'webhookDelivery',
      ])
    })

    it('unavailable: the refresh fails → 503', async () => {
      rotating.setJwksMode('error')
      try {
        const event = rotating.rotateKeys()
        const result = await deliver({ ...event })
        expect(result.status).to.equal(503)
        expect(recorder.of('webhookDelivery')).to.deep.equal([
          {
            outcome: 'unavailable',
            reason: 'jwks_unavailable',
            status: 503,
            issuer: rotating.issuer,
            emergency: false,
            eventId: event.id,
            secretIndex: 0,
            secretLabel: null,
          },
        ])
      } finally {
        rotating.setJwksMode('ok')
      }
    })
  })

  describe('the cached-key hot path', () => {
    it('stays synchronous with and without a subscriber, and publishes only when subscribed', async () => {
      recorder.stop()
      const verifier = new PartnerTokenVerifier(mock.partnerMcp)
      await verifier.refreshJwks()
      const quiet = recordChannels()
      quiet.stop() // subscribed and unsubscribed again: nobody listens now
      const unobserved = verifier.verifyNow(token({ sub: 'quiet' }))
      expect(unobserved).to.not.be.instanceOf(Promise)
      expect(quiet.all).to.deep.equal([])
      recorder = recordChannels()
      const observed = verifier.verifyNow(token({ sub: 'heard' }))
      expect(observed).to.not.be.instanceOf(Promise)
      expect((observed as { sub: string }).sub).to.equal('heard')
      expect(recorder.of('tokenDecision').map(withoutDuration)).to.deep.equal([
        { outcome: 'accepted', reason: null, issuer: mock.issuer },
      ])
      // A refusal on the synchronous path is thrown at once, and reported.
      expect(() => verifier.verifyNow(token({ aud: 'https://x.example/' })))
        .to.throw()
        .with.property('reason', 'audience_mismatch')
      expect(recorder.of('tokenDecision').map(withoutDuration)[1]).to.deep.equal({
        outcome: 'refused',
        reason: 'audience_mismatch',
        issuer: mock.issuer,
      })
    })
  })

  describe('several issuers (MultiIssuerVerifier)', () => {
    it('a token for a listed issuer is reported once, by its verifier; an unlisted one with issuer null', async () => {
      const verifier = new MultiIssuerVerifier([
        new PartnerTokenVerifier(mock.partnerMcp),
        new PartnerTokenVerifier(down.partnerMcp),
      ])
      expect((await verifier.verifyToken(token({ sub: 'multi' }))).sub).to.equal('multi')
      const unlisted = await verifier
        .verifyToken(token({ iss: 'https://api.agent.press/orgs/unlisted' }))
        .catch((e: { reason: string }) => e.reason)
      expect(unlisted).to.equal('issuer_mismatch')
      const garbage = await verifier.verifyToken('x').catch((e: { reason: string }) => e.reason)
      expect(garbage).to.equal('malformed')
      expect(recorder.of('tokenDecision').map(withoutDuration)).to.deep.equal([
        { outcome: 'accepted', reason: null, issuer: mock.issuer },
        { outcome: 'refused', reason: 'issuer_mismatch', issuer: null },
        { outcome: 'refused', reason: 'malformed', issuer: null },
      ])
    })

    it('a foreign verifier behind it is reported under its configured issuer', async () => {
      const foreign = {
        issuer: 'https://foreign.example/orgs/f',
        verifyToken: async () => {
          throw new Error('foreign failure')
        },
      }
      const verifier = new MultiIssuerVerifier([new PartnerTokenVerifier(mock.partnerMcp), foreign])
      const result = await verifier
        .verifyToken(token({ iss: foreign.issuer }))
        .catch((e: Error) => e.message)
      expect(result).to.equal('foreign failure')
      expect(recorder.of('tokenDecision').map(withoutDuration)).to.deep.equal([
        { outcome: 'error', reason: null, issuer: foreign.issuer },
      ])
    })
  })

  describe('the verifyToken tracing channel', () => {
    it('start/asyncEnd with the issuer; a refusal carries its error; never the claims', async () => {
      const trace = tracingChannel(DIAGNOSTICS_CHANNELS.tokenVerifyTrace)
      const seen: Array<[string, Record<string, unknown>]> = []
      const handlers = {
        start: (c: unknown) => seen.push(['start', { ...(c as object) }]),
        end: (c: unknown) => seen.push(['end', { ...(c as object) }]),
        asyncStart: (c: unknown) => seen.push(['asyncStart', { ...(c as object) }]),
        asyncEnd: (c: unknown) => seen.push(['asyncEnd', { ...(c as object) }]),
        error: (c: unknown) => seen.push(['error', { ...(c as object) }]),
      }
      trace.subscribe(handlers)
      try {
        const verifier = new PartnerTokenVerifier(mock.partnerMcp)
        const claims = await verifier.verifyToken(token({ sub: 'traced' }))
        expect(claims.sub).to.equal('traced')
        const refusal = await verifier
          .verifyToken(token({ aud: 'https://x.example/' }))
          .catch((e) => e)
        expect(refusal.reason).to.equal('audience_mismatch')
        everything.push(...seen)
        const kinds = seen.map(([kind]) => kind)
        expect(kinds).to.deep.equal([
          'start',
          'end',
          'asyncStart',
          'asyncEnd',
          'start',
          'end',
          'error',
          'asyncStart',
          'asyncEnd',
        ])
        for (const [, context] of seen) expect(context.issuer).to.equal(mock.issuer)
        expect(seen.every(([, c]) => c.result === undefined)).to.equal(true)
        expect(seen[6]![1].error).to.equal(refusal)
      } finally {
        trace.unsubscribe(handlers)
      }
    })
  })

  // A suite of its own so that it runs last (mocha runs a suite's own tests before its children).
  describe('the payload policy', () => {
    it('no message ever held a token, a signature, a kid, a webhook secret or signature', () => {
      expect(everything.length).to.be.greaterThan(40)
      const text = JSON.stringify(everything, (_key, value: unknown) =>
        value instanceof Error ? { name: value.name, message: value.message } : value,
      )
      for (const kid of [...mock.keys, ...down.keys].map((k) => k.kid)) secrets.add(kid)
      expect(secrets.size).to.be.greaterThan(30)
      for (const secret of secrets) expect(text.includes(secret), secret).to.equal(false)
      for (const part of ['eyJ', 'sha256=', 'whsec_'])
        expect(text.includes(part), part).to.equal(false)
    })
  })
})
