// Records every message published on the package's diagnostics channels, in order.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { DIAGNOSTICS_CHANNELS } from 'passport-agentpress-partner/diagnostics'

export type ChannelKey = keyof typeof DIAGNOSTICS_CHANNELS

export interface Recorder {
  /** Every [channel key, message] received, in order. */
  readonly all: Array<[ChannelKey, Record<string, unknown>]>
  /** The messages of one channel, in order. */
  of(key: ChannelKey): Array<Record<string, unknown>>
  clear(): void
  stop(): void
}

/** Subscribes to every channel except the tracing one (see `recordTrace`). */
export function recordChannels(): Recorder {
  const all: Array<[ChannelKey, Record<string, unknown>]> = []
  const listeners: Array<[string, (message: unknown) => void]> = []
  for (const key of Object.keys(DIAGNOSTICS_CHANNELS) as ChannelKey[]) {
    if (key === 'tokenVerifyTrace') continue
    const listener = (message: unknown) => all.push([key, message as Record<string, unknown>])
    subscribe(DIAGNOSTICS_CHANNELS[key], listener)
    listeners.push([DIAGNOSTICS_CHANNELS[key], listener])
  }
  return {
    all,
    of: (key) => all.filter(([k]) => k === key).map(([, m]) => m),
    clear: () => {
      all.length = 0
    },
    stop: () => {
      for (const [name, listener] of listeners) unsubscribe(name, listener)
    },
  }
}

/** A message with its `durationMs` checked (finite, >= 0) and removed, for exact comparison. */
export function withoutDuration(message: Record<string, unknown>): Record<string, unknown> {
  const { durationMs, ...rest } = message
  if (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs < 0) {
    throw new Error(`durationMs must be a finite number >= 0, got ${String(durationMs)}`)
  }
  return rest
}
