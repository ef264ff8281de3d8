/**
 * One JWKS fetch (SPEC §3): `GET`, never following redirects, bounded in time (connect to last
 * byte) and in size (enforced while streaming), and the document turned into candidate keys.
 */
import { request as httpRequest, type Agent, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { KeyObject } from 'node:crypto'
import { importEd25519Jwk } from './ed25519.js'

/**
 * Largest JWKS response accepted, in bytes (SPEC §3: 64 KiB).
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
export type JwksFetchErrorReason =
  'network' | 'timeout' | 'http_status' | 'redirect' | 'too_large' | 'invalid_json' | 'invalid_jwks'

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
export type KeyMap = Map<string, KeyObject | null>

/**
 * Fetches and parses a JWKS document: `GET`, no redirects, a deadline covering connect to last
 * byte, and a byte cap enforced while streaming.
 *
 * @internal
 */
export function fetchJwksDocument(url: string, timeoutMs: number, agent?: Agent): Promise<unknown> {
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
    const req = request(url, {
      method: 'GET',
      // No pooled agent unless the application gives one (an egress proxy, custom CAs): the
      // deadline above covers the agent's connect too, e.g. a CONNECT through a proxy.
      agent: agent ?? false,
      headers: { accept: 'application/json' },
    })
    const timer = setTimeout(
      () => fail('timeout', `JWKS fetch timed out after ${timeoutMs} ms`),
      timeoutMs,
    )
    req.on('error', (cause) => fail('network', 'JWKS fetch failed', { cause }))
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0
      if (status >= 300 && status < 400) {
        return fail('redirect', `JWKS endpoint answered ${status}; redirects are not followed`, {
          httpStatus: status,
        })
      }
      if (status !== 200)
        return fail('http_status', `JWKS endpoint answered ${status}`, { httpStatus: status })
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
        resolve(document)
      })
    })
    req.end()
  })
}

/**
 * Turns a JWKS document into the candidate keys (SPEC §3). A document that is not
 * `{ "keys": [...] }` is a failed fetch, not an empty key set.
 *
 * @internal
 */
export function buildKeyMap(document: unknown, url: string, revoked: ReadonlySet<string>): KeyMap {
  const keys = (document as { keys?: unknown } | null)?.keys
  if (document === null || typeof document !== 'object' || !Array.isArray(keys)) {
    throw new JwksFetchError('invalid_jwks', 'JWKS document has no "keys" array', url)
  }
  const map: KeyMap = new Map()
  for (const jwk of keys) {
    const imported = importEd25519Jwk(jwk)
    if (typeof imported === 'string' || revoked.has(imported.kid)) continue
    // A kid two keys share is ambiguous: treat it as unknown rather than guess (SPEC §3).
    map.set(imported.kid, map.has(imported.kid) ? null : imported.key)
  }
  return map
}
