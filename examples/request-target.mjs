/**
 * The examples' first line of defence: a request target that is not a plain path (`//a:b`,
 * `http://x`, `*`, invalid percent-encoding, an absurdly long target) is answered 400 before any
 * router sees it, so no client can make a server we ship throw or misroute.
 */

/** Longest request target accepted, in characters. */
export const MAX_TARGET_LENGTH = 4096

// "/" (not "//") and path characters with valid %XX escapes, then an optional query of visible
// ASCII with valid %XX escapes.
const ORIGIN_FORM =
  /^\/(?!\/)(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*(?:\?(?:[!-$&-~]|%[0-9A-Fa-f]{2})*)?$/

/**
 * Answers 400 and returns true when `req.url` is not an origin-form target; else returns false.
 *
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 */
export function refuseHostileTarget(req, res) {
  const target = req.url ?? ''
  if (target.length <= MAX_TARGET_LENGTH && ORIGIN_FORM.test(target)) return false
  const body =
    '{"error":"invalid_request_target","error_description":"The request target must be a path"}'
  res.writeHead(400, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    Connection: 'close',
  })
  res.end(body)
  return true
}
