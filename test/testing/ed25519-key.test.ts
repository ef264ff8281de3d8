// The test kit's key pairs (lib/testing/ed25519-key.ts): built from a seed, never by
// generateKeyPairSync, whose keys can deadlock Node 20 when exported during a garbage collection.
import { expect } from 'chai'
import { createPublicKey, sign, verify } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { newEd25519KeyPair } from '../../lib/testing/ed25519-key.js'

describe('test kit Ed25519 key pairs', () => {
  it('x is the public key: a signature by the private key verifies under the JWK {kty, crv, x}', () => {
    const { privateKey, publicKey, x } = newEd25519KeyPair()
    expect(x).to.match(/^[A-Za-z0-9_-]{43}$/)
    expect(publicKey.export({ format: 'jwk' })).to.deep.equal({ kty: 'OKP', crv: 'Ed25519', x })
    const message = Buffer.from('header.payload')
    const signature = sign(null, message, privateKey)
    const fromJwk = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
    expect(verify(null, message, fromJwk, signature)).to.equal(true)
    expect(verify(null, Buffer.from('header.payloaD'), fromJwk, signature)).to.equal(false)
  })

  it('every pair is new', () => {
    const xs = new Set(Array.from({ length: 200 }, () => newEd25519KeyPair().x))
    expect(xs.size).to.equal(200)
  })

  it('no file of the test kit generates keys with generateKeyPair(Sync)', () => {
    const root = join(import.meta.dirname, '..', '..', 'lib', 'testing')
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.ts'),
    )
    expect(files.length).to.be.above(5)
    const using = files.filter((f) =>
      /\bgenerateKeyPair(Sync)?\s*\(/.test(readFileSync(join(root, f), 'utf8')),
    )
    expect(using).to.deep.equal([])
  })

  it('no test, bench, soak or example holds a key object made by generateKeyPair(Sync)', () => {
    // The same deadlock reaches any process that exports such a key: keys there come from
    // newEd25519KeyPair, or are generated straight into DER/PEM (no key object of the job's own).
    const repo = join(import.meta.dirname, '..', '..')
    const self = join('test', 'testing', 'ed25519-key.test.ts')
    const sources = ['lib', 'test', 'bench', 'soak', 'examples', 'scripts'].flatMap((dir) =>
      readdirSync(join(repo, dir), { recursive: true, encoding: 'utf8' })
        .map((f) => join(dir, f))
        .filter((f) => /\.(ts|mts|mjs|cjs|js)$/.test(f) && !f.includes('.out') && f !== self),
    )
    expect(sources.length).to.be.above(100)
    const offending = sources.filter((f) => {
      const text = readFileSync(join(repo, f), 'utf8')
      return [...text.matchAll(/\bgenerateKeyPair(Sync)?\s*\(/g)].some(
        (m) => !text.slice(m.index, m.index + 300).includes('publicKeyEncoding'),
      )
    })
    expect(offending).to.deep.equal([])
  })
})
