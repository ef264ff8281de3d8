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
    // Not even require(esm)'s ExperimentalWarning: no supported Node prints one.
    expect(child.stderr).to.equal('')
    expect(JSON.parse(child.stdout)).to.deep.equal({ sub: 'cjs-user', reason: 'malformed' })
  })

  it('works from a plain ES module in a child process, without warnings on stderr', () => {
    const script = `
      import { PartnerTokenVerifier, PartnerTokenError } from 'passport-agentpress-partner'
      import { createMockAgentPress } from 'passport-agentpress-partner/testing'
      const mock = await createMockAgentPress()
      const v = new PartnerTokenVerifier(mock.partnerMcp)
      const claims = await v.verifyToken(mock.signToken({ sub: 'esm-user' }))
      const reason = await v.verifyToken('x.y.z').then(() => 'ok', (e) => e instanceof PartnerTokenError && e.reason)
      await mock.close()
      console.log(JSON.stringify({ sub: claims.sub, reason }))`
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: process.cwd(),
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(child.status, child.stderr).to.equal(0)
    expect(child.stderr).to.equal('')
    expect(JSON.parse(child.stdout)).to.deep.equal({ sub: 'esm-user', reason: 'malformed' })
  })

  it('the root and /testing never import @opentelemetry/api (an optional peer, for /opentelemetry only)', async () => {
    const { readFileSync } = await import('node:fs')
    const { dirname, resolve } = await import('node:path')
    const seen = new Set<string>()
    const bare = new Set<string>()
    const walk = (file: string): void => {
      if (seen.has(file)) return
      seen.add(file)
      const text = readFileSync(file, 'utf8')
      // Statements only (a line that starts an import/export or closes its braces), not TSDoc.
      for (const [, from, bareImport] of text.matchAll(
        /^(?:import|export|\})[^\n]*? from '([^']+)';$|^import '([^']+)';$/gm,
      )) {
        const spec = from ?? bareImport
        if (spec!.startsWith('.')) walk(resolve(dirname(file), spec!))
        else
          bare.add(
            spec!
              .split('/')
              .slice(0, spec!.startsWith('@') ? 2 : 1)
              .join('/'),
          )
      }
    }
    walk(require.resolve('passport-agentpress-partner'))
    walk(require.resolve('passport-agentpress-partner/testing'))
    expect(seen.size).to.be.greaterThan(20)
    expect([...bare].filter((name) => !name.startsWith('node:')).sort()).to.deep.equal([
      'passport-strategy',
    ])
    const pkg = require('../package.json') as {
      dependencies: Record<string, string>
      peerDependencies: Record<string, string>
      peerDependenciesMeta: Record<string, { optional?: boolean }>
    }
    expect(pkg.dependencies).to.deep.equal({ 'passport-strategy': '^1.0.0' })
    expect(pkg.peerDependencies['@opentelemetry/api']).to.equal('^1.9.0')
    expect(pkg.peerDependenciesMeta['@opentelemetry/api']).to.deep.equal({ optional: true })
    const otel = (await import('passport-agentpress-partner/opentelemetry')) as Record<
      string,
      unknown
    >
    expect(Object.keys(otel).sort()).to.deep.equal(['METRIC_NAMES', 'instrumentOpenTelemetry'])
  })

  it('passes publint (exports, files, types of the published shape)', async function () {
    this.timeout(60_000)
    const { publint } = await import('publint')
    const { messages } = await publint({ pkgDir: process.cwd(), level: 'suggestion' })
    expect(messages).to.deep.equal([])
  })

  it('declares the Node lines CI runs, and this Node is one of them', () => {
    const pkg = require('../package.json') as { engines: { node: string }; type: string }
    // .ci/run runs the suite on the machine's Node 20 and on pinned Node 22.23.5 and 24.22.3.
    expect(pkg.engines.node).to.equal('^20.20.2 || ^22.23.5 || ^24.22.3')
    expect(pkg.type).to.equal('module')
    const [major, minor, patch] = process.versions.node.split('.').map(Number) as [
      number,
      number,
      number,
    ]
    const floor: Record<number, [number, number]> = { 20: [20, 2], 22: [23, 5], 24: [22, 3] }
    const line = floor[major]
    expect(line, `Node ${process.version} is not a supported line`).to.not.equal(undefined)
    expect(minor * 1000 + patch).to.be.at.least(line![0] * 1000 + line![1])
  })
})
