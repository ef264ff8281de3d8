/**
 * Which Ed25519 backend a verifier uses (`options.ed25519`): `node:crypto` (the default, always
 * there) or `libsodium` (the optional peer `sodium-native`).
 *
 * A core file never loads a package, so the libsodium backend is provided from outside the core:
 * `lib/libsodium/backend.ts` registers its loader here when the package root loads, and the loader
 * runs only when a verifier asks for `'libsodium'`, once per process. Nothing here, and nothing for
 * a user who never asks for it, touches `sodium-native`.
 */
import { NODE_CRYPTO_BACKEND, type Ed25519Backend, type Ed25519BackendName } from './ed25519.js'

/**
 * Loads a backend, or throws a `TypeError` saying what to install.
 *
 * @internal
 */
export type Ed25519BackendLoader = () => Ed25519Backend

const loaders = new Map<string, Ed25519BackendLoader>()
const loaded = new Map<string, Ed25519Backend>()

/**
 * Registers the loader of an optional backend (called once, by the module that owns it).
 *
 * @internal
 */
export function provideEd25519Backend(name: Ed25519BackendName, load: Ed25519BackendLoader): void {
  loaders.set(name, load)
}

/**
 * The backend `options.ed25519` names (default `node:crypto`), loaded on first use; a `TypeError`
 * naming the option when the value is unknown or the backend cannot be loaded.
 *
 * @internal
 */
export function resolveEd25519Backend(value: unknown, name = 'options.ed25519'): Ed25519Backend {
  if (value === undefined || value === 'node:crypto') return NODE_CRYPTO_BACKEND
  if (value !== 'libsodium') {
    throw new TypeError(
      `${name} must be "node:crypto" or "libsodium", got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`,
    )
  }
  const ready = loaded.get(value)
  if (ready !== undefined) return ready
  const load = loaders.get(value)
  if (load === undefined) {
    // Only reachable when the core is loaded without the package root (not a public path).
    throw new TypeError(`${name} "libsodium" is not available: import passport-agentpress-partner`)
  }
  let backend: Ed25519Backend
  try {
    backend = load()
  } catch (error) {
    if (error instanceof TypeError)
      throw new TypeError(`${name} is "libsodium", but ${error.message}`)
    throw error
  }
  loaded.set(value, backend)
  return backend
}
