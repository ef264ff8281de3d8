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

// parseToken decodes every segment into one buffer of the module and verifyEd25519 writes the
// signing input and signature into two more: what one call leaves there must never reach the next.
describe('parseToken and verifyEd25519: the shared decode buffers', () => {
  it('a short payload after a long one decodes to itself alone', () => {
    const header = { alg: 'EdDSA', kid: 'k-buf' }
    const long = parseToken(token(header, b64({ sub: 'x'.repeat(4000), pad: 'y'.repeat(1500) })))
    expect((long.payload.sub as string).length).to.equal(4000)
    const short = parseToken(token(header, b64({ s: 1 })))
    expect(short.payload).to.deep.equal({ s: 1 })
    // A payload that decodes to fewer bytes than the previous one and is not JSON on its own.
    expect(reasonOf(token(header, b64({ s: 1 }).slice(0, 6)))).to.equal('malformed')
    expect(reasonOf(token(header, Buffer.from('{"a":').toString('base64url')))).to.equal(
      'malformed',
    )
  })

  it('largest payload a token can carry decodes whole', () => {
    const header = { alg: 'EdDSA', kid: 'k-max' }
    const headerLength = b64(header).length
    // 8192 characters in all: header, two dots, an 86-character signature, and the payload.
    const room = 8192 - headerLength - 2 - 86
    const fill = Math.floor((room * 3) / 4) - '{"p":""}'.length
    const payload = b64({ p: 'z'.repeat(fill) })
    expect(payload.length).to.be.at.most(room)
    const parsed = parseToken(token(header, payload))
    expect((parsed.payload.p as string).length).to.equal(fill)
  })

  it('each signature is checked against its own signing input, whatever the lengths before it', async () => {
    const { newEd25519KeyPair } = await import('../../../dist/testing/ed25519-key.js')
    const { sign } = await import('node:crypto')
    const { importEd25519Jwk, verifyEd25519 } = await import('../../../dist/core/token/ed25519.js')
    const { privateKey, publicKey } = newEd25519KeyPair()
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k' }
    const imported = importEd25519Jwk(jwk)
    if (typeof imported === 'string') throw new Error(imported)
    const inputs = ['a.b', 'a'.repeat(300) + '.b', 'a.bc', 'a'.repeat(300) + '.c', 'a.b']
    const signatures = inputs.map((input) =>
      sign(null, Buffer.from(input, 'latin1'), privateKey).toString('base64url'),
    )
    const verdicts: boolean[] = []
    for (let round = 0; round < 2; round++) {
      inputs.forEach((input, i) => {
        verdicts.push(verifyEd25519(imported.key, input, signatures[i]!))
        // The signature of another input of the same or another length never verifies this one.
        verdicts.push(verifyEd25519(imported.key, input, signatures[(i + 1) % inputs.length]!))
      })
    }
    // Only the last input's neighbour (the first) is the same text, so its signature verifies it.
    const expected = inputs.flatMap((input, i) => [true, inputs[(i + 1) % inputs.length] === input])
    expect(expected.filter(Boolean)).to.have.length(6)
    expect(verdicts).to.deep.equal([...expected, ...expected])
  })
})
