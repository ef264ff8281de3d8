// §4's fixed descriptions, written out from the spec rather than read from the library's
// table, so tests check the library against the contract and not against itself.
export const SPEC_DESCRIPTIONS = {
  malformed: 'Malformed token',
  alg_not_allowed: 'Algorithm not allowed',
  kid_missing_or_unknown: 'Signing key not found',
  signature_invalid: 'Signature verification failed',
  issuer_mismatch: 'Issuer does not match',
  audience_mismatch: 'Audience does not match',
  expired: 'Token expired',
  not_yet_valid: 'Token not yet valid',
  missing_claim: 'Required claim missing or invalid',
  ext_provider_mismatch: 'ext_provider does not match',
  token_replayed: 'Token already used',
} as const
