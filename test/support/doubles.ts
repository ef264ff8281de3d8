// Small test doubles shared by the JWKS and webhook suites.
import {
  JwksUnavailableError,
  PartnerTokenError,
  type TokenVerifier,
} from 'passport-agentpress-partner'

/** `'ok'`, or the `reason` of the PartnerTokenError / JwksUnavailableError the promise rejects with. */
export async function reasonOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'ok'
  } catch (error) {
    if (error instanceof PartnerTokenError || error instanceof JwksUnavailableError)
      return error.reason
    throw error
  }
}

/** A verifier that only counts the refreshes and revocations a rotation asks of it. */
export class CountingVerifier implements TokenVerifier {
  refreshes = 0
  revoked: string[] = []
  constructor(readonly issuer?: string) {}
  async verifyToken(): Promise<never> {
    throw new Error('not used')
  }
  async refreshJwks(): Promise<void> {
    this.refreshes++
  }
  revokeKid(kid: string): void {
    this.revoked.push(kid)
  }
}
