/**
 * Reading a request body as raw bytes, with a size cap enforced on every chunk (whatever
 * `Content-Length` says) and a deadline (raw-body and body-parser have none of their own), and
 * recognising a body an earlier parser already consumed.
 */
import type { IncomingMessage } from 'node:http'

/** The bytes never came: the client went away, the deadline passed, or the cap was exceeded. @internal */
export class BodyReadError extends Error {
  constructor(readonly kind: 'aborted' | 'timeout' | 'too_large') {
    super(kind)
  }
}

function ignore(): void {}

/**
 * Reads the whole body; rejects with a {@link BodyReadError}. On failure the request is paused
 * and a no-op `error` listener stays, so a late socket error cannot crash the process.
 *
 * @internal
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const finish = (error: BodyReadError | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onClose)
      req.off('error', onError)
      req.on('error', ignore)
      if (error === undefined) resolve(Buffer.concat(chunks, size))
      else {
        req.pause()
        reject(error)
      }
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) finish(new BodyReadError('too_large'))
      else chunks.push(chunk)
    }
    const onEnd = (): void => finish(undefined)
    const onClose = (): void => finish(new BodyReadError('aborted'))
    const onError = (): void => finish(new BodyReadError('aborted'))
    const timer = setTimeout(() => finish(new BodyReadError('timeout')), timeoutMs)
    timer.unref()
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('close', onClose)
    req.on('error', onError)
  })
}

/** Whether request bytes may still be on the wire (RFC 9112 §6.3: no framing header, no body). @internal */
export function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.readableEnded) return false
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

type MaybeParsed = IncomingMessage & { rawBody?: unknown; body?: unknown; _body?: unknown }

/**
 * What an earlier body parser left: the raw bytes (`req.rawBody`, or a Buffer `req.body`),
 * `'consumed'` when the stream was read with no raw copy, `undefined` when the body is unread.
 *
 * @internal
 */
export function preParsedBody(req: IncomingMessage): Uint8Array | 'consumed' | undefined {
  const { rawBody, body, _body } = req as MaybeParsed
  if (rawBody instanceof Uint8Array) return rawBody
  if (body instanceof Uint8Array) return body
  if (req.readableEnded || req.readableDidRead || _body === true) return 'consumed'
  return undefined
}
