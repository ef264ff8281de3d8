/**
 * What travels through Redis between instances: the relay envelope (the signed delivery as
 * received, plus the MAC'd revocation record of an emergency) and the Lua scripts that write
 * records, markers and relays atomically. Nothing here is trusted on arrival: `openRelay`
 * re-verifies the delivery with this instance's own webhook secret and window.
 */
import type { KeyRotationEvent } from '../core/key-rotation/event.js'
import { verifyPrepared, type PreparedKeyRotation } from '../core/key-rotation/verify.js'
import type { SignedDelivery } from '../core/key-rotation/fleet.js'

/** How long a processed-delivery marker is kept: the router's own memory, 24 h. */
export const PROCESSED_TTL_MS = 24 * 60 * 60 * 1000
/** Most stored records read per sync. */
export const MAX_RECORDS = 1000
/** Largest relayed message accepted: an 8 KB body in base64 plus the headers. */
const MAX_MESSAGE_CHARS = 16_384

// Drops expired records and keeps the set's own expiry at its latest record.
const TRIM = `redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[2], last[2]) end`

// KEYS: processed marker, revocation set. ARGV: now, marker ('' for none), marker ttl, channel,
// message, record expiry, record text (both '' when not an emergency). One atomic step: the
// marker, the record and the relay exist together or not at all.
export const PUBLISH_SCRIPT = `if ARGV[7] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7]) end
${TRIM}
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return redis.call('PUBLISH', ARGV[4], ARGV[5])`

// KEYS: unused, revocation set. ARGV: now, then (expiry, text) pairs.
export const REPUBLISH_SCRIPT = `for i = 2, #ARGV, 2 do redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
${TRIM}
return 1`

/** The message published for a delivery this instance verified and applied. @internal */
export function relayMessage(
  origin: string,
  delivery: SignedDelivery,
  revocation: string | undefined,
): string {
  return JSON.stringify({
    origin,
    body: Buffer.from(delivery.body).toString('base64'),
    timestamp: delivery.timestamp,
    signature: delivery.signature,
    revocation,
  })
}

/** What a received message is. @internal */
export type OpenedRelay =
  | { readonly kind: 'own' }
  | { readonly kind: 'refused'; readonly why: string }
  | { readonly kind: 'event'; readonly event: KeyRotationEvent; readonly revocation?: string }

/**
 * Parses a relayed message and verifies the delivery it carries as AgentPress signed it, with this
 * instance's own secret and ±window (a relay older than the window is refused; an emergency's
 * revocation also arrives as a stored record).
 *
 * @internal
 */
export function openRelay(
  message: string,
  ownOrigin: string,
  prepared: PreparedKeyRotation,
): OpenedRelay {
  if (message.length > MAX_MESSAGE_CHARS) return { kind: 'refused', why: 'too large' }
  let envelope: unknown
  try {
    envelope = JSON.parse(message)
  } catch {
    return { kind: 'refused', why: 'not JSON' }
  }
  if (typeof envelope !== 'object' || envelope === null) {
    return { kind: 'refused', why: 'not an object' }
  }
  const { origin, body, timestamp, signature, revocation } = envelope as Record<string, unknown>
  if (origin === ownOrigin) return { kind: 'own' } // applied before it was published
  if (typeof body !== 'string' || typeof timestamp !== 'string' || typeof signature !== 'string') {
    return { kind: 'refused', why: 'fields missing' }
  }
  try {
    const event = verifyPrepared(prepared, Buffer.from(body, 'base64'), {
      'x-agentpress-timestamp': timestamp,
      'x-agentpress-signature': signature,
    })
    // Only rotations are published; an authentic body that names none is nothing to apply.
    if ('ignored' in event) return { kind: 'refused', why: 'not a rotation' }
    return typeof revocation === 'string'
      ? { kind: 'event', event, revocation }
      : { kind: 'event', event }
  } catch (error) {
    return { kind: 'refused', why: error instanceof Error ? error.message : 'does not verify' }
  }
}
