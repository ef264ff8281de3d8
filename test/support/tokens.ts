// Helpers to craft tokens the mock would never mint: arbitrary headers, payloads and signatures.
import { createHmac, sign, type KeyObject } from 'node:crypto'

export const b64url = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** Signs `<b64(header)>.<b64(payload)>` with an Ed25519 private key. */
export function signWith(
  privateKey: KeyObject,
  header: Record<string, unknown> | string,
  payload: Record<string, unknown> | string,
): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`
}

/** HS256 over the signing input keyed with `secret` (algorithm-confusion attempts). */
export function hmacToken(header: unknown, payload: unknown, secret: Buffer | string): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** Splits a compact token into its three parts. */
export function parts(token: string): [string, string, string] {
  const [h, p, s] = token.split('.')
  return [h!, p!, s!]
}

/** Decodes the payload of a compact token. */
export function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(parts(token)[1], 'base64url').toString())
}

/** Flips one bit of the character at `index` of a base64url segment, keeping it canonical. */
export function flipChar(segment: string, index: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const c = alphabet.indexOf(segment[index]!)
  // Flip the highest bit of the 6: never touches the spare low bits of a final character.
  return segment.slice(0, index) + alphabet[c ^ 0x20] + segment.slice(index + 1)
}
