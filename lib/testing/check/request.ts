/**
 * The one way `check` talks to a server: a bounded HTTP client. Every request has a deadline, the
 * run has a request budget, a response is read up to a cap and redirects are never followed (a
 * server under test must not steer the probe elsewhere). Built on `node:http` rather than `fetch`
 * because one probe needs two `Authorization` lines, which `fetch` would fold into one.
 */
import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http'
import { request as httpsRequest } from 'node:https'

/** What came back; `error` instead of a status when nothing usable did. */
export interface ProbeResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The body as text, cut at the cap. */
  readonly body: string
}

export interface ProbeRequest {
  readonly method: 'GET' | 'POST' | 'OPTIONS'
  readonly url: URL
  readonly headers?: OutgoingHttpHeaders
  readonly body?: string | Buffer
}

/** A request that got no answer: the server is unreachable, too slow, or closed the socket. */
export class ProbeError extends Error {
  constructor(
    message: string,
    readonly kind: 'budget' | 'timeout' | 'network',
  ) {
    super(message)
  }
}

const RESPONSE_CAP = 64 * 1024

export class Requester {
  #used = 0

  constructor(
    readonly timeoutMs: number,
    readonly maxRequests: number,
  ) {}

  /** Requests sent so far. */
  get used(): number {
    return this.#used
  }

  send(probe: ProbeRequest): Promise<ProbeResponse> {
    if (this.#used >= this.maxRequests) {
      return Promise.reject(
        new ProbeError(`request budget of ${this.maxRequests} exhausted`, 'budget'),
      )
    }
    this.#used += 1
    const send = probe.url.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise((resolve, reject) => {
      let settled = false
      const finish = (fn: () => void): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        fn()
      }
      const req = send(probe.url, {
        method: probe.method,
        headers: {
          'user-agent': 'agentpress-mock-check',
          ...(probe.body === undefined ? {} : { 'content-length': Buffer.byteLength(probe.body) }),
          ...probe.headers,
        },
        // One socket per probe: a server that misbehaves on one cannot poison the next.
        agent: false,
      })
      const timer = setTimeout(() => {
        req.destroy()
        finish(() => reject(new ProbeError(`no answer within ${this.timeoutMs} ms`, 'timeout')))
      }, this.timeoutMs)
      req.on('error', (err: NodeJS.ErrnoException) =>
        finish(() => reject(new ProbeError(err.code ?? err.message, 'network'))),
      )
      req.on('response', (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          if (size >= RESPONSE_CAP) return
          chunks.push(chunk)
          size += chunk.length
          if (size >= RESPONSE_CAP) res.destroy()
        })
        const done = (): void =>
          finish(() =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).subarray(0, RESPONSE_CAP).toString('utf8'),
            }),
          )
        res.on('end', done)
        res.on('close', done)
        res.on('error', done)
      })
      req.end(probe.body)
    })
  }
}

/** The `WWW-Authenticate` lines of a response, as one string per line. */
export function challengesOf(response: ProbeResponse): string[] {
  const value = response.headers['www-authenticate']
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/** The value of auth-param `name` in a `Bearer` challenge, or undefined. */
export function challengeParam(response: ProbeResponse, name: string): string | undefined {
  for (const line of challengesOf(response)) {
    if (!/^\s*bearer(\s|$)/i.test(line)) continue
    const match = new RegExp(`(?:^|[\\s,])${name}="([^"]*)"`, 'i').exec(line)
    if (match !== null) return match[1]
    const bare = new RegExp(`(?:^|[\\s,])${name}=([^\\s,"]+)`, 'i').exec(line)
    if (bare !== null) return bare[1]
  }
  return undefined
}

/** Whether one of the response's challenges uses the `Bearer` scheme. */
export function hasBearerChallenge(response: ProbeResponse): boolean {
  return challengesOf(response).some((line) => /^\s*bearer(\s|,|$)/i.test(line))
}
