/**
 * The hostile tokens `check` sends. None can be valid at a correct server: each is unsigned,
 * signed with the wrong algorithm, signed by a key `check` made up a moment ago, or (with
 * `--issuer`) minted by the mock with one claim wrong. `check` holds no AgentPress key and never
 * sees a real token.
 */
import { createHmac, createPublicKey, randomBytes, sign } from 'node:crypto'
import { newEd25519KeyPair } from '../ed25519-key.js'
import type { KeyObject } from 'node:crypto'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** An Ed25519 key pair nobody published, with its public JWK. */
export interface ForeignKey {
  readonly privateKey: KeyObject
  readonly publicJwk: Record<string, unknown>
}

export function foreignKey(kid: string): ForeignKey {
  const { privateKey, x } = newEd25519KeyPair()
  return { privateKey, publicJwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' } }
}

/** `header.payload.signature`, EdDSA-signed by `key`. */
export function signEdDSA(
  key: KeyObject,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): string {
  const input = `${b64({ alg: 'EdDSA', typ: 'JWT', ...header })}.${b64(claims)}`
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`
}

/** `alg: none`: no signature at all (the trailing dot of RFC 7519 §6.1). */
export function unsigned(kid: string | undefined, claims: Record<string, unknown>): string {
  return `${b64({ alg: 'none', typ: 'JWT', ...(kid === undefined ? {} : { kid }) })}.${b64(claims)}.`
}

/**
 * Algorithm confusion (RFC 8725 §2.1): HS256 with the published public key as the HMAC secret,
 * in the PEM form a library that accepts "a key" for any algorithm would use.
 */
export function hs256WithPublicKey(
  publicJwk: Record<string, unknown> | undefined,
  kid: string | undefined,
  claims: Record<string, unknown>,
): string {
  const secret =
    publicJwk === undefined
      ? randomBytes(32)
      : createPublicKey({ key: publicJwk as never, format: 'jwk' }).export({
          type: 'spki',
          format: 'pem',
        })
  const input = `${b64({ alg: 'HS256', typ: 'JWT', ...(kid === undefined ? {} : { kid }) })}.${b64(claims)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** Claims a plausible AgentPress token carries, from what the server tells about itself. */
export function plausibleClaims(options: {
  issuer: string
  audience: string
  extProvider: string
  scope: string
}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return {
    iss: options.issuer,
    aud: options.audience,
    ext_provider: options.extProvider,
    sub: 'agentpress-check',
    jti: randomBytes(12).toString('base64url'),
    scope: options.scope,
    iat: now,
    exp: now + 60,
  }
}
