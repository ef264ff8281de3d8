// The HTTP scenarios: one Express 5 app each, one GET /mcp route answering "ok" once the request is
// authenticated. Every verifying scenario checks the same things a partner needs (EdDSA only, the
// issuer, the audience, exp/iat, ext_provider) against the same loopback JWKS.
import { verify as cryptoVerify } from 'node:crypto'
import { AUDIENCE, EXT_PROVIDER, publicKeyObject } from '../lib/common.mjs'

/** Requests answered (ok or refused) so far: server.mjs divides its CPU time by it. */
export const counter = { answered: 0 }

// The final handler of every route.
const ok = (req, res) => {
  counter.answered++
  res.send('ok')
}

function bearer(req) {
  const header = req.headers.authorization
  if (typeof header !== 'string' || header.length < 8) return undefined
  if (header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined
  return header.slice(7)
}

function unauthorized(res) {
  counter.answered++
  res.status(401).set('WWW-Authenticate', 'Bearer error="invalid_token"').end()
}

// The strategy of `ours` with the libsodium backend; a missing sodium-native is the construction
// TypeError, which makes the scenario "not measured" with that message.
function libsodiumStrategy(pkg, cfg) {
  return new pkg.AgentPressPartnerStrategy(
    {
      partnerMcp: {
        issuer: cfg.issuer,
        audience: AUDIENCE,
        expectedExtProvider: EXT_PROVIDER,
        jwksUrl: cfg.jwksUrl,
        ed25519: 'libsodium',
      },
    },
    (claims, done) => done(null, { id: claims.sub }),
  )
}

function directRoute(app, cfg, pkg) {
  const strategy = new pkg.AgentPressPartnerStrategy(
    {
      partnerMcp: {
        issuer: cfg.issuer,
        audience: AUDIENCE,
        expectedExtProvider: EXT_PROVIDER,
        jwksUrl: cfg.jwksUrl,
      },
    },
    (claims, done) => done(null, { id: claims.sub }),
  )
  app.get('/mcp', pkg.authenticatePartner(strategy), ok)
}

// What our adapters hang on a successful request, built the thinnest way: Passport's `req.user` and
// `req.authInfo`, and the MCP SDK's `req.auth` (bench/README.md, "same request properties"). On
// Express 5 each property added to a request costs ~10–15 µs CPU (every request has a hidden class
// of its own after Express re-parents it), so baselines that set fewer properties measure Express,
// not the adapter.
function contractObjects(token, claims) {
  const scopes = claims.scope === '' ? [] : claims.scope.split(' ')
  const user = { id: claims.sub }
  return {
    user,
    authInfo: { claims, scopes, issuer: claims.iss },
    auth: {
      token,
      clientId: claims.ext_provider,
      scopes,
      expiresAt: claims.exp,
      extra: { claims, user },
    },
  }
}

// The verifier of the thin baselines: our core alone, configured like every other scenario.
async function coreVerifier(cfg) {
  const pkg = await import('passport-agentpress-partner').catch(() => ({}))
  if (typeof pkg.PartnerTokenVerifier !== 'function')
    throw new Error('PartnerTokenVerifier not built')
  return new pkg.PartnerTokenVerifier({
    issuer: cfg.issuer,
    audience: AUDIENCE,
    expectedExtProvider: EXT_PROVIDER,
    jwksUrl: cfg.jwksUrl,
  })
}

// The thinnest Passport strategy over the verifier; `sameProperties`: it also hangs what ours
// hangs on the request (contractObjects).
async function thinPassportRoute(app, cfg, sameProperties) {
  const verifier = await coreVerifier(cfg)
  const { Passport, Strategy } = await import('passport')
  class ThinStrategy extends Strategy {
    name = 'thin'
    authenticate(req) {
      const token = bearer(req)
      if (token === undefined) return this.fail('Bearer')
      verifier.verifyToken(token).then(
        (claims) => {
          if (!sameProperties) return this.success({ id: claims.sub })
          const { user, authInfo, auth } = contractObjects(token, claims)
          req.auth = auth
          this.success(user, authInfo)
        },
        () => this.fail('Bearer'),
      )
    }
  }
  const passport = new Passport()
  passport.use(new ThinStrategy())
  app.get('/mcp', passport.authenticate('thin', { session: false }), ok)
}

// The thinnest Express middleware over the verifier (`req.auth = claims`); `sameProperties`: it
// sets `req.auth`, `req.user` and `req.authInfo` as ours does.
async function thinMiddlewareRoute(app, cfg, sameProperties) {
  const verifier = await coreVerifier(cfg)
  const authenticate = (req, res, next) => {
    const token = bearer(req)
    if (token === undefined) return unauthorized(res)
    verifier.verifyToken(token).then(
      (claims) => {
        if (!sameProperties) {
          req.auth = claims
          return next()
        }
        const { user, authInfo, auth } = contractObjects(token, claims)
        req.auth = auth
        req.user = user
        req.authInfo = authInfo
        next()
      },
      () => unauthorized(res),
    )
  }
  app.get('/mcp', authenticate, ok)
}

// Collects the handlers a scenario mounts on GET /mcp, to mount them behind another middleware.
function collectedRoute() {
  const routes = { handlers: [], get: (path, ...handlers) => routes.handlers.push(...handlers) }
  return routes
}

/**
 * Each entry: `{ title, setup(app, cfg) }`. `setup` mounts the route, or throws an Error whose
 * message says why the scenario cannot run here (it is then reported, not measured).
 */
export const scenarios = {
  hello: {
    title: 'Express hello (no auth)',
    verifies: false,
    async setup(app) {
      app.get('/mcp', ok)
    },
  },

  raw: {
    title: 'Express + raw crypto.verify (floor)',
    verifies: true,
    async setup(app, cfg) {
      // The least any verifying server pays: find the signature, one Ed25519 verify on a cached
      // KeyObject. No JSON, no claims.
      const key = publicKeyObject(cfg.publicJwk)
      app.get(
        '/mcp',
        (req, res, next) => {
          const token = bearer(req)
          const dot = token === undefined ? -1 : token.lastIndexOf('.')
          if (dot < 0) return unauthorized(res)
          const input = Buffer.from(token.slice(0, dot), 'latin1')
          const sig = Buffer.from(token.slice(dot + 1), 'base64url')
          if (!cryptoVerify(null, input, key, sig)) return unauthorized(res)
          next()
        },
        ok,
      )
    },
  },

  ours: {
    title: 'Express + AgentPressPartnerStrategy (passport.authenticate)',
    verifies: true,
    ours: true,
    async setup(app, cfg) {
      const pkg = await import('passport-agentpress-partner').catch((error) => {
        throw new Error(`passport-agentpress-partner not built: ${error.message}`)
      })
      const Strategy = pkg.AgentPressPartnerStrategy
      const { Passport } = await import('passport')
      const passport = new Passport()
      passport.use(
        new Strategy(
          {
            partnerMcp: {
              issuer: cfg.issuer,
              audience: AUDIENCE,
              expectedExtProvider: EXT_PROVIDER,
              jwksUrl: cfg.jwksUrl,
            },
          },
          (claims, done) => done(null, { id: claims.sub }),
        ),
      )
      app.get('/mcp', passport.authenticate('agentpress-partner', { session: false }), ok)
    },
  },

  'ours-redis-replay': {
    title: 'Express + AgentPressPartnerStrategy (passport.authenticate) + Redis replay rejection',
    verifies: true,
    ours: true,
    // Compared with `ours` in the same round; left out of the JWKS phase (its bursts reuse tokens).
    replay: true,
    async setup(app, cfg) {
      if (cfg.redisUrl === undefined) throw new Error(cfg.redisUnavailable ?? 'no redis-server')
      const pkg = await import('passport-agentpress-partner')
      const { createRedisFleet } = await import('passport-agentpress-partner/redis')
      // Every request: one SET NX PX on a loopback Redis, after every other check.
      const fleet = createRedisFleet({ url: cfg.redisUrl, prefix: `bench-${process.pid}` })
      await fleet.start()
      const { Passport } = await import('passport')
      const passport = new Passport()
      passport.use(
        new pkg.AgentPressPartnerStrategy(
          {
            partnerMcp: {
              issuer: cfg.issuer,
              audience: AUDIENCE,
              expectedExtProvider: EXT_PROVIDER,
              jwksUrl: cfg.jwksUrl,
              replay: fleet,
            },
          },
          (claims, done) => done(null, { id: claims.sub }),
        ),
      )
      app.get('/mcp', passport.authenticate('agentpress-partner', { session: false }), ok)
    },
  },

  'ours-direct': {
    title: 'Express + AgentPressPartnerStrategy via authenticatePartner(strategy) (no Passport)',
    verifies: true,
    ours: true,
    async setup(app, cfg) {
      directRoute(app, cfg, await import('passport-agentpress-partner'))
    },
  },

  'ours-direct-no-events': {
    title: 'diagnostic: ours-direct on a copy of dist/ whose diagnostics emitters return at once',
    verifies: true,
    ours: true,
    diagnostic: true,
    // Compared with `ours-direct`: the difference is what events cost with no subscriber.
    noEvents: true,
    async setup(app, cfg) {
      if (cfg.noEventsEntry === undefined)
        throw new Error(cfg.noEventsUnavailable ?? 'no-events build missing')
      const { pathToFileURL } = await import('node:url')
      const mod = await import(pathToFileURL(cfg.noEventsEntry).href)
      directRoute(app, cfg, mod.default ?? mod)
    },
  },

  // The opt-in libsodium backend (docs/ed25519-backends.md): `ours` and `ours-direct` with
  // `ed25519: 'libsodium'`; reported as not measured when sodium-native is not installed.
  'ours-libsodium': {
    title: "Express + AgentPressPartnerStrategy (passport.authenticate), ed25519: 'libsodium'",
    verifies: true,
    ours: true,
    async setup(app, cfg) {
      const pkg = await import('passport-agentpress-partner')
      const { Passport } = await import('passport')
      const passport = new Passport()
      passport.use(libsodiumStrategy(pkg, cfg))
      app.get('/mcp', passport.authenticate('agentpress-partner', { session: false }), ok)
    },
  },

  'ours-direct-libsodium': {
    title: "Express + authenticatePartner(strategy) (no Passport), ed25519: 'libsodium'",
    verifies: true,
    ours: true,
    async setup(app, cfg) {
      const pkg = await import('passport-agentpress-partner')
      app.get('/mcp', pkg.authenticatePartner(libsodiumStrategy(pkg, cfg)), ok)
    },
  },

  'ours-events': {
    title: 'diagnostic: ours (passport.authenticate) with a no-op subscriber on every channel',
    verifies: true,
    ours: true,
    diagnostic: true,
    async setup(app, cfg) {
      // The cost of the diagnostics channels themselves once someone listens: every message is
      // built and published, the subscriber does nothing.
      const { DIAGNOSTICS_CHANNELS } = await import('passport-agentpress-partner/diagnostics')
      const { subscribe } = await import('node:diagnostics_channel')
      for (const [key, name] of Object.entries(DIAGNOSTICS_CHANNELS)) {
        if (key !== 'tokenVerifyTrace') subscribe(name, () => {})
      }
      await scenarios.ours.setup(app, cfg)
    },
  },

  'ours-otel': {
    title: 'diagnostic: ours (passport.authenticate) with the OpenTelemetry adapter recording',
    verifies: true,
    ours: true,
    diagnostic: true,
    async setup(app, cfg) {
      // The real SDK: a MeterProvider whose reader never exports during the run (the histogram
      // and counter aggregations still run on every request).
      const sdk = await import('@opentelemetry/sdk-metrics').catch((error) => {
        throw new Error(`@opentelemetry/sdk-metrics not installed: ${error.message}`)
      })
      const { instrumentOpenTelemetry } = await import('passport-agentpress-partner/opentelemetry')
      const reader = new sdk.PeriodicExportingMetricReader({
        exporter: new sdk.InMemoryMetricExporter(sdk.AggregationTemporality.CUMULATIVE),
        exportIntervalMillis: 3_600_000,
      })
      instrumentOpenTelemetry({ meterProvider: new sdk.MeterProvider({ readers: [reader] }) })
      await scenarios.ours.setup(app, cfg)
    },
  },

  'ours-audit': {
    title: 'diagnostic: ours (passport.authenticate) with the audit trail on (startAuditLog)',
    verifies: true,
    ours: true,
    diagnostic: true,
    async setup(app, cfg) {
      // Issue 22: one audit record per request, built, its subject HMAC'd and serialised as a
      // JSON line, then dropped (the sink's own I/O is the application's cost, not ours).
      const { startAuditLog } = await import('passport-agentpress-partner/diagnostics')
      startAuditLog({ subjectKey: 'bench-audit-subject-key-0123456789', write: () => {} })
      await scenarios.ours.setup(app, cfg)
    },
  },

  'passport-raw': {
    title: 'diagnostic: Express + passport.authenticate + raw crypto.verify strategy',
    verifies: true,
    diagnostic: true,
    async setup(app, cfg) {
      // The floor of any Passport strategy: Passport's per-request machinery around the raw verify.
      const { Passport, Strategy } = await import('passport')
      const key = publicKeyObject(cfg.publicJwk)
      class RawStrategy extends Strategy {
        name = 'raw'
        authenticate(req) {
          const token = bearer(req)
          const dot = token === undefined ? -1 : token.lastIndexOf('.')
          if (dot < 0) return this.fail('Bearer')
          const input = Buffer.from(token.slice(0, dot), 'latin1')
          const sig = Buffer.from(token.slice(dot + 1), 'base64url')
          if (!cryptoVerify(null, input, key, sig)) return this.fail('Bearer')
          this.success({ id: 'raw' })
        }
      }
      const passport = new Passport()
      passport.use(new RawStrategy())
      app.get('/mcp', passport.authenticate('raw', { session: false }), ok)
    },
  },

  'passport-core': {
    title:
      'diagnostic: Express + passport.authenticate + thinnest strategy over PartnerTokenVerifier',
    verifies: true,
    diagnostic: true,
    async setup(app, cfg) {
      // What any Passport adapter over our core must pay: Passport plus an asynchronous verify.
      await thinPassportRoute(app, cfg, false)
    },
  },

  'ours-core': {
    title: 'diagnostic: Express + PartnerTokenVerifier.verifyToken (no Passport)',
    verifies: true,
    diagnostic: true,
    async setup(app, cfg) {
      await thinMiddlewareRoute(app, cfg, false)
    },
  },

  'passport-core-auth': {
    title:
      'diagnostic: passport-core that also sets req.auth and req.authInfo like ours (same request properties as `ours`)',
    verifies: true,
    diagnostic: true,
    async setup(app, cfg) {
      await thinPassportRoute(app, cfg, true)
    },
  },

  'ours-core-props': {
    title:
      'diagnostic: ours-core that also sets req.user and req.authInfo like ours (same request properties as `ours-direct`)',
    verifies: true,
    diagnostic: true,
    async setup(app, cfg) {
      await thinMiddlewareRoute(app, cfg, true)
    },
  },

  'ours-core-props-weakmap': {
    title:
      'diagnostic: ours-core-props that also records a state object per request in a WeakMap keyed by the request',
    verifies: true,
    diagnostic: true,
    async setup(app, cfg) {
      const states = new WeakMap()
      const inner = collectedRoute()
      await scenarios['ours-core-props'].setup(inner, cfg)
      const record = (req, res, next) => {
        states.set(req, { context: cfg })
        next()
      }
      app.get('/mcp', record, ...inner.handlers)
    },
  },

  'ours-core-props-rawheaders': {
    title:
      'diagnostic: ours-core-props that also counts the Authorization lines of req.rawHeaders, as our strict header read does',
    verifies: true,
    diagnostic: true,
    async setup(app, cfg) {
      const inner = collectedRoute()
      await scenarios['ours-core-props'].setup(inner, cfg)
      const count = (req, res, next) => {
        const raw = req.rawHeaders
        let lines = 0
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i]
          if (name.length === 13 && name.toLowerCase() === 'authorization') lines++
        }
        if (lines > 1) return unauthorized(res)
        next()
      }
      app.get('/mcp', count, ...inner.handlers)
    },
  },

  'ours-core-props-sync': {
    title:
      'diagnostic: ours-core-props completing synchronously (verifyNow: the claims at once when the key is cached, as our adapters do)',
    verifies: true,
    diagnostic: true,
    async setup(app, cfg) {
      const verifier = await coreVerifier(cfg)
      const accept = (req, token, claims, next) => {
        const { user, authInfo, auth } = contractObjects(token, claims)
        req.auth = auth
        req.user = user
        req.authInfo = authInfo
        next()
      }
      const authenticate = (req, res, next) => {
        const token = bearer(req)
        if (token === undefined) return unauthorized(res)
        let found
        try {
          found = verifier.verifyNow(token)
        } catch {
          return unauthorized(res)
        }
        if (!(found instanceof Promise)) return accept(req, token, found, next)
        found.then(
          (claims) => accept(req, token, claims, next),
          () => unauthorized(res),
        )
      }
      app.get('/mcp', authenticate, ok)
    },
  },

  auth0: {
    title: 'express-oauth2-jwt-bearer (EdDSA)',
    verifies: true,
    async setup(app, cfg) {
      const { auth, claimEquals } = await import('express-oauth2-jwt-bearer')
      app.get(
        '/mcp',
        auth({
          issuer: cfg.issuer,
          audience: AUDIENCE,
          jwksUri: cfg.jwksUrl,
          tokenSigningAlg: 'EdDSA',
        }),
        claimEquals('ext_provider', EXT_PROVIDER),
        ok,
      )
    },
  },

  'passport-jose': {
    title: 'passport-http-bearer + jose (createRemoteJWKSet + jwtVerify)',
    verifies: true,
    async setup(app, cfg) {
      const { Passport } = await import('passport')
      const { Strategy: BearerStrategy } = await import('passport-http-bearer')
      const { createRemoteJWKSet, jwtVerify } = await import('jose')
      const jwks = createRemoteJWKSet(new URL(cfg.jwksUrl))
      const passport = new Passport()
      passport.use(
        new BearerStrategy((token, done) => {
          jwtVerify(token, jwks, {
            issuer: cfg.issuer,
            audience: AUDIENCE,
            algorithms: ['EdDSA'],
            requiredClaims: ['sub', 'jti', 'scope', 'iat', 'exp'],
            clockTolerance: 30,
          }).then(
            ({ payload }) =>
              payload.ext_provider === EXT_PROVIDER
                ? done(null, { id: payload.sub }, { scope: payload.scope })
                : done(null, false),
            () => done(null, false),
          )
        }),
      )
      app.get('/mcp', passport.authenticate('bearer', { session: false }), ok)
    },
  },

  'mcp-sdk': {
    title: 'MCP SDK requireBearerAuth + jose verifier',
    verifies: true,
    async setup(app, cfg) {
      const { requireBearerAuth } =
        await import('@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js')
      const { InvalidTokenError } = await import('@modelcontextprotocol/sdk/server/auth/errors.js')
      const { createRemoteJWKSet, jwtVerify } = await import('jose')
      const jwks = createRemoteJWKSet(new URL(cfg.jwksUrl))
      const verifier = {
        async verifyAccessToken(token) {
          let payload
          try {
            ;({ payload } = await jwtVerify(token, jwks, {
              issuer: cfg.issuer,
              audience: AUDIENCE,
              algorithms: ['EdDSA'],
              requiredClaims: ['sub', 'jti', 'scope', 'iat', 'exp'],
              clockTolerance: 30,
            }))
          } catch {
            throw new InvalidTokenError('Invalid token')
          }
          if (payload.ext_provider !== EXT_PROVIDER) throw new InvalidTokenError('Invalid token')
          return {
            token,
            clientId: payload.sub,
            scopes: payload.scope.split(' '),
            expiresAt: payload.exp,
          }
        },
      }
      app.get('/mcp', requireBearerAuth({ verifier }), ok)
    },
  },

  'fast-jwt': {
    title: 'fast-jwt + get-jwks (verified-token cache off)',
    verifies: true,
    async setup(app, cfg) {
      const { createVerifier } = await import('fast-jwt')
      const { default: buildGetJwks } = await import('get-jwks')
      const { createPublicKey } = await import('node:crypto')
      const getJwks = buildGetJwks({
        issuersWhitelist: [cfg.issuer],
        jwksPath: '/.well-known/jwks.json',
      })
      // get-jwks' own getPublicKey() goes through jwk-to-pem, which knows only RSA and EC
      // ("Unsupported key type OKP"), so an Ed25519 JWKS needs the JWK → PEM step done by
      // node:crypto. Memoised per JWK object, i.e. as long as get-jwks caches that JWK.
      const pems = new WeakMap()
      const verify = createVerifier({
        algorithms: ['EdDSA'],
        allowedIss: cfg.issuer,
        allowedAud: AUDIENCE,
        requiredClaims: ['sub', 'jti', 'scope', 'iat', 'exp'],
        clockTolerance: 30_000,
        cache: false,
        async key({ header, payload }) {
          const jwk = await getJwks.getJwk({
            domain: payload.iss,
            alg: header.alg,
            kid: header.kid,
          })
          let pem = pems.get(jwk)
          if (pem === undefined) {
            pem = createPublicKey({ key: jwk, format: 'jwk' }).export({
              type: 'spki',
              format: 'pem',
            })
            pems.set(jwk, pem)
          }
          return pem
        },
      })
      app.get(
        '/mcp',
        (req, res, next) => {
          const token = bearer(req)
          if (token === undefined) return unauthorized(res)
          verify(token).then(
            (payload) => {
              if (payload.ext_provider !== EXT_PROVIDER) return unauthorized(res)
              req.auth = payload
              next()
            },
            () => unauthorized(res),
          )
        },
        ok,
      )
    },
  },
}

export const scenarioIds = Object.keys(scenarios)
