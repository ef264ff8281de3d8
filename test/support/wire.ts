// Wire-level helpers shared by the hardening suites (adversarial, fuzz, faults): a loopback
// listener, a request function that sends exactly the header lines and body bytes it is given
// (duplicate lines, chunked or lying framing, drips, aborts), and a raw-socket request for bytes
// Node's own client refuses to send. Every wait is bounded.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'

export interface Listening {
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** Serves `handler` on 127.0.0.1 (a free port). */
export async function listen(
  handler: (req: IncomingMessage, res: import('node:http').ServerResponse) => void,
): Promise<Listening> {
  const server: Server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export interface WireResponse {
  readonly status: number
  /** Header lines exactly as received, names lower-cased: [name, value][]. */
  readonly lines: ReadonlyArray<readonly [string, string]>
  readonly text: string
  /** All values of one header, in order. */
  all(name: string): string[]
  /** The single value of a header (undefined when absent). */
  get(name: string): string | undefined
}

function wireResponse(status: number, raw: string[], text: string): WireResponse {
  const lines: Array<[string, string]> = []
  for (let i = 0; i < raw.length; i += 2) lines.push([raw[i]!.toLowerCase(), raw[i + 1]!])
  return {
    status,
    lines,
    text,
    all: (name) => lines.filter(([n]) => n === name).map(([, v]) => v),
    get: (name) => lines.find(([n]) => n === name)?.[1],
  }
}

export interface SendOptions {
  method?: string
  path: string
  /** Header lines in order; a name may repeat (each pair is one line). */
  headers?: ReadonlyArray<readonly [string, string]>
  body?: string | Buffer
  /**
   * Writes the body itself (drips, aborts, chunked framing). When given, `body` is ignored and
   * no Content-Length is added.
   */
  write?: (req: import('node:http').ClientRequest) => void | Promise<void>
  /** Give up after this many ms (default 10 s). */
  timeoutMs?: number
}

/**
 * One request on a fresh connection. Resolves with the response, or with status 0 when the server
 * closed the connection without answering.
 */
export function send(port: number, options: SendOptions): Promise<WireResponse> {
  return new Promise((resolve, reject) => {
    // With raw (array) headers Node adds no Host line of its own.
    const headers: string[] = ['Host', `127.0.0.1:${port}`]
    for (const [name, value] of options.headers ?? []) headers.push(name, value)
    if (options.write === undefined && options.body !== undefined) {
      headers.push('Content-Length', String(Buffer.byteLength(options.body)))
    }
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: options.method ?? 'POST',
      path: options.path,
      agent: false,
      headers,
    })
    const timer = setTimeout(() => {
      req.destroy()
      reject(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`))
    }, options.timeoutMs ?? 10_000)
    let answered = false
    req.on('response', (res) => {
      answered = true
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', () => {})
      res.on('end', () => {
        clearTimeout(timer)
        resolve(
          wireResponse(res.statusCode ?? 0, res.rawHeaders, Buffer.concat(chunks).toString('utf8')),
        )
        req.destroy()
      })
    })
    req.on('error', (error: NodeJS.ErrnoException) => {
      // The server may close while we are still writing (early refusals): wait for its answer.
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
        setTimeout(() => {
          if (!answered) {
            clearTimeout(timer)
            resolve(wireResponse(0, [], ''))
          }
        }, 50)
        return
      }
      clearTimeout(timer)
      reject(error)
    })
    if (options.write !== undefined) {
      Promise.resolve(options.write(req)).catch((err: unknown) => {
        clearTimeout(timer)
        reject(err)
      })
    } else {
      req.end(options.body)
    }
  })
}

/**
 * Writes `bytes` (or pieces of them, with pauses) on a raw TCP connection and parses the first HTTP response (head and a body
 * delimited by Content-Length or the connection's end). Status 0: closed without an answer.
 */
export function rawRequest(
  port: number,
  bytes: Buffer | string | ReadonlyArray<Buffer | string | number>,
  timeoutMs = 5000,
): Promise<WireResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = Buffer.alloc(0)
    let done = false
    const finish = (response: WireResponse | Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      if (response instanceof Error) reject(response)
      else resolve(response)
    }
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    const tryParse = (ended: boolean) => {
      const end = data.indexOf('\r\n\r\n')
      if (end === -1) {
        if (ended) finish(wireResponse(0, [], ''))
        return
      }
      const head = data.subarray(0, end).toString('latin1').split('\r\n')
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0)
      const raw: string[] = []
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':')
        raw.push(line.slice(0, colon), line.slice(colon + 1).trim())
      }
      const response = wireResponse(status, raw, '')
      const length = response.get('content-length')
      const body = data.subarray(end + 4)
      if (length !== undefined && body.length >= Number(length)) {
        finish(wireResponse(status, raw, body.subarray(0, Number(length)).toString('utf8')))
      } else if (ended) {
        finish(wireResponse(status, raw, body.toString('utf8')))
      }
    }
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      tryParse(false)
    })
    socket.on('end', () => tryParse(true))
    socket.on('close', () => tryParse(true))
    socket.on('error', () => tryParse(true))
    // An array is written piece by piece; a number in it is a pause of that many ms.
    const pieces = Array.isArray(bytes) ? bytes : [bytes as Buffer | string]
    void (async () => {
      for (const piece of pieces) {
        if (done) return
        if (typeof piece === 'number') await sleep(piece)
        else socket.write(piece)
      }
    })()
  })
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Records unhandled rejections and uncaught exceptions for the duration of a suite; `check()`
 * asserts there were none.
 */
export function crashWatch(): { readonly crashes: unknown[] } {
  const state = { crashes: [] as unknown[] }
  const onCrash = (err: unknown) => state.crashes.push(err)
  before(() => {
    process.on('unhandledRejection', onCrash)
    process.on('uncaughtException', onCrash)
  })
  after(() => {
    process.off('unhandledRejection', onCrash)
    process.off('uncaughtException', onCrash)
  })
  return state
}

/** A header value Node would send: no CR, LF or NUL, nothing above 0xFF. */
export const VALID_HEADER_VALUE = /^[\t\x20-\x7E\x80-\xFF]*$/

/**
 * finalhandler writes every 4xx/5xx error it renders to console.error (outside NODE_ENV=test);
 * keep a suite's output readable, and the lines available.
 */
export function quietErrors(): { readonly lines: string[] } {
  const state = { lines: [] as string[] }
  let original: typeof console.error
  before(() => {
    original = console.error
    console.error = (...args: unknown[]) => {
      state.lines.push(args.map(String).join(' '))
    }
  })
  after(() => {
    console.error = original
  })
  return state
}
