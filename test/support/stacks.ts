// Shared harness of the HTTP tests: the same routes on real Express 4, Express 5 and Connect apps,
// a fresh Passport instance per app, and helpers to read exactly what went over the wire.
import connect from 'connect'
import express5 from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import passportModule from 'passport'
import type { Response } from 'supertest'
import { agentPressErrorHandler } from 'passport-agentpress-partner'
import { payloadOf } from './tokens.js'

// `express4` is an npm alias of express@4 with no types of its own; it has express's API.
const express4 = createRequire(import.meta.url)('express4') as typeof express5

export type Stack = 'express4' | 'express5' | 'connect'
export const STACKS: readonly Stack[] = ['express4', 'express5', 'connect']

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
type ErrorHandler = (
  err: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void

export interface Route {
  /** Paths must not prefix one another (Connect mounts by prefix). */
  readonly path: string
  readonly handlers: readonly Handler[]
}

export type PassportInstance = InstanceType<typeof passportModule.Passport>

/** A new Passport instance, so apps never share strategies. */
export function newPassport(): PassportInstance {
  return new passportModule.Passport()
}

/**
 * The documented Passport way to JSON (or JSON-RPC) refusal bodies, as one route middleware:
 * `passport.authenticate(name, { session: false, failWithError: true, scope })` whose errors go to
 * `agentPressErrorHandler({ body })` (an application mounts the handler after its routes).
 */
export function passportJson(
  passport: PassportInstance,
  options: { body?: 'json' | 'jsonrpc'; strategy?: string | string[]; scope?: string[] } = {},
): Handler {
  const authenticate = passport.authenticate(options.strategy ?? 'agentpress-partner', {
    session: false,
    failWithError: true,
    ...(options.scope === undefined ? {} : { scope: options.scope }),
  }) as Handler
  const onError = agentPressErrorHandler({ body: options.body ?? 'json' })
  return (req, res, next) =>
    authenticate(req, res, (err?: unknown) =>
      err === undefined || err === null ? next() : onError(err, req, res, next),
    )
}

/** The terminal handler of every route: echoes what authentication left on the request. */
export const echo: Handler = (req, res) => {
  const r = req as IncomingMessage & { user?: unknown; authInfo?: unknown; auth?: unknown }
  const body = JSON.stringify({ user: r.user, authInfo: r.authInfo, auth: r.auth })
  res.statusCode = 200
  res.setHeader('Content-Type', 'application/json')
  res.end(body)
}

/** Builds an app of `stack` serving `routes`, then the given error handlers, then the default one. */
export function buildApp(
  stack: Stack,
  routes: readonly Route[],
  errorHandlers: readonly ErrorHandler[] = [],
): (req: IncomingMessage, res: ServerResponse) => void {
  if (stack === 'connect') {
    const app = connect()
    for (const route of routes)
      for (const h of route.handlers) app.use(route.path, h as connect.NextHandleFunction)
    for (const h of errorHandlers) app.use(h as connect.ErrorHandleFunction)
    return app
  }
  const app = stack === 'express4' ? express4() : express5()
  for (const route of routes)
    app.all(route.path, ...(route.handlers as unknown as express5.RequestHandler[]))
  for (const h of errorHandlers) app.use(h as express5.ErrorRequestHandler)
  return app
}

/** Every `WWW-Authenticate` line of a response, in order, exactly as sent. */
export function challenges(res: Response): string[] {
  const raw = (res as unknown as { res: IncomingMessage }).res.rawHeaders
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'www-authenticate') out.push(raw[i + 1]!)
  }
  return out
}

/** Everything a client received, for leak checks. */
export function wholeResponse(res: Response): string {
  const raw = (res as unknown as { res: IncomingMessage }).res.rawHeaders
  return `${res.status}\n${raw.join('\n')}\n\n${res.text ?? ''}`
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

const escapeHtml = (s: string): string =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')

/** The page finalhandler (Express 4, Express 5, Connect) writes for an error: its stack outside production. */
export function finalhandlerPage(stackOrMessage: string, status: number): string {
  const message = process.env.NODE_ENV === 'production' ? STATUS_TEXT[status]! : stackOrMessage
  const body = escapeHtml(message).replace(/\n/g, '<br>').replace(/ {2}/g, ' &nbsp;')
  return (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n' +
    `<body>\n<pre>${body}</pre>\n</body>\n</html>\n`
  )
}

/** Silences (and records) what Express/Connect log for errors, for the duration of a suite. */
export function captureErrorLogs(): { readonly lines: string[] } {
  const state = { lines: [] as string[] }
  let original: typeof console.error
  before(() => {
    original = console.error
    console.error = (...args: unknown[]) => {
      state.lines.push(
        args.map((a) => (a instanceof Error ? (a.stack ?? String(a)) : String(a))).join(' '),
      )
    }
  })
  after(() => {
    console.error = original
  })
  return state
}

/**
 * The exact body `echo` writes after a success with `token`: the verify callback's `user`,
 * `req.authInfo` (the token's claims, its scopes, its issuer, plus the callback's `info`) and
 * `req.auth` for the MCP SDK (whose `resource` is the token's single URL audience by default).
 */
export function successBody(
  token: string,
  user: unknown,
  { info, resource }: { info?: Record<string, unknown>; resource?: string | null } = {},
): string {
  const claims = payloadOf(token)
  const scopes = String(claims.scope)
    .split(' ')
    .filter((s) => s !== '')
  const aud = claims.aud
  const res = resource === undefined ? (typeof aud === 'string' ? aud : null) : resource
  return JSON.stringify({
    user,
    authInfo: { ...info, claims, scopes, issuer: claims.iss },
    auth: {
      token,
      clientId: claims.ext_provider,
      scopes,
      expiresAt: claims.exp,
      extra: { claims, user },
      ...(res === null ? {} : { resource: new URL(res).href }),
    },
  })
}
