/**
 * The two signature headers of a key-rotation delivery (§5), read before any HMAC: the
 * signature entries, each format-checked, and the timestamp and its window.
 */
import { KeyRotationVerifyError } from './errors.js'

/** Request headers as a delivery gives them; names in any case. @internal */
export type DeliveryHeaders = Readonly<Record<string, string | readonly string[] | undefined>>

// Most signature entries one header may carry; more is refused before any HMAC (§5).
const MAX_SIGNATURES = 8
// Header names, lower-case as Node delivers them.
export const TIMESTAMP_HEADER = 'x-agentpress-timestamp'
export const SIGNATURE_HEADER = 'x-agentpress-signature'

/** The value of header `name` (lower-case), any spelling of it joined as Node does. @internal */
export function header(headers: DeliveryHeaders, name: string): string | undefined {
  let found: string | undefined
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== name) continue
    const value = headers[key]
    const text =
      typeof value === 'string' ? value : Array.isArray(value) ? value.join(', ') : undefined
    // Two spellings of the same header are two header lines: join them as Node does.
    if (text !== undefined) found = found === undefined ? text : `${found}, ${text}`
  }
  return found
}

// `sha256=<hex>`, `v1=<hex>` or bare hex; lower-case only, so each MAC has one spelling (§5).
const HEX_ENTRY = /^(?:sha256=|v1=)?([0-9a-f]{64})$/
// `v1,<base64>` (Standard Webhooks / Svix): exactly the 44 characters of a padded 32-byte MAC.
const BASE64_ENTRY = /^v1,([A-Za-z0-9+/]{43}=)$/

/**
 * Parses the signature header into at most eight 32-byte MACs. Space-separated items, each either a
 * `v1,<base64>` entry or a comma-separated list of hex entries. Every entry's format is checked with
 * a regular expression before any decoding — `Buffer.from(hex)` silently stops at the first non-hex
 * character and base64 decoding is lenient — and before `timingSafeEqual`, which throws on a length
 * mismatch (ATTACKS.md).
 *
 * @internal
 */
export function parseSignatures(value: string): Buffer[] {
  const entries: string[] = []
  for (const item of value.split(' ')) {
    if (item === '') continue
    if (item.startsWith('v1,')) entries.push(item)
    else for (const entry of item.split(',')) if (entry !== '') entries.push(entry)
    if (entries.length > MAX_SIGNATURES) break
  }
  if (entries.length > MAX_SIGNATURES) {
    throw new KeyRotationVerifyError('signature_mismatch', {
      cause: new Error(`more than ${MAX_SIGNATURES} signature entries`),
    })
  }
  const macs: Buffer[] = []
  for (const entry of entries) {
    // A malformed entry cannot match; it is skipped so a well-formed one beside it still counts.
    const hex = HEX_ENTRY.exec(entry)
    if (hex !== null) {
      macs.push(Buffer.from(hex[1]!, 'hex'))
      continue
    }
    const base64 = BASE64_ENTRY.exec(entry)
    if (base64 === null) continue
    const mac = Buffer.from(base64[1]!, 'base64')
    // One spelling per MAC: a non-canonical final character is malformed, not an alias.
    if (mac.length === 32 && mac.toString('base64') === base64[1]) macs.push(mac)
  }
  return macs
}

/** Checks the timestamp header: digits only, within ±`toleranceSec` of the clock. @internal */
export function parseTimestamp(value: string, toleranceSec: number, nowMs: number): void {
  // Digits only [§5, ours]: no sign, no decimals, no exponent, no hex, no spaces, which
  // Number() and parseInt() would otherwise accept in some form.
  if (!/^[0-9]{1,16}$/.test(value)) throw new KeyRotationVerifyError('invalid_timestamp')
  const timestamp = Number(value)
  const now = Math.floor(nowMs / 1000)
  if (!Number.isFinite(now) || Math.abs(now - timestamp) > toleranceSec) {
    throw new KeyRotationVerifyError('timestamp_out_of_window')
  }
}
