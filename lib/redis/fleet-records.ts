/**
 * The emergency-revocation records of a fleet instance: the ones it holds (verified), republished
 * after every reconnect so that a Redis restarted empty gets them back, and the stored ones it
 * reads on every (re)connect and applies once they verify under the webhook secret.
 */
import {
  applyRevocation,
  openRevocation,
  revocationText,
  type RevocationRecord,
  type RotationFleetMember,
} from '../core/key-rotation/fleet.js'
import { MAX_RECORDS, REPUBLISH_SCRIPT } from './fleet-protocol.js'

/** What the records need from their fleet. @internal */
export interface FleetRecordsContext {
  /** The sorted set of stored records. */
  readonly key: string
  /** Sends one command within the fleet's deadline. */
  readonly send: (args: string[]) => Promise<unknown>
  /** The fleet's counters (`RedisFleetStats`). */
  readonly stats: { recordsApplied: number; recordsRefused: number }
  readonly report: (error: Error) => void
}

/** @internal */
export class FleetRecords {
  // Records this instance holds (verified), keyed by issuer + kid.
  readonly #held = new Map<string, RevocationRecord>()
  readonly #context: FleetRecordsContext

  constructor(context: FleetRecordsContext) {
    this.#context = context
  }

  /** Holds a verified record; returns whether it is new to this instance. */
  hold(record: RevocationRecord): boolean {
    const key = `${record.issuer}\n${record.kid}`
    const known = this.#held.get(key)
    if (known === undefined || known.expiresAtMs < record.expiresAtMs) this.#held.set(key, record)
    return known === undefined
  }

  /** Writes every held record that has not expired back to Redis (and forgets the expired). */
  async republish(now: number): Promise<void> {
    const republish: string[] = []
    for (const [key, record] of this.#held) {
      if (record.expiresAtMs <= now) this.#held.delete(key)
      else republish.push(String(record.expiresAtMs), revocationText(record))
    }
    if (republish.length > 0) {
      const { key } = this.#context
      await this.#context.send(['EVAL', REPUBLISH_SCRIPT, '2', key, key, String(now), ...republish])
    }
  }

  /** Reads the stored records that have not expired at `now` and applies each that verifies. */
  async readStored(member: RotationFleetMember, now: number): Promise<void> {
    const texts = await this.#context.send([
      'ZRANGEBYSCORE',
      this.#context.key,
      `(${now}`,
      '+inf',
      'LIMIT',
      '0',
      String(MAX_RECORDS),
    ])
    for (const text of Array.isArray(texts) ? texts : []) this.apply(member, String(text))
  }

  /** Applies a record's text (stored, or carried by a relay) if it verifies. */
  apply(member: RotationFleetMember, text: string): boolean {
    const record = openRevocation(member.prepared.secrets, text, Date.now())
    if (record === undefined) {
      this.#context.stats.recordsRefused++
      this.#context.report(new Error('refused a stored revocation that does not verify'))
      return false
    }
    applyRevocation(member.verifiers, record)
    if (this.hold(record)) this.#context.stats.recordsApplied++
    return true
  }
}
