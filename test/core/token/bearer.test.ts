import { expect } from 'chai'
import { readBearerToken } from '../../../dist/core/token/bearer.js'

describe('readBearerToken', () => {
  const read = (authorization?: string, rawHeaders?: string[]) =>
    readBearerToken({ headers: { authorization }, rawHeaders })

  it('reads the token, scheme case-insensitive', () => {
    expect(read('Bearer a.b.c')).to.deep.equal({ token: 'a.b.c' })
    expect(read('bearer a.b.c')).to.deep.equal({ token: 'a.b.c' })
    expect(read('BEARER   a.b.c')).to.deep.equal({ token: 'a.b.c' })
    expect(read('Bearer abc+/=')).to.deep.equal({ token: 'abc+/=' })
  })

  it('no header or another scheme → no_credentials', () => {
    for (const value of [
      undefined,
      '',
      '   ',
      'Basic dXNlcjpwYXNz',
      'DPoP a.b.c',
      'Bearers a.b.c',
    ]) {
      expect(read(value), String(value)).to.deep.equal({ reason: 'no_credentials' })
    }
  })

  it('an empty, non-b64token or multi-word value → invalid_request', () => {
    for (const value of [
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Bearer a"b',
      'Bearer a,b',
      'Bearer =abc',
      'Bearer\ta.b.c',
    ]) {
      expect(read(value), value).to.deep.equal({ reason: 'invalid_request' })
    }
  })

  it('two Authorization lines → invalid_request, whatever Node kept', () => {
    expect(
      read('Bearer a.b.c', ['Authorization', 'Bearer a.b.c', 'authorization', 'Bearer d.e.f']),
    ).to.deep.equal({
      reason: 'invalid_request',
    })
    expect(read('Bearer a.b.c', ['Host', 'x', 'Authorization', 'Bearer a.b.c'])).to.deep.equal({
      token: 'a.b.c',
    })
  })
})
