/**
 * One JWKS fetch (§3): `GET`, never following redirects, bounded in time (connect to last
 * byte) and in size (enforced while streaming), and the document turned into candidate keys.
 */
import { request as httpRequest, type Agent, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import {
  importEd25519Jwk,
  NODE_CRYPTO_BACKEND,
  type Ed25519Backend,
  type Ed25519Key,
} from '../token/ed25519.js'
import type { JwksFetchErrorReason } from '../diagnostics/channels.js'

/**
 * Largest JWKS response accepted, in bytes (§3: 64 KiB).
 *
 * @internal
 */
export const MAX_JWKS_BYTES = 64 * 1024

/**
 * Why a JWKS fetch failed; reported through `onJwksError` and kept as `cause`.
 *
 * @example
 * ```ts
 * const onJwksError = (error: JwksFetchError): void => {
 *   const reason: JwksFetchErrorReason = error.reason
 *   if (reason === 'network' || reason === 'timeout') console.warn('JWKS unreachable')
 * }
 * ```
 */
export type { JwksFetchErrorReason }

/**
 * The verifier options the JWKS wing reads. The verifier's normalised options extend it (the
 * verifier sits above this wing and conforms to its needs, never the other way round).
 *
 * @internal
 */
export interface JwksOptions {
  readonly issuer: string
  readonly jwksUrl: string
  readonly jwksAgent: Agent | undefined
  readonly jwksTimeoutMs: number
  readonly jwksCacheMaxAgeMs: number
  readonly jwksCooldownMs: number
  readonly jwksStaleMaxMs: number
  readonly onJwksError: ((error: JwksFetchError) => void) | undefined
  readonly clock: () => number
  readonly monotonicClock: () => number
  /** The Ed25519 backend whose keys the cache holds (`options.ed25519`, resolved). */
  readonly ed25519Backend: Ed25519Backend
}
/**
 * One failed JWKS fetch. Its message never contains response bytes.
 *
 * @example
 * ```ts
 * const verifier = new PartnerTokenVerifier({
 *   ...partnerMcp,
 *   onJwksError: (error: JwksFetchError) => {
 *     console.warn('JWKS fetch failed', error.reason, error.url, error.httpStatus)
 *   },
 * })
 * ```
 */
export class JwksFetchError extends Error {
  override readonly name = 'JwksFetchError'
  readonly reason: JwksFetchErrorReason
  /** The JWKS URL that was fetched (configuration, not request data). */
  readonly url: string
  /** HTTP status of the response, when there was one. */
  readonly httpStatus: number | undefined

  constructor(
    reason: JwksFetchErrorReason,
    message: string,
    url: string,
    options: { cause?: unknown; httpStatus?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.reason = reason
    this.url = url
    this.httpStatus = options.httpStatus
  }
}

/** Map of kid → key; `null` marks a kid that several keys share (ambiguous, so unusable). */
/** @internal */
export type KeyMap = Map<string, Ed25519Key | null>

/**
 * The validators of the last good response, sent back as `If-None-Match` / `If-Modified-Since` so a
 * refetch of an unchanged key set costs the issuer a 304 (§3).
 *
 * @internal
 */
export interface JwksValidators {
  readonly etag?: string
  readonly lastModified?: string
}

/**
 * The outcome of one conditional fetch: a new document with its validators, or `not_modified`.
 *
 * @internal
 */
export type JwksFetchResult =
  | { readonly status: 'ok'; readonly document: unknown; readonly validators: JwksValidators }
  | { readonly status: 'not_modified' }

// A validator is echoed back to the issuer in a request header: keep it to visible ASCII and short.
const VALIDATOR = /^[\x20-\x7e]{1,256}$/

function validatorsOf(res: IncomingMessage): JwksValidators {
  const out: { etag?: string; lastModified?: string } = {}
  const etag = res.headers.etag
  const lastModified = res.headers['last-modified']
  if (typeof etag === 'string' && VALIDATOR.test(etag)) out.etag = etag
  if (typeof lastModified === 'string' && VALIDATOR.test(lastModified))
    out.lastModified = lastModified
  return out
}

/**
 * Fetches and parses a JWKS document: `GET`, no redirects, a deadline covering connect to last
 * byte, and a byte cap enforced while streaming.
 *
 * @internal
 */
export async function fetchJwksDocument(
  url: string,
  timeoutMs: number,
  agent?: Agent,
): Promise<unknown> {
  const result = await fetchJwks(url, timeoutMs, undefined, agent)
  return (result as { document: unknown }).document
}

/**
 * {@link fetchJwksDocument}, conditional: with `validators`, a 304 answer is `not_modified`
 * (without them, a 304 is an `http_status` failure like any other non-200).
 *
 * @internal
 */
export function fetchJwks(
  url: string,
  timeoutMs: number,
  validators: JwksValidators | undefined,
  agent?: Agent,
): Promise<JwksFetchResult> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest
    let settled = false
    const fail = (
      reason: JwksFetchError['reason'],
      message: string,
      extra: { cause?: unknown; httpStatus?: number } = {},
    ) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      reject(new JwksFetchError(reason, message, url, extra))
    }
    const headers: Record<string, string> = { accept: 'application/json' }
    if (validators?.etag !== undefined) headers['if-none-match'] = validators.etag
    if (validators?.lastModified !== undefined)
      headers['if-modified-since'] = validators.lastModified
    const req = request(url, {
      method: 'GET',
      // No pooled agent unless the application gives one (an egress proxy, custom CAs): the
      // deadline above covers the agent's connect too, e.g. a CONNECT through a proxy.
      agent: agent ?? false,
      headers,
    })
    // At the deadline, first let the I/O already received be read: timers run before the poll
    // phase, so headers sitting in the socket (a declared Content-Length over the cap, an error
    // status) decide the answer rather than the race between a busy event loop and the clock.
    const timer = setTimeout(() => {
      setImmediate(() => fail('timeout', `JWKS fetch timed out after ${timeoutMs} ms`))
    }, timeoutMs)
    req.on('error', (cause) => fail('network', 'JWKS fetch failed', { cause }))
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0
      if (status === 304 && validators !== undefined) {
        settled = true
        clearTimeout(timer)
        res.resume()
        resolve({ status: 'not_modified' })
        return
      }
      if (status >= 300 && status < 400) {
        return fail('redirect', `JWKS endpoint answered ${status}; redirects are not followed`, {
          httpStatus: status,
        })
      }
      if (status !== 200)
        return fail('http_status', `JWKS endpoint answered ${status}`, { httpStatus: status })
      // A declared length over the cap is refused from the headers alone, before any body byte.
      const declared = Number(res.headers['content-length'])
      if (declared > MAX_JWKS_BYTES)
        return fail('too_large', `JWKS response exceeds ${MAX_JWKS_BYTES} bytes`)
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_JWKS_BYTES)
          return fail('too_large', `JWKS response exceeds ${MAX_JWKS_BYTES} bytes`)
        chunks.push(chunk)
      })
      res.on('error', (cause) => fail('network', 'JWKS response failed', { cause }))
      res.on('aborted', () => fail('network', 'JWKS response aborted'))
      res.on('end', () => {
        if (settled) return
        let document: unknown
        try {
          document = JSON.parse(
            new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)),
          )
        } catch (cause) {
          return fail('invalid_json', 'JWKS response is not JSON', { cause })
        }
        settled = true
        clearTimeout(timer)
        resolve({ status: 'ok', document, validators: validatorsOf(res) })
      })
    })
    req.end()
  })
}

/**
 * Turns a JWKS document into the candidate keys (§3). A document that is not
 * `{ "keys": [...] }` is a failed fetch, not an empty key set. Keys are made by `backend`: a
 * `KeyObject` for `node:crypto`, the raw 32 bytes for libsodium.
 *
 * @internal
 */
export function buildKeyMap(
  document: unknown,
  url: string,
  revoked: ReadonlySet<string>,
  backend: Ed25519Backend = NODE_CRYPTO_BACKEND,
): KeyMap {
  const keys = (document as { keys?: unknown } | null)?.keys
  if (document === null || typeof document !== 'object' || !Array.isArray(keys)) {
    throw new JwksFetchError('invalid_jwks', 'JWKS document has no "keys" array', url)
  }
  const map: KeyMap = new Map()
  for (const jwk of keys) {
    const imported = importEd25519Jwk(jwk, backend)
    if (typeof imported === 'string' || revoked.has(imported.kid)) continue
    // A kid two keys share is ambiguous: treat it as unknown rather than guess (§3).
    map.set(imported.kid, map.has(imported.kid) ? null : imported.key)
  }
  return map
}
