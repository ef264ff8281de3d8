/**
 * The emergency-revocation records of a fleet instance: the ones it holds (verified), republished
 * on every sync so that a Redis restarted empty gets them back, and the stored ones it reads on
 * every sync — all of them that have not expired, each checked under the webhook secret — so that
 * no junk written by someone without the secret can push a genuine record out of view. A store
 * holding more than can be checked, or a key of the wrong type, is damage: the read fails closed.
 */
import {
  applyRevocation,
  openRevocation,
  revocationText,
  type RevocationRecord,
  type RotationFleetMember,
} from '../core/key-rotation/fleet.js'
import { RedisFleetDamagedError } from './connection.js'
import { MAX_RECORD_CHARS, MAX_RECORDS, READ_SCRIPT, REPUBLISH_SCRIPT } from './fleet-protocol.js'

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
  // Texts already refused: counted and reported once, and not checked again on every sync.
  readonly #refused = new Set<string>()
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

  /** The damage a script met (the type the key holds, `''` for none) as an error, or undefined. */
  damage(reply: unknown): RedisFleetDamagedError | undefined {
    const kind = typeof reply === 'string' ? reply : ''
    return kind === '' ? undefined : this.#wrongType(`a ${kind}`)
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
      const reply = await this.#context.send([
        'EVAL',
        REPUBLISH_SCRIPT,
        '2',
        key,
        key,
        String(now),
        ...republish,
      ])
      const damage = this.damage(reply)
      if (damage !== undefined) throw damage
    }
  }

  /**
   * Reads every stored record that has not expired at `now` and applies each that verifies;
   * rejects with `RedisFleetDamagedError` when the key is not a sorted set or holds more records
   * than a fleet can produce (then some could not be checked: never read as "none revoked").
   */
  async readStored(member: RotationFleetMember, now: number): Promise<void> {
    const { key } = this.#context
    const reply = await this.#context.send([
      'EVAL',
      READ_SCRIPT,
      '1',
      key,
      String(now),
      String(MAX_RECORDS),
      String(MAX_RECORD_CHARS),
    ])
    const [status, detail, ...texts] = Array.isArray(reply) ? (reply as unknown[]) : []
    if (status === 'wrongtype') throw this.#wrongType(`a ${String(detail)}`)
    if (status === 'toomany') {
      throw new RedisFleetDamagedError(
        `${key} holds ${String(detail)} unexpired revocation records, more than the ` +
          `${MAX_RECORDS} a fleet produces and an instance checks: records written without the ` +
          'webhook secret could hide a genuine revocation, so this instance does not serve as ' +
          `ready. Delete the key (DEL ${key}): the running instances write their records back`,
        'too_many_records',
      )
    }
    if (status !== 'ok') throw this.#wrongType('something unreadable')
    const before = this.#context.stats.recordsRefused
    const reasons = new Set<string>()
    // Longer than any genuine record: junk, counted as refused (never read, never checked).
    if (typeof detail === 'number' && detail > 0) {
      this.#context.stats.recordsRefused += detail
      reasons.add('it does not verify')
    }
    for (const text of texts) {
      const why = this.apply(member, String(text), true)
      if (typeof why === 'string') reasons.add(why)
    }
    const refused = this.#context.stats.recordsRefused - before
    if (refused > 0) {
      this.#context.report(
        new Error(`refused ${refused} stored revocation record(s): ${[...reasons].join('; ')}`),
      )
    }
  }

  /**
   * Applies a record's text (stored, or carried by a relay) if it verifies and its secret may act
   * on its issuer here (§5). A refused text is counted once and its reason returned (`false` for
   * one refused before); `quiet` leaves the report to the caller.
   */
  apply(member: RotationFleetMember, text: string, quiet = false): true | false | string {
    if (this.#refused.has(text)) return false
    const opened = openRevocation(member.prepared, text, Date.now())
    if (opened.record === undefined) {
      if (this.#refused.size >= MAX_RECORDS) this.#refused.clear()
      this.#refused.add(text)
      this.#context.stats.recordsRefused++
      if (!quiet) this.#context.report(new Error(`refused a revocation record: ${opened.refused}`))
      return opened.refused
    }
    applyRevocation(member.verifiers, opened.record)
    if (this.hold(opened.record)) this.#context.stats.recordsApplied++
    return true
  }

  #wrongType(what: string): RedisFleetDamagedError {
    const { key } = this.#context
    return new RedisFleetDamagedError(
      `${key} holds ${what}, not the sorted set of revocation records: another writer changed ` +
        `it, so stored revocations can be neither read nor written. Delete it (DEL ${key}): the ` +
        'running instances write their records back',
      'wrong_type',
    )
  }
}
