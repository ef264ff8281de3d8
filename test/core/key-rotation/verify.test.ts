import { createHmac } from 'node:crypto'
import { expect } from 'chai'
import fc from 'fast-check'
import {
  KEY_ROTATION_ERRORS,
  KEY_ROTATION_VERIFY_ERROR_REASONS,
  KeyRotationVerifyError,
  type KeyRotationVerifyErrorReason,
} from '../../../dist/core/key-rotation/errors.js'
import {
  assertToleranceSec,
  assertWebhookSecrets,
  verifyKeyRotation,
} from '../../../dist/core/key-rotation/verify.js'
import { computeWebhookSignature, signWebhook } from 'passport-agentpress-partner/testing'

const SECRET = 'whsec_test0123456789abcdef'
const OTHER_SECRET = 'whsec_other0123456789abcdef000'
const NOW_SEC = 1_700_000_000
const clock = (): number => NOW_SEC * 1000 + 999 // sub-second part must not shift the window
const EVENT = {
  id: 'evt_2f6c1d0e',
  type: 'signing_key_rotation',
  issuer: 'https://api.agent.press/orgs/acme-org',
  retiredKid: 'ap-2026-08',
  newCurrentKid: 'ap-2026-11',
  emergency: false,
  occurredAt: '2026-11-21T10:00:00Z',
} as const

const hmac = (secret: string, timestamp: string, body: Uint8Array | string): string =>
  createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')

function signed(
  body: string | Uint8Array = JSON.stringify(EVENT),
  { timestamp = String(NOW_SEC), secret = SECRET }: { timestamp?: string; secret?: string } = {},
) {
  return {
    payload: body,
    headers: {
      'x-agentpress-timestamp': timestamp,
      'x-agentpress-signature': `sha256=${hmac(secret, timestamp, body)}`,
    } as Record<string, string | string[] | undefined>,
    secret: SECRET as string | string[],
    clock,
  }
}

function refusal(run: () => unknown): KeyRotationVerifyError {
  try {
    run()
  } catch (error) {
    expect(error).to.be.instanceOf(KeyRotationVerifyError)
    return error as KeyRotationVerifyError
  }
  throw new Error('expected a KeyRotationVerifyError')
}

function expectReason(run: () => unknown, reason: KeyRotationVerifyErrorReason): void {
  const error = refusal(run)
  expect({ reason: error.reason, status: error.status, message: error.message }).to.deep.equal({
    reason,
    status: KEY_ROTATION_ERRORS[reason].status,
    message: KEY_ROTATION_ERRORS[reason].description,
  })
}

