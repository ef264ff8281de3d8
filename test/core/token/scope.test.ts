import { expect } from 'chai'
import { parseScope } from '../../../dist/core/token/scope.js'

describe('parseScope', () => {
  it('splits a scope claim on spaces; empty tokens are dropped', () => {
    expect(parseScope('mcp:read mcp:write')).to.deep.equal(['mcp:read', 'mcp:write'])
    expect(parseScope('a  b ')).to.deep.equal(['a', 'b'])
    expect(parseScope('')).to.deep.equal([])
  })

  it('hands out a fresh array every time, even for the same scope string', () => {
    const first = parseScope('mcp:read mcp:write')
    first.push('admin')
    first[0] = 'changed'
    const second = parseScope('mcp:read mcp:write')
    expect(second).to.deep.equal(['mcp:read', 'mcp:write'])
    expect(second).to.not.equal(parseScope('mcp:read mcp:write'))
  })

  it('alternating scope strings each get their own tokens', () => {
    for (let i = 0; i < 3; i++) {
      expect(parseScope('a b')).to.deep.equal(['a', 'b'])
      expect(parseScope('c')).to.deep.equal(['c'])
      expect(parseScope(' a  b')).to.deep.equal(['a', 'b'])
    }
  })
})
