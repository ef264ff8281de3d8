/**
 * RFC 6750 §2.1 plumbing: the bearer token of a request's `Authorization` header, or why there is
 * none. Framework-free: it reads only `headers.authorization` and `rawHeaders`.
 */

/**
 * The request fields {@link readBearerToken} looks at (a Node `IncomingMessage` has both).
 */
export interface BearerRequest {
  readonly headers?: { readonly authorization?: string | undefined } | undefined
  readonly rawHeaders?: readonly string[] | undefined
}

/**
 * A token, or the HTTP-layer reason there is no usable one.
 *
 * @example
 * ```ts
 * const result: BearerResult = readBearerToken(req)
 * if ('reason' in result) throw new AgentPressHttpError(result.reason, { realm: 'mcp' })
 * const claims = await verifier.verifyToken(result.token)
 * ```
 */
export type BearerResult =
  { readonly token: string } | { readonly reason: 'no_credentials' | 'invalid_request' }

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

/**
 * Reads `Authorization: Bearer <b64token>` (scheme case-insensitive, RFC 7235 §2.1).
 *
 * - no header, or another scheme (`Basic`, `DPoP`, …) → `no_credentials`: not ours to judge, so a
 *   chain's next strategy may accept it;
 * - `Bearer` with an empty value, a value that is not a b64token, extra words, or two
 *   `Authorization` lines → `invalid_request` (RFC 6750 §3.1).
 *
 * @example
 * ```ts
 * readBearerToken({ headers: { authorization: 'Bearer abc.def.ghi' } }) // { token: 'abc.def.ghi' }
 * readBearerToken({ headers: {} }) // { reason: 'no_credentials' }
 * ```
 */
export function readBearerToken(req: BearerRequest): BearerResult {
  // Node keeps only the first of two Authorization lines: count what was actually sent.
  if (authorizationLineCount(req) > 1) return { reason: 'invalid_request' }
  const raw = req.headers?.authorization
  // The common form, `Bearer <b64token>` with one space, without the general parse below.
  const quick = commonForm(raw)
  if (quick !== undefined && B64TOKEN.test(quick)) return { token: quick }
  const header = typeof raw === 'string' ? trimSpaces(raw) : ''
  if (header === '') return { reason: 'no_credentials' }
  const end = header.search(/[ \t]/)
  const scheme = end === -1 ? header : header.slice(0, end)
  if (scheme.toLowerCase() !== 'bearer') return { reason: 'no_credentials' }
  const match = / +([^ ]+)$/y.exec(end === -1 ? '' : header.slice(end))
  if (match === null || !B64TOKEN.test(match[1]!)) return { reason: 'invalid_request' }
  return { token: match[1]! }
}

/**
 * The value after `Bearer ` of the common form (one `Authorization` line, the scheme and one
 * space), without checking its characters; `undefined` when the header is not of that form.
 *
 * Only for a caller whose verifier refuses, before anything else and as `malformed`, every token
 * that is not base64url segments joined by dots (a subset of b64token): such a caller may skip the
 * character scan and, on a `malformed` refusal, read the header again with
 * {@link readBearerToken}, whose answer then decides. The result is the same as reading strictly
 * first; a token that verifies costs one scan less.
 *
 * @internal
 */
export function readBearerTokenUnscanned(req: BearerRequest): string | undefined {
  if (authorizationLineCount(req) > 1) return undefined
  return commonForm(req.headers?.authorization)
}

function commonForm(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw.length <= 7 || raw.charCodeAt(6) !== 0x20) return undefined
  const scheme = raw.slice(0, 6)
  return scheme === 'Bearer' || scheme.toLowerCase() === 'bearer' ? raw.slice(7) : undefined
}

/** Whether `value` is an RFC 6750 b64token. @internal */
export function isB64Token(value: string): boolean {
  return B64TOKEN.test(value)
}

// Strips spaces and tabs at both ends with index loops: a regex such as /[ \t]+$/ backtracks
// quadratically on a long inner run of blanks, which a caller controls (a 64 KiB header took 2 s).
function trimSpaces(value: string): string {
  let start = 0
  let end = value.length
  while (start < end && isBlank(value.charCodeAt(start))) start++
  while (end > start && isBlank(value.charCodeAt(end - 1))) end--
  return start === 0 && end === value.length ? value : value.slice(start, end)
}

const isBlank = (code: number): boolean => code === 0x20 || code === 0x09

function authorizationLineCount(req: BearerRequest): number {
  const raw = req.rawHeaders
  if (!Array.isArray(raw)) return req.headers?.authorization === undefined ? 0 : 1
  let count = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    // Cheap length filter before the case-insensitive comparison.
    if (name.length === 13 && name.toLowerCase() === 'authorization') count++
  }
  return count
}
