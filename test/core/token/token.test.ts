import { expect } from 'chai'
import { parseToken } from '../../../dist/core/token/token.js'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const SIG = 'A'.repeat(86)
const PAYLOAD = b64({ iss: 'https://issuer.example', sub: 'alice' })
const token = (header: unknown, payload = PAYLOAD): string => `${b64(header)}.${payload}.${SIG}`
const reasonOf = (value: string): string | undefined => {
  try {
    parseToken(value)
    return undefined
  } catch (error) {
    return (error as { reason?: string }).reason
  }
}

// parseToken remembers the last header segments that passed every header check, so a key's
// tokens do not decode the same header again: the answers must be exactly those of a fresh parse.
describe('parseToken: the remembered headers', () => {
  it('a remembered header still gives each token its own payload, kid and signing input', () => {
    const header = { alg: 'EdDSA', kid: 'k-1', typ: 'JWT' }
    const first = parseToken(token(header, b64({ sub: 'a' })))
    const second = parseToken(token(header, b64({ sub: 'b' })))
    expect(first.payload).to.deep.equal({ sub: 'a' })
    expect(second.payload).to.deep.equal({ sub: 'b' })
    expect(second.kid).to.equal('k-1')
    expect(second.signingInput).to.equal(`${b64(header)}.${b64({ sub: 'b' })}`)
    expect(Object.isFrozen(second.header)).to.equal(true)
  })

  it('a remembered header with a bad payload is malformed, as without the memory', () => {
    const header = { alg: 'Ed25519', kid: 'k-2' }
    parseToken(token(header))
    expect(reasonOf(token(header, b64([1, 2])))).to.equal('malformed')
    expect(reasonOf(token(header, 'not*base64'))).to.equal('malformed')
  })

  it('headers that fail a check are never remembered: the same segment is refused every time', () => {
    for (let i = 0; i < 3; i++) {
      expect(reasonOf(token({ alg: 'HS256', kid: 'k' }))).to.equal('alg_not_allowed')
      expect(reasonOf(token({ alg: 'EdDSA', kid: 'k', crit: [] }))).to.equal('malformed')
      expect(reasonOf(token({ alg: 'EdDSA', kid: '' }))).to.equal('kid_missing_or_unknown')
    }
  })

  it('a stream of distinct headers keeps the memory bounded and every answer right', () => {
    for (let i = 0; i < 200; i++) {
      const parsed = parseToken(token({ alg: 'EdDSA', kid: `kid-${i}` }))
      expect(parsed.kid).to.equal(`kid-${i}`)
    }
    // The first ones were forgotten and are decoded again, with the same answer.
    expect(parseToken(token({ alg: 'EdDSA', kid: 'kid-0' })).kid).to.equal('kid-0')
  })
})
