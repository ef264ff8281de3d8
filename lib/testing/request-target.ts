/**
 * The request target of the servers this package ships (the test kit's mock, `agentpress-mock
 * serve`): origin-form only (RFC 9112 §3.2.1), checked before anything parses it, so that no target
 * a client sends (`//a:b`, `http://x`, `*`, invalid percent-encoding, a very long path) can make a
 * request listener throw. What is refused gets one fixed 400.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sendJson } from '../http/connect.js'

/** Longest request target accepted, in characters. @internal */
export const MAX_TARGET_LENGTH = 4096

// Origin-form: "/" then path characters (RFC 3986 pchar and "/"), an optional query; every "%"
// starts a two-digit hex escape. A second leading "/" would read as an authority to URL parsers.
const ORIGIN_FORM =
  /^\/(?!\/)(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?$/

/**
 * The path of an origin-form request target (query removed, not decoded), or `undefined` when the
 * target is anything else.
 *
 * @internal
 */
export function originFormPath(target: string | undefined): string | undefined {
  if (target === undefined || target.length > MAX_TARGET_LENGTH || !ORIGIN_FORM.test(target)) {
    return undefined
  }
  const end = target.indexOf('?')
  return end === -1 ? target : target.slice(0, end)
}

/**
 * The path of `req`, or `undefined` after answering 400 `invalid_request_target` (and closing the
 * connection: the rest of what this client sends is not worth reading).
 *
 * @internal
 */
export function requestPathOr400(req: IncomingMessage, res: ServerResponse): string | undefined {
  const path = originFormPath(req.url)
  if (path !== undefined) return path
  sendJson(
    res,
    400,
    '{"error":"invalid_request_target","error_description":"The request target must be a path"}',
    { Connection: 'close' },
    true,
  )
  return undefined
}
