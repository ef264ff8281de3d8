/**
 * The libsodium Ed25519 backend: `crypto_sign_verify_detached` from the optional peer
 * `sodium-native`, on the raw 32-byte key cached per kid. Selected with
 * `ed25519: 'libsodium'` in any verifier options; see docs/ed25519-backends.md.
 *
 * It lives outside the core because it loads a package (a core file imports only core and
 * node:*): the package root imports this module, which only registers the loader with the core;
 * `sodium-native` itself is required the first time a verifier asks for it, never before.
 */
import type { Ed25519Backend, Ed25519Key } from '../core/token/ed25519.js'
import { provideEd25519Backend } from '../core/token/ed25519-backend.js'

/** The one function of `sodium-native` this backend calls. */
interface SodiumNative {
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean
}

/** The install command the construction error names. */
export const INSTALL_SODIUM = 'npm install sodium-native'

// RFC 8032 §7.1, test 1 (empty message): checked once at load, so a broken binding is a
// construction error rather than a verifier that refuses (or accepts) everything.
const KAT = {
  key: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
}

function loadSodium(): SodiumNative {
  try {
    require.resolve('sodium-native')
  } catch {
    throw new TypeError(`sodium-native is not installed: run \`${INSTALL_SODIUM}\``)
  }
  let sodium: Partial<SodiumNative>
  try {
    sodium = require('sodium-native') as Partial<SodiumNative>
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error)
    throw new TypeError(
      `sodium-native could not be loaded (${why}): reinstall it with \`${INSTALL_SODIUM}\``,
    )
  }
  if (typeof sodium.crypto_sign_verify_detached !== 'function') {
    throw new TypeError(
      `sodium-native has no crypto_sign_verify_detached: install a current version with \`${INSTALL_SODIUM}\``,
    )
  }
  return sodium as SodiumNative
}

function libsodiumBackend(): Ed25519Backend {
  const sodium = loadSodium()
  const backend: Ed25519Backend = Object.freeze({
    name: 'libsodium' as const,
    importKey(bytes: Buffer): Ed25519Key {
      // A copy of its own: the cached key never shares memory with a parsed document.
      return Buffer.from(bytes)
    },
    verify(key: Ed25519Key, message: Buffer, signature: Buffer): boolean {
      try {
        return sodium.crypto_sign_verify_detached(signature, message, key as Buffer)
      } catch {
        return false
      }
    },
  })
  const key = Buffer.from(KAT.key, 'hex')
  const signature = Buffer.from(KAT.signature, 'hex')
  const tampered = Buffer.from(signature)
  tampered[0]! ^= 1
  if (
    !backend.verify(key, Buffer.alloc(0), signature) ||
    backend.verify(key, Buffer.alloc(0), tampered)
  ) {
    throw new TypeError(
      `sodium-native failed the RFC 8032 self-test: reinstall it with \`${INSTALL_SODIUM}\``,
    )
  }
  return backend
}

provideEd25519Backend('libsodium', libsodiumBackend)
