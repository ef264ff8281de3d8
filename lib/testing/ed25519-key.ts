/**
 * A fresh Ed25519 key pair for the test kit, with its public `x` (RFC 8037 §2).
 *
 * Not `generateKeyPairSync`: on Node 20 a key from it can deadlock the process when it is exported
 * while a garbage collection runs (the collected key-generation job locks the mutex the export
 * holds: `~KeyGenJob` inside `ExportJWKEdKey`, caught with gdb on a consumer app that hung for
 * 240 s). A key built from its seed has no generation job behind it.
 */
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto'

// RFC 8410 §7: the PKCS#8 encoding of an Ed25519 private key is this prefix and the 32-byte seed.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** @internal */
export interface Ed25519KeyPair {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** The public key's 32 bytes, base64url (a JWK's `x`). */
  readonly x: string
}

/** @internal */
export function newEd25519KeyPair(): Ed25519KeyPair {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, randomBytes(32)]),
    format: 'der',
    type: 'pkcs8',
  })
  const publicKey = createPublicKey(privateKey)
  // SPKI DER of an Ed25519 key ends with its 32 raw bytes (RFC 8410 §4).
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  return { privateKey, publicKey, x: spki.subarray(spki.length - 32).toString('base64url') }
}
