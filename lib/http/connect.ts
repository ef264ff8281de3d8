/**
 * The plain-Node shapes every adapter speaks, so each runs unchanged under Express 4, Express 5 and
 * Connect: the `(req, res, next)` middleware types, the path of a request target, and one JSON
 * response writer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** `next` of Express and Connect. */
export type NextFunction = (err?: unknown) => void

/**
 * A request middleware, as Express and Connect call it.
 *
 * @example
 * ```ts
 * const scoped: Middleware = requireScopes('mcp:write')
 * ```
 */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: NextFunction) => void

/**
 * An error middleware (four arguments), as Express and Connect call it.
 *
 * @example
 * ```ts
 * const handler: ErrorMiddleware = agentPressErrorHandler({ body: 'jsonrpc' })
 * ```
 */
export type ErrorMiddleware = (
  err: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  next: NextFunction,
) => void

/** The path of a request target, without query; `''` when there is none. @internal */
export function pathOf(target: string | undefined): string {
  if (target === undefined) return ''
  const end = target.indexOf('?')
  return end === -1 ? target : target.slice(0, end)
}

const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * Writes a JSON response: the status, the given headers, then `Content-Type`, `Content-Length`
 * and, with `noStore`, `Cache-Control: no-store`. `json` is already serialised.
 *
 * @internal
 */
export function sendJson(
  res: ServerResponse,
  status: number,
  json: string,
  headers?: Readonly<Record<string, string>>,
  noStore = false,
): void {
  res.statusCode = status
  if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name]!)
  res.setHeader('Content-Type', JSON_TYPE)
  res.setHeader('Content-Length', Buffer.byteLength(json))
  if (noStore) res.setHeader('Cache-Control', 'no-store')
  res.end(json)
}
