// The Ed25519 backends every suite that judges signatures runs with (docs/ed25519-backends.md):
// node:crypto, the default, and libsodium (sodium-native is a devDependency, so `npm test` covers
// both on every Node line .ci/run tests).
import type { PartnerTokenVerifierOptions } from 'passport-agentpress-partner'

/** The values of the `ed25519` verifier option. */
export type Ed25519BackendName = NonNullable<PartnerTokenVerifierOptions['ed25519']>

export const ED25519_BACKENDS: readonly Ed25519BackendName[] = ['node:crypto', 'libsodium']
