// Small-order Ed25519 keys and the S = 0 forgery they admit. Whether the runtime's own
// crypto.verify accepts such a forgery depends on the Node/OpenSSL build (Node 20 and 22 do, Node 24
// refuses it): that is reported, never required. What the tests require, on every Node, is that the
// package refuses the forged token.
import { createPublicKey, verify as cryptoVerify } from 'node:crypto'

/** The identity point's canonical encoding: 0x01 then 31 zero bytes. */
export const IDENTITY_POINT: Buffer = (() => {
  const bytes = Buffer.alloc(32)
  bytes[0] = 1
  return bytes
})()

export interface SmallOrderForgery {
  /** The `<header>.<payload>` signing input the signature is offered for. */
  input: string
  /** R (the identity or the point itself) followed by S = 0. */
  signature: Buffer
  /** `input.signature` as a compact JWS. */
  token: string
  /** Whether the runtime's crypto.verify, with the raw key, accepts this signature. */
  runtimeAdmits: boolean
}

/**
 * An S = 0 forgery for the small-order `point`: the first of `tries` signing inputs (`inputAt(i)`)
 * for which the runtime's crypto.verify accepts R = identity or R = point with S = 0; when the
 * runtime refuses every candidate, the first candidate (R = identity), marked `runtimeAdmits: false`.
 */
export function smallOrderForgery(
  point: Buffer,
  inputAt: (i: number) => string,
  tries = 256,
): SmallOrderForgery {
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') },
    format: 'jwk',
  })
  const candidates = [IDENTITY_POINT, point]
  for (let i = 0; i < tries; i++) {
    const input = inputAt(i)
    for (const r of candidates) {
      const signature = Buffer.concat([r, Buffer.alloc(32)])
      if (cryptoVerify(null, Buffer.from(input), key, signature)) {
        return {
          input,
          signature,
          token: `${input}.${signature.toString('base64url')}`,
          runtimeAdmits: true,
        }
      }
    }
  }
  const input = inputAt(0)
  const signature = Buffer.concat([IDENTITY_POINT, Buffer.alloc(32)])
  return {
    input,
    signature,
    token: `${input}.${signature.toString('base64url')}`,
    runtimeAdmits: false,
  }
}

/**
 * The informational half of a small-order test, as its own `it`: passes when the runtime admits
 * the forgery (which is why the package must refuse such keys at import), and is skipped with the
 * reason in its title when the runtime refuses it.
 */
export function reportRuntimeAdmits(ctx: Mocha.Context, admitted: boolean, what: string): void {
  if (admitted) return
  ctx.test!.title += ` (skipped: ${process.version}'s crypto.verify refuses ${what} by itself)`
  ctx.skip()
}
