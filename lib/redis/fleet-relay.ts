/**
 * The relays of a fleet instance: the one command that publishes a delivery it applied (with the
 * processed marker and an emergency's record), and what it does with a relay another instance
 * published (re-verified by `openRelay`, then applied like a delivery received here).
 */
import type {
  RevocationRecord,
  RotationFleetMember,
  SignedDelivery,
} from '../core/key-rotation/fleet.js'
import { revocationText } from '../core/key-rotation/fleet.js'
import type { FleetRecords } from './fleet-records.js'
import {
  MAX_MESSAGE_CHARS,
  openRelay,
  PROCESSED_TTL_MS,
  PUBLISH_SCRIPT,
  relayMessage,
} from './fleet-protocol.js'

/** Where a fleet publishes, and who it is. @internal */
export interface RelayTarget {
  /** This instance's id: its own relays come back to it and are skipped. */
  readonly origin: string
  readonly channel: string
  readonly revocationsKey: string
}

/**
 * The `EVAL` of `PUBLISH_SCRIPT` for one delivery: the processed marker (`''` for none), the
 * records of an emergency and the relay (none for `delivery: undefined`: it already went out),
 * written in one atomic step.
 *
 * @internal
 */
export function publishCommand(
  target: RelayTarget,
  processedKey: string,
  marker: string,
  delivery: SignedDelivery | undefined,
  records: readonly RevocationRecord[],
  now: number,
): string[] {
  const texts = records.map(revocationText)
  let message = ''
  if (delivery !== undefined) {
    message = relayMessage(target.origin, delivery, texts)
    // Never more than any receiver accepts. A secret bound to many issuers can make the carried
    // records too many: they are stored in the same step, and the receivers' sync reads them.
    if (message.length > MAX_MESSAGE_CHARS) message = relayMessage(target.origin, delivery, [])
    if (message.length > MAX_MESSAGE_CHARS) {
      throw new RangeError(`a relay is at most ${MAX_MESSAGE_CHARS} characters`)
    }
  }
  return [
    'EVAL',
    PUBLISH_SCRIPT,
    '2',
    processedKey,
    target.revocationsKey,
    String(now),
    marker,
    String(PROCESSED_TTL_MS),
    target.channel,
    message,
    ...records.flatMap((record, i) => [String(record.expiresAtMs), texts[i]!]),
  ]
}

/** What receiving a relay needs from its fleet. @internal */
export interface RelayReceiver {
  readonly origin: string
  readonly records: FleetRecords
  /** The fleet's counters (`RedisFleetStats`). */
  readonly stats: { relaysApplied: number; relaysRefused: number; relaysFailed: number }
  readonly report: (error: Error) => void
}

/** Handles one message of the channel. @internal */
export function receiveRelay(
  receiver: RelayReceiver,
  member: RotationFleetMember,
  message: string,
): void {
  const relay = openRelay(message, receiver.origin, member.prepared)
  if (relay.kind === 'own') return
  // A record MAC'd under the webhook secret revokes, whatever the relay around it (late, say).
  for (const text of relay.revocations) receiver.records.apply(member, text)
  if (relay.kind === 'refused') {
    receiver.stats.relaysRefused++
    receiver.report(new Error(`refused a relayed delivery: ${relay.why}`))
    return
  }
  // Revoked at once (inside apply, before any await); counted once the refresh settled too:
  // applied, or failed (the revocation stands, the keys are not fetched yet) and reported.
  const event = relay.event
  const failed = (why: string): void => {
    receiver.stats.relaysFailed++
    receiver.report(
      new Error(
        `relayed key rotation ${event.id} (${event.issuer ?? 'no issuer'}) not applied in full here: ${why}${
          event.emergency === true ? ' (the retired kid is revoked)' : ''
        }`,
      ),
    )
  }
  member.apply(event).then(
    (result: unknown) => {
      // A router of an older copy resolves its HTTP outcome instead: counted as applied, as before.
      const outcome = result as { applied?: unknown; reason?: unknown } | null | undefined
      if (outcome?.applied === false) failed(String(outcome.reason ?? 'unknown'))
      else receiver.stats.relaysApplied++
    },
    (error: unknown) => failed(error instanceof Error ? error.message : String(error)),
  )
}
