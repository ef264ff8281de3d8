/**
 * Durations as options give them: seconds, or one number and a unit (`"30s"`, `"1m"`).
 */

const UNITS: Record<string, number> = {
  s: 1,
  sec: 1,
  secs: 1,
  second: 1,
  seconds: 1,
  m: 60,
  min: 60,
  mins: 60,
  minute: 60,
  minutes: 60,
  h: 3600,
  hr: 3600,
  hrs: 3600,
  hour: 3600,
  hours: 3600,
}

/**
 * Parses a clock tolerance: a finite, non-negative number of seconds, or a duration string of one
 * number and a unit (`"30s"`, `"1m"`, `"1.5 minutes"`, `"2h"`).
 *
 * @internal
 */
export function parseDurationSec(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new TypeError(`${name} must be a finite number of seconds >= 0, got ${value}`)
    }
    return value
  }
  if (typeof value === 'string') {
    const match = /^(\d+(?:\.\d+)?) ?([a-z]+)$/i.exec(value.trim())
    const unit = match && UNITS[match[2]!.toLowerCase()]
    if (match && typeof unit === 'number') return Number(match[1]) * unit
    throw new TypeError(
      `${name} must be a number of seconds or a duration such as "30s" or "1m", got ${JSON.stringify(value)}`,
    )
  }
  throw new TypeError(
    `${name} must be a number of seconds or a duration string, got ${typeof value}`,
  )
}
