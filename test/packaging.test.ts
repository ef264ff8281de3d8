import { expect } from 'chai'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import * as esm from 'passport-agentpress-partner'
import * as esmTesting from 'passport-agentpress-partner/testing'

const require = createRequire(import.meta.url)

describe('packaging', () => {
  it('require() and import load the same module: one class object, instanceof holds across', () => {
    const cjs = require('passport-agentpress-partner') as typeof esm
    expect(cjs.PartnerTokenError).to.equal(esm.PartnerTokenError)
    expect(new cjs.PartnerTokenError('expired')).to.be.instanceOf(esm.PartnerTokenError)
    expect(new esm.JwksUnavailableError()).to.be.instanceOf(cjs.JwksUnavailableError)
    const cjsTesting = require('passport-agentpress-partner/testing') as typeof esmTesting
    expect(cjsTesting.createMockAgentPress).to.equal(esmTesting.createMockAgentPress)
  })

  it('works from a plain CommonJS script in a child process, without warnings on stderr', () => {
    const script = `
      const { PartnerTokenVerifier, PartnerTokenError } = require('passport-agentpress-partner')
      const { createMockAgentPress } = require('passport-agentpress-partner/testing')
      ;(async () => {
        const mock = await createMockAgentPress()
        const v = new PartnerTokenVerifier(mock.partnerMcp)
        const claims = await v.verifyToken(mock.signToken({ sub: 'cjs-user' }))
        let reason
        try { await v.verifyToken('x.y.z') } catch (e) { reason = e instanceof PartnerTokenError && e.reason }
        await mock.close()
        console.log(JSON.stringify({ sub: claims.sub, reason }))
      })()`
    const child = spawnSync(process.execPath, ['--input-type=commonjs', '-e', script], {
      cwd: process.cwd(),
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(child.status, child.stderr).to.equal(0)
    // Nothing on stderr but, on the Node versions that still print it, require(esm)'s own notice.
    const noise = child.stderr
      .split('\n')
      .filter((line) => line !== '' && !/ExperimentalWarning|--trace-warnings/.test(line))
    expect(noise).to.deep.equal([])
    const out = child.stdout
    expect(JSON.parse(out)).to.deep.equal({ sub: 'cjs-user', reason: 'malformed' })
  })

  it('passes publint (exports, files, types of the published shape)', async function () {
    this.timeout(60_000)
    const { publint } = await import('publint')
    const { messages } = await publint({ pkgDir: process.cwd(), level: 'suggestion' })
    expect(messages).to.deep.equal([])
  })

  it('declares the supported Node range', () => {
    const pkg = require('../package.json') as { engines: { node: string }; type: string }
    expect(pkg.engines.node).to.equal('^20.19.0 || >=22.12.0')
    expect(pkg.type).to.equal('module')
  })
})
