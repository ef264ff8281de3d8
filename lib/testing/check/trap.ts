/**
 * The trap: a loopback server the `jku` / `x5u` headers of hostile tokens point at. It serves a
 * key set holding the forger's key (what an attacker would host) and counts every request by
 * path. A correct verifier never fetches a URL a token names (RFC 8725 §3.10, wire contract §2),
 * so after the run every count must be zero.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Trap {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  /** Requests seen on `path` (e.g. `/jku.json`). */
  count(path: string): number
  close(): Promise<void>
}

export async function startTrap(jwks: unknown): Promise<Trap> {
  const counts = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    counts.set(path, (counts.get(path) ?? 0) + 1)
    res.setHeader('Content-Type', 'application/json')
    res.setHeader('Connection', 'close')
    res.end(JSON.stringify(jwks))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    count: (path) => counts.get(path) ?? 0,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
