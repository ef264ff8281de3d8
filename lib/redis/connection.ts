/**
 * The two Redis connections of a fleet — commands and the subscription — over the official `redis`
 * client (node-redis): the application's own client, or one created from a URL. Commands fail fast
 * while the connection is down and have a deadline, so an outage becomes a 503 at once instead of a
 * request waiting on a queue.
 */
import { createClient } from 'redis'

/**
 * The part of a node-redis client (`createClient()` of the `redis` package) the fleet uses. Any
 * client of the `redis` package, with or without modules, fits.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 *
 * const client: RedisClientLike = createClient({ url: 'redis://127.0.0.1:6379' })
 * ```
 */
export interface RedisClientLike {
  readonly isOpen: boolean
  readonly isReady: boolean
  connect(): Promise<unknown>
  duplicate(): RedisClientLike
  sendCommand(args: string[]): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  on(event: string, listener: RedisListener): unknown
  off(event: string, listener: RedisListener): unknown
  destroy(): void
}

/** An event listener as node-redis types it. @internal */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-redis's own listener type
export type RedisListener = (...args: any[]) => void

/** Redis could not be reached, or did not answer within the deadline. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError'
}

/**
 * The shared data of the fleet is damaged — a key of the wrong type, or more stored records than an
 * instance can check — typically by a writer that lacks the webhook secret. The instance keeps
 * serving what it can but is not `ready`; a starting instance's `start()` rejects with it.
 */
export class RedisFleetDamagedError extends Error {
  override readonly name = 'RedisFleetDamagedError'
  /** `wrong_type` (a key holds another type) or `too_many_records` (more than can be checked). */
  readonly reason: 'wrong_type' | 'too_many_records'

  constructor(message: string, reason: 'wrong_type' | 'too_many_records') {
    super(message)
    this.reason = reason
  }
}

/** `url` as it may be printed: scheme, host, port and database, never the credentials. @internal */
export function printableUrl(url: string): string {
  if (!URL.canParse(url)) return JSON.stringify(url.replace(/\/\/[^/@]*@/, '//'))
  const { protocol, host, pathname } = new URL(url)
  if (host === '') return JSON.stringify(`${protocol}${pathname.replace(/^[^/@]*@/, '')}`)
  return `${protocol}//${host}${pathname === '/' ? '' : pathname}`
}

/** Validates `url` (`redis:` or `rediss:`, parsed once) and creates the owned client. @internal */
export function clientFromUrl(url: unknown, connectTimeoutMs: number): RedisClientLike {
  if (typeof url !== 'string' || !URL.canParse(url)) {
    throw new TypeError('options.url must be an absolute redis: or rediss: URL')
  }
  const parsed = new URL(url)
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new TypeError(`options.url must use redis: or rediss:, got ${parsed.protocol}`)
  }
  if (parsed.hostname === '') {
    throw new TypeError(
      `options.url must name a host, as in ${parsed.protocol}//host:port (two slashes), got ` +
        printableUrl(url),
    )
  }
  if (!/^\/?(?:\d{1,5})?$/.test(parsed.pathname)) {
    throw new TypeError(
      `options.url's path must be a database number, as in ${parsed.protocol}//host:port/0, got ` +
        printableUrl(url),
    )
  }
  return createClient({
    url,
    // No offline queue: while disconnected a command fails at once (503), it never waits.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 1000),
    },
  }) as unknown as RedisClientLike
}

/** Checks that `client` looks like a node-redis client. @internal */
export function checkClient(client: unknown): RedisClientLike {
  const c = client as Partial<Record<keyof RedisClientLike, unknown>> | null
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.sendCommand !== 'function' ||
    typeof c.duplicate !== 'function' ||
    typeof c.on !== 'function' ||
    typeof c.off !== 'function' ||
    typeof c.connect !== 'function'
  ) {
    throw new TypeError('options.client must be a client of the redis package (createClient())')
  }
  return client as RedisClientLike
}

/**
 * Sends one command with a deadline; rejects with `RedisUnavailableError` when the connection is
 * not ready (nothing is queued) or the answer does not arrive in time.
 *
 * @internal
 */
export function send(client: RedisClientLike, args: string[], timeoutMs: number): Promise<unknown> {
  if (!client.isReady) return Promise.reject(new RedisUnavailableError('Redis is not connected'))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new RedisUnavailableError(`Redis did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    )
    client.sendCommand(args).then(
      (reply) => {
        clearTimeout(timer)
        resolve(reply)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(new RedisUnavailableError('Redis command failed', { cause: error }))
      },
    )
  })
}
