// Loopback HTTP servers for tests: a counting server that records every request it receives.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface CountingServer {
  readonly url: string
  readonly count: number
  close(): Promise<void>
}

/** A server on 127.0.0.1 answering every request with `handler` (default 200 `{"keys":[]}`). */
export async function startCountingServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end('{"keys":[]}')
  },
): Promise<CountingServer> {
  let count = 0
  const server: Server = createServer((req, res) => {
    count++
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get count() {
      return count
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A loopback port with nothing listening on it (connection refused). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Rejects if `promise` does not settle within `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms)
    }),
  ])
}
