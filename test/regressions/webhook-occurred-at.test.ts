// §5: "`occurredAt` optional ISO-8601 string". An earlier version accepted only the RFC 3339
// profile, so an authentic rotation with another ISO-8601 spelling was refused with 400
// invalid_payload (AgentPress then retries 5 times and the rotation is never applied).
import { expect } from 'chai'
import {
  KeyRotationVerifyError,
  verifyKeyRotation,
  type KeyRotationEvent,
} from 'passport-agentpress-partner'
import { signWebhook } from 'passport-agentpress-partner/testing'

const secret = 'whsec_reviewsecret012345678900'
const now = Date.UTC(2026, 10, 21, 10, 0, 0)

function verified(occurredAt: unknown) {
  const event = {
    id: 'evt_2f6c1d0e',
    type: 'signing_key_rotation',
    retiredKid: 'ap-2026-08',
    newCurrentKid: 'ap-2026-11',
    occurredAt,
  }
  const { body, headers } = signWebhook(event, { secret, clock: () => now })
  return verifyKeyRotation({ payload: body, headers, secret, clock: () => now }) as KeyRotationEvent
}

function outcome(occurredAt: string): string {
  const event = {
    id: 'evt_2f6c1d0e',
    type: 'signing_key_rotation',
    issuer: 'https://api.agent.press/orgs/acme-org',
    retiredKid: 'ap-2026-08',
    newCurrentKid: 'ap-2026-11',
    emergency: false,
    occurredAt,
  }
  const { body, headers } = signWebhook(event, { secret, clock: () => now })
  try {
    verifyKeyRotation({ payload: body, headers, secret, clock: () => now })
    return 'ok'
  } catch (error) {
    return error instanceof KeyRotationVerifyError ? error.reason : String(error)
  }
}

describe('regression: webhook occurredAt accepts ISO-8601', () => {
  for (const value of [
    '2026-11-21T10:00:00+0100', // ISO-8601 extended time, basic offset
    '2026-11-21T10:00Z', // reduced precision (no seconds)
    '2026-11-21T10:00:00,5Z', // decimal comma
    '20261121T100000Z', // ISO-8601 basic format
    '2026-11-21', // calendar date
  ]) {
    it(`an authentic event with occurredAt ${JSON.stringify(value)} is accepted`, () => {
      expect(outcome(value)).to.equal('ok')
    })
  }

  it('keeps a readable occurredAt, drops an unreadable string, refuses a non-string', () => {
    expect(verified('2026-11-21T10:00:00Z').occurredAt).to.equal('2026-11-21T10:00:00Z')
    const event = verified('yesterday')
    expect(event).to.deep.equal({
      id: 'evt_2f6c1d0e',
      type: 'signing_key_rotation',
      retiredKid: 'ap-2026-08',
      newCurrentKid: 'ap-2026-11',
    })
    expect(() => verified(1700000000))
      .to.throw(KeyRotationVerifyError)
      .with.property('reason', 'invalid_payload')
  })
})
