/**
 * What travels through Redis between instances: the relay envelope (the signed delivery as
 * received, plus the MAC'd revocation records of an emergency) and the Lua scripts that write
 * records, markers and relays atomically. Nothing here is trusted on arrival: `openRelay`
 * re-verifies the delivery with this instance's own webhook secret and window.
 */
import type { KeyRotationEvent } from '../core/key-rotation/event.js'
import { verifyPrepared, type PreparedKeyRotation } from '../core/key-rotation/verify.js'
import type { SignedDelivery } from '../core/key-rotation/fleet.js'

/** How long a processed-delivery marker is kept: the router's own memory, 24 h. */
export const PROCESSED_TTL_MS = 24 * 60 * 60 * 1000
/**
 * Most stored records a sync reads and checks. A genuine fleet writes one record per processed
 * emergency delivery (a retry after a 503 signs its own), kept 25 h: thousands are already far
 * beyond it. A store holding more is damaged (a writer without the secret): the sync fails closed.
 */
export const MAX_RECORDS = 10_000
/** Longest record text read (a genuine one is a few hundred characters). */
export const MAX_RECORD_CHARS = 4096
/**
 * Largest relayed message published or accepted: a delivery body of at most 8 KiB
 * (`KEY_ROTATION_MAX_BODY_BYTES`) in base64, its headers, and one record.
 */
export const MAX_MESSAGE_CHARS = 16_384

// The revocation set's part of a script. Every call on the set is a pcall: a key of the wrong
// type (planted by another writer) must not stop the marker and the relay written in the same
// script; it is reported as `damaged` instead (the type the key holds). After the writes (`ADD`), drops expired records
// and keeps the set's own expiry at its latest record.
const RECORDS = (add: string): string => `local damaged = ''
local function zcall(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err then
    local kind = redis.call('TYPE', KEYS[2])['ok']
    if kind ~= 'zset' then damaged = kind end
    return nil
  end
  return reply
end
${add}
zcall('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local last = zcall('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last and last[2] then redis.call('PEXPIREAT', KEYS[2], last[2]) end`

// KEYS: processed marker, revocation set. ARGV: now, marker ('' for none), marker ttl, channel,
// message ('' for none: the relay already went out), then (expiry, text) of each record (none
// when not an emergency). One atomic step: the marker, the records and the relay exist together.
// Returns { receivers, damage ('' when the set is sound) }.
export const PUBLISH_SCRIPT = `${RECORDS("for i = 6, #ARGV, 2 do zcall('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end")}
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
local receivers = 0
if ARGV[5] ~= '' then receivers = redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return { receivers, damaged }`

// KEYS: unused, revocation set. ARGV: now, then (expiry, text) pairs. Returns the damage ('').
export const REPUBLISH_SCRIPT = `${RECORDS("for i = 2, #ARGV, 2 do zcall('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end")}
return damaged`

// KEYS: revocation set. ARGV: now, most records, longest text. Every record not expired at `now`
// in one reply (never a page that junk expiring sooner could fill), or why not:
// { 'ok', skipped (too long to be genuine), text, text, … } | { 'wrongtype', type } |
// { 'toomany', count }.
export const READ_SCRIPT = `local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return { 'ok', 0 } end
if kind ~= 'zset' then return { 'wrongtype', kind } end
local count = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
if count > tonumber(ARGV[2]) then return { 'toomany', count } end
local texts = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local reply = { 'ok', 0 }
local longest = tonumber(ARGV[3])
for _, text in ipairs(texts) do
  if #text <= longest then reply[#reply + 1] = text else reply[2] = reply[2] + 1 end
end
return reply`

/** Most records one relay carries (one per issuer of the delivery's secret). */
export const MAX_RELAYED_RECORDS = 64

/**
 * The message published for a delivery this instance verified and applied, carrying the texts of
 * its revocation records: one as `revocation` (the format every version reads), several as
 * `revocations`.
 *
 * @internal
 */
export function relayMessage(
  origin: string,
  delivery: SignedDelivery,
  revocations: readonly string[],
): string {
  return JSON.stringify({
    origin,
    body: Buffer.from(delivery.body).toString('base64'),
    timestamp: delivery.timestamp,
    signature: delivery.signature,
    ...(revocations.length === 1
      ? { revocation: revocations[0] }
      : revocations.length > 1
        ? { revocations }
        : {}),
  })
}

/** What a received message is; `revocations`: the record texts it carries (unverified). @internal */
export type OpenedRelay =
  | { readonly kind: 'own' }
  | { readonly kind: 'refused'; readonly why: string; readonly revocations: readonly string[] }
  | {
      readonly kind: 'event'
      readonly event: KeyRotationEvent
      readonly revocations: readonly string[]
    }

// The record texts of an envelope: `revocation` (one) and `revocations` (several).
function carriedRecords(envelope: Record<string, unknown>): readonly string[] {
  const { revocation, revocations } = envelope
  const list = Array.isArray(revocations) ? revocations.slice(0, MAX_RELAYED_RECORDS) : []
  if (typeof revocation === 'string') list.push(revocation)
  return list.filter((text): text is string => typeof text === 'string')
}

/**
 * Parses a relayed message and verifies the delivery it carries as AgentPress signed it, with this
 * instance's own secret and ±window. A relay whose delivery is refused (older than the window, for
 * one) still hands over the revocation records it carries: each has its own MAC and is applied if
 * it verifies (under a secret bound to its issuer), whatever the relay's age.
 *
 * @internal
 */
export function openRelay(
  message: string,
  ownOrigin: string,
  prepared: PreparedKeyRotation,
): OpenedRelay {
  const none: readonly string[] = []
  if (message.length > MAX_MESSAGE_CHARS) {
    return { kind: 'refused', why: 'too large', revocations: none }
  }
  let envelope: unknown
  try {
    envelope = JSON.parse(message)
  } catch {
    return { kind: 'refused', why: 'not JSON', revocations: none }
  }
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
    return { kind: 'refused', why: 'not an object', revocations: none }
  }
  const { origin, body, timestamp, signature } = envelope as Record<string, unknown>
  if (origin === ownOrigin) return { kind: 'own' } // applied before it was published
  const carried = { revocations: carriedRecords(envelope as Record<string, unknown>) }
  if (typeof body !== 'string' || typeof timestamp !== 'string' || typeof signature !== 'string') {
    return { kind: 'refused', why: 'fields missing', ...carried }
  }
  try {
    const event = verifyPrepared(prepared, Buffer.from(body, 'base64'), {
      'x-agentpress-timestamp': timestamp,
      'x-agentpress-signature': signature,
    })
    // Only rotations are published; an authentic body that names none is nothing to apply.
    if ('ignored' in event) return { kind: 'refused', why: 'not a rotation', ...carried }
    return { kind: 'event', event, ...carried }
  } catch (error) {
    const why = error instanceof Error ? error.message : 'does not verify'
    return { kind: 'refused', why, ...carried }
  }
}