describe('core/key-rotation', () => {
  describe('KeyRotationVerifyError', () => {
    it('lists exactly the reasons of §5 with their statuses', () => {
      expect(KEY_ROTATION_VERIFY_ERROR_REASONS).to.deep.equal([
        'missing_signature',
        'missing_timestamp',
        'invalid_timestamp',
        'timestamp_out_of_window',
        'signature_mismatch',
        'invalid_payload',
        'payload_too_large',
        'unsupported_encoding',
        'body_already_parsed',
      ])
      const statuses = Object.fromEntries(
        KEY_ROTATION_VERIFY_ERROR_REASONS.map((reason) => [
          reason,
          KEY_ROTATION_ERRORS[reason].status,
        ]),
      )
      expect(statuses).to.deep.equal({
        missing_signature: 401,
        missing_timestamp: 401,
        invalid_timestamp: 401,
        timestamp_out_of_window: 401,
        signature_mismatch: 401,
        invalid_payload: 400,
        payload_too_large: 413,
        unsupported_encoding: 415,
        body_already_parsed: 500,
      })
      expect(Object.isFrozen(KEY_ROTATION_ERRORS)).to.equal(true)
    })

    it('carries status, statusCode, expose, a fixed message, cause and a one-line stack', () => {
      const cause = new Error('inner')
      const error = new KeyRotationVerifyError('payload_too_large', { cause })
      expect(error).to.be.instanceOf(Error)
      expect(error.name).to.equal('KeyRotationVerifyError')
      expect(error.status).to.equal(413)
      expect(error.statusCode).to.equal(413)
      expect(error.expose).to.equal(true)
      expect(error.message).to.equal('Payload larger than 8192 bytes')
      expect(error.description).to.equal(error.message)
      expect(error.cause).to.equal(cause)
      expect(error.stack).to.equal('KeyRotationVerifyError: Payload larger than 8192 bytes')
    })

    it('names the fix in the body_already_parsed message', () => {
      const { message } = new KeyRotationVerifyError('body_already_parsed')
      expect(message).to.include('Mount the router before express.json()')
      expect(message).to.include('express.json({ verify')
      expect(message).to.include('req.rawBody')
    })
  })

  describe('assertWebhookSecrets', () => {
    it('returns a frozen list for one secret or several', () => {
      const one = assertWebhookSecrets(SECRET)
      expect(one).to.deep.equal([SECRET])
      expect(Object.isFrozen(one)).to.equal(true)
      expect(assertWebhookSecrets([SECRET, OTHER_SECRET])).to.deep.equal([SECRET, OTHER_SECRET])
    })

    const cases: Array<[string, unknown, string]> = [
      ['empty', '', 'webhookSecret must not be empty'],
      ['15 characters', 'a'.repeat(15), 'webhookSecret must be at least 16 characters long'],
      ['leading space', ` ${SECRET}`, 'webhookSecret must not have leading or trailing whitespace'],
      [
        'trailing newline',
        `${SECRET}\n`,
        'webhookSecret must not have leading or trailing whitespace',
      ],
      ['a number', 12, 'webhookSecret must be a string'],
      ['undefined', undefined, 'webhookSecret must be a string'],
      ['an empty array', [], 'webhookSecret must not be an empty array'],
      [
        'an array with a short entry',
        [SECRET, 'short'],
        'webhookSecret[1] must be at least 16 characters long',
      ],
    ]
    for (const [label, value, message] of cases) {
      it(`refuses ${label} with a TypeError`, () => {
        expect(() => assertWebhookSecrets(value)).to.throw(TypeError, message)
      })
    }

    it('never puts the secret in the message', () => {
      try {
        assertWebhookSecrets(' whsec_secret_value_here')
      } catch (error) {
        expect((error as Error).message).not.to.include('whsec')
      }
    })

    it('validates toleranceSec', () => {
      expect(assertToleranceSec(undefined)).to.equal(300)
      expect(assertToleranceSec(0)).to.equal(0)
      for (const bad of [-1, Number.NaN, Infinity, '300']) {
        expect(() => assertToleranceSec(bad)).to.throw(
          TypeError,
          'toleranceSec must be a finite, non-negative number of seconds',
        )
      }
    })
  })

  describe('verifyKeyRotation', () => {
    it('returns the event, frozen, with only the known fields', () => {
      const body = JSON.stringify({
        ...EVENT,
        jwksUrl: 'http://127.0.0.1:1/evil.json',
        keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AQ' }],
      }).replace(
        '{',
        '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},',
      )
      const event = verifyKeyRotation(signed(body))
      expect(event).to.deep.equal(EVENT)
      expect(Object.isFrozen(event)).to.equal(true)
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined)
    })

    it('accepts the minimal event (optional fields absent)', () => {
      const body = JSON.stringify({
        id: 'e1',
        type: 'signing_key_rotation',
        retiredKid: 'a',
        newCurrentKid: 'b',
      })
      expect(verifyKeyRotation(signed(body))).to.deep.equal({
        id: 'e1',
        type: 'signing_key_rotation',
        retiredKid: 'a',
        newCurrentKid: 'b',
      })
    })

    it('accepts a Buffer payload and mixed-case header names', () => {
      const input = signed(Buffer.from(JSON.stringify(EVENT)))
      input.headers = {
        'X-AgentPress-Timestamp': input.headers['x-agentpress-timestamp'],
        'X-AGENTPRESS-SIGNATURE': input.headers['x-agentpress-signature'],
      }
      expect(verifyKeyRotation(input).id).to.equal('evt_2f6c1d0e')
    })

    it('agrees with signWebhook and computeWebhookSignature of the test kit', () => {
      const { body, headers } = signWebhook(EVENT, { secret: SECRET, clock })
      expect(headers['X-AgentPress-Timestamp']).to.equal(String(NOW_SEC))
      expect(headers['X-AgentPress-Signature']).to.equal(
        computeWebhookSignature(SECRET, NOW_SEC, body),
      )
      const event = verifyKeyRotation({ payload: body, headers, secret: SECRET, clock })
      expect(event).to.deep.equal(EVENT)
    })

    describe('headers', () => {
      it('missing or empty signature → missing_signature', () => {
        const input = signed()
        delete input.headers['x-agentpress-signature']
        expectReason(() => verifyKeyRotation(input), 'missing_signature')
        input.headers['x-agentpress-signature'] = ''
        expectReason(() => verifyKeyRotation(input), 'missing_signature')
        input.headers['x-agentpress-signature'] = '  '
        expectReason(() => verifyKeyRotation(input), 'missing_signature')
      })

      it('missing or empty timestamp → missing_timestamp', () => {
        const input = signed()
        delete input.headers['x-agentpress-timestamp']
        expectReason(() => verifyKeyRotation(input), 'missing_timestamp')
        input.headers['x-agentpress-timestamp'] = ''
        expectReason(() => verifyKeyRotation(input), 'missing_timestamp')
      })

      for (const timestamp of [
        '1.5',
        `${NOW_SEC}.0`,
        `+${NOW_SEC}`,
        `-${NOW_SEC}`,
        '-1',
        '0x6553f100',
        `${NOW_SEC}abc`,
        ` ${NOW_SEC}`,
        `${NOW_SEC} `,
        `${NOW_SEC.toString().slice(0, 5)} ${NOW_SEC.toString().slice(5)}`,
        '1.7e9',
        '１７００００００００',
        'NaN',
        '9'.repeat(17),
      ]) {
        it(`timestamp ${JSON.stringify(timestamp)} → invalid_timestamp (even if signed)`, () => {
          const input = signed(undefined, { timestamp })
          expectReason(() => verifyKeyRotation(input), 'invalid_timestamp')
        })
      }

      it('±300 s is accepted, ±301 s refused, both directions, inclusive', () => {
        for (const delta of [-300, 300, 0]) {
          const input = signed(undefined, { timestamp: String(NOW_SEC + delta) })
          expect(verifyKeyRotation(input).id).to.equal('evt_2f6c1d0e')
        }
        for (const delta of [-301, 301, -NOW_SEC]) {
          expectReason(
            () => verifyKeyRotation(signed(undefined, { timestamp: String(NOW_SEC + delta) })),
            'timestamp_out_of_window',
          )
        }
      })

      it('a very large all-digit timestamp is out of window', () => {
        expectReason(
          () => verifyKeyRotation(signed(undefined, { timestamp: '9'.repeat(16) })),
          'timestamp_out_of_window',
        )
      })

      it('honours toleranceSec', () => {
        const input = { ...signed(undefined, { timestamp: String(NOW_SEC - 10) }), toleranceSec: 5 }
        expectReason(() => verifyKeyRotation(input), 'timestamp_out_of_window')
        expect(verifyKeyRotation({ ...input, toleranceSec: 10 }).id).to.equal('evt_2f6c1d0e')
      })
    })

    describe('signature', () => {
      const body = JSON.stringify(EVENT)
      const mac = hmac(SECRET, String(NOW_SEC), body)
      const withSignature = (value: string | string[]) => {
        const input = signed(body)
        input.headers['x-agentpress-signature'] = value
        return input
      }

      it('accepts sha256=, v1= and bare hex entries', () => {
        for (const value of [`sha256=${mac}`, `v1=${mac}`, mac]) {
          expect(verifyKeyRotation(withSignature(value)).id).to.equal('evt_2f6c1d0e')
        }
      })

      const refused: Array<[string, string]> = [
        ['63 hex characters', `sha256=${mac.slice(0, 63)}`],
        ['65 hex characters', `sha256=${mac}0`],
        ['a non-hex character', `sha256=${mac.slice(0, 63)}g`],
        [
          'non-hex where Buffer.from would stop early',
          `sha256=${mac.slice(0, 2)}zz${mac.slice(4)}`,
        ],
        ['base64 of the MAC', `sha256=${Buffer.from(mac, 'hex').toString('base64')}`],
        ['upper-case hex', `sha256=${mac.toUpperCase()}`],
        [
          'one character changed',
          `sha256=${mac.slice(0, 10)}${mac[10] === '0' ? '1' : '0'}${mac.slice(11)}`,
        ],
        ['an unknown scheme', `sha512=${mac}`],
        ['only separators', ' , , '],
        [
          'nine entries, the good one among them',
          [...Array(8).fill(`sha256=${'0'.repeat(64)}`), `sha256=${mac}`].join(','),
        ],
        [
          'the right MAC under the wrong secret',
          `sha256=${hmac(OTHER_SECRET, String(NOW_SEC), body)}`,
        ],
        [
          'a MAC keyed without the whsec_ prefix',
          `sha256=${hmac(SECRET.slice(6), String(NOW_SEC), body)}`,
        ],
      ]
      for (const [label, value] of refused) {
        it(`${label} → signature_mismatch`, () => {
          expectReason(() => verifyKeyRotation(withSignature(value)), 'signature_mismatch')
        })
      }

      it('one bad entry beside a good one is accepted (commas and/or spaces)', () => {
        for (const value of [
          `sha256=${'f'.repeat(64)},sha256=${mac}`,
          `sha256=${'f'.repeat(64)} sha256=${mac}`,
          `garbage, v1=${mac}`,
          `${[...Array(7).fill('sha256=' + '0'.repeat(64)), 'sha256=' + mac].join(', ')}`,
        ]) {
          expect(verifyKeyRotation(withSignature(value)).id).to.equal('evt_2f6c1d0e')
        }
      })

      it('two header lines (array, or two spellings) are joined as Node joins them', () => {
        const joined = withSignature([`sha256=${'a'.repeat(64)}`, `sha256=${mac}`])
        expect(verifyKeyRotation(joined).id).to.equal('evt_2f6c1d0e')
        const input = signed(body)
        input.headers['X-AgentPress-Signature'] = `sha256=${'a'.repeat(64)}`
        expect(verifyKeyRotation(input).id).to.equal('evt_2f6c1d0e')
      })

      it('any configured secret may match (secret rotation)', () => {
        const input = signed(body, { secret: OTHER_SECRET })
        expectReason(() => verifyKeyRotation(input), 'signature_mismatch')
        input.secret = [SECRET, OTHER_SECRET]
        expect(verifyKeyRotation(input).id).to.equal('evt_2f6c1d0e')
      })

      it('the timestamp is part of the signed content', () => {
        const input = signed(body)
        input.headers['x-agentpress-timestamp'] = String(NOW_SEC - 1)
        expectReason(() => verifyKeyRotation(input), 'signature_mismatch')
      })

      it('a misconfigured secret is a TypeError, not a refusal', () => {
        expect(() => verifyKeyRotation({ ...signed(body), secret: 'short' })).to.throw(
          TypeError,
          'secret must be at least 16 characters long',
        )
      })
    })

    describe('body', () => {
      it('one byte changed → signature_mismatch', () => {
        const body = Buffer.from(JSON.stringify(EVENT))
        const input = signed(body)
        const tampered = Buffer.from(body)
        tampered[tampered.indexOf('08')] = '9'.charCodeAt(0)
        expectReason(() => verifyKeyRotation({ ...input, payload: tampered }), 'signature_mismatch')
      })

      it('a re-serialised body → signature_mismatch', () => {
        const input = signed(JSON.stringify(EVENT, null, 2))
        const compact = { ...input, payload: JSON.stringify(EVENT) }
        expectReason(() => verifyKeyRotation(compact), 'signature_mismatch')
      })

      it('invalid UTF-8, a BOM and CRLF verify exactly as sent', () => {
        const json = JSON.stringify(EVENT).replace('{', '{\r\n  "note": "NOTE",\r\n  ')
        const [head, tail] = json.split('NOTE') as [string, string]
        const body = Buffer.concat([
          Buffer.from([0xef, 0xbb, 0xbf]),
          Buffer.from(head),
          Buffer.from([0xff, 0xc3, 0x28]), // invalid UTF-8 inside an ignored field
          Buffer.from(`${tail}\r\n`),
        ])
        expect(verifyKeyRotation(signed(body))).to.deep.equal(EVENT)
        // The same event decoded and re-encoded is not what was signed.
        const reencoded = Buffer.from(body.toString('utf8'))
        const input = { ...signed(body), payload: reencoded }
        expectReason(() => verifyKeyRotation(input), 'signature_mismatch')
      })

      it('8192 bytes pass, 8193 bytes → payload_too_large before any HMAC', () => {
        const base = JSON.stringify(EVENT)
        const exact = base + ' '.repeat(8192 - base.length)
        expect(verifyKeyRotation(signed(exact)).id).to.equal('evt_2f6c1d0e')
        const input = signed(exact + ' ')
        input.headers = {} // no headers at all: size is checked first
        expectReason(() => verifyKeyRotation(input), 'payload_too_large')
      })

      const invalid: Array<[string, string]> = [
        ['an empty body', ''],
        ['a BOM only', '\ufeff'],
        ['non-JSON', 'not json'],
        ['truncated JSON', JSON.stringify(EVENT).slice(0, -1)],
        ['a JSON array', JSON.stringify([EVENT])],
        ['a JSON string', JSON.stringify('signing_key_rotation')],
        ['null', 'null'],
        ['emergency as a string', JSON.stringify({ ...EVENT, emergency: 'true' })],
        ['an empty issuer', JSON.stringify({ ...EVENT, issuer: '' })],
        ['issuer null', JSON.stringify({ ...EVENT, issuer: null })],
        ['occurredAt a number', JSON.stringify({ ...EVENT, occurredAt: 1700000000 })],
      ]
      // A body naming both kids claims to be a rotation: its id and type must then be usable.
      for (const field of ['id', 'type'] as const) {
        const { [field]: _omitted, ...rest } = EVENT
        invalid.push([`${field} missing`, JSON.stringify(rest)])
        invalid.push([`${field} empty`, JSON.stringify({ ...EVENT, [field]: '' })])
        invalid.push([`${field} a number`, JSON.stringify({ ...EVENT, [field]: 7 })])
      }
      for (const [label, body] of invalid) {
        it(`${label} (correctly signed) → invalid_payload`, () => {
          expectReason(() => verifyKeyRotation(signed(body)), 'invalid_payload')
        })
      }

      // §5: an authentic object that does not name both kids is no rotation: ignored, not 400.
      for (const field of ['retiredKid', 'newCurrentKid'] as const) {
        const { [field]: _omitted, ...rest } = EVENT
        const cases: Array<[string, unknown]> = [
          ['missing', rest],
          ['empty', { ...EVENT, [field]: '' }],
          ['a number', { ...EVENT, [field]: 7 }],
        ]
        for (const [label, body] of cases) {
          it(`${field} ${label} (correctly signed) → ignored as not_a_rotation, with its id and type`, () => {
            expect(verifyKeyRotation(signed(JSON.stringify(body)))).to.deep.equal({
              ignored: 'not_a_rotation',
              id: EVENT.id,
              type: EVENT.type,
            })
          })
        }
      }

      for (const type of ['signing_key_rotated', 'SIGNING_KEY_ROTATION', 'scheduled']) {
        it(`type ${JSON.stringify(type)} naming both kids (correctly signed) → a rotation reporting its type`, () => {
          expect(verifyKeyRotation(signed(JSON.stringify({ ...EVENT, type })))).to.deep.equal({
            ...EVENT,
            type,
          })
        })
      }

      it('type "emergency" is an emergency even with emergency: false', () => {
        const body = JSON.stringify({ ...EVENT, type: 'emergency', emergency: false })
        expect(verifyKeyRotation(signed(body))).to.deep.equal({
          ...EVENT,
          type: 'emergency',
          emergency: true,
        })
      })

      it('an unsigned body is refused for its signature before its shape is looked at', () => {
        const input = signed('not json')
        delete input.headers['x-agentpress-signature']
        expectReason(() => verifyKeyRotation(input), 'missing_signature')
      })
    })

    it('property: a signed body never fails for signature reasons; any byte flip does', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.nat(), (bytes, at) => {
          const body = Buffer.from(bytes)
          try {
            verifyKeyRotation(signed(body))
          } catch (error) {
            expect((error as KeyRotationVerifyError).reason).to.equal('invalid_payload')
          }
          const flipped = Buffer.from(body)
          const index = at % flipped.length
          flipped[index] = (flipped[index] as number) ^ 0x01
          const input = { ...signed(body), payload: flipped }
          expectReason(() => verifyKeyRotation(input), 'signature_mismatch')
        }),
        { numRuns: 200 },
      )
    })
  })
})
