// The Ed25519 backends every suite that judges signatures runs with (docs/ed25519-backends.md):
// node:crypto, the default, and libsodium (sodium-native is a devDependency, so `npm test` covers
// both on every Node line .ci/run tests).
import type { Ed25519BackendName } from 'passport-agentpress-partner'

export const ED25519_BACKENDS: readonly Ed25519BackendName[] = ['node:crypto', 'libsodium']
