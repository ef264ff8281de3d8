import { expect } from 'chai'
import { execFile, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { promisify } from 'node:util'
import * as esm from 'passport-agentpress-partner'
import * as esmTesting from 'passport-agentpress-partner/testing'
import { packOnce, repoRoot } from './support/pack.js'

const require = createRequire(import.meta.url)
const exec = promisify(execFile)

interface Conditions {
  import: { types: string; default: string }
  require: { types: string; default: string }
}
const pkg = require('../package.json') as {
  engines: { node: string }
  type: string
  exports: Record<string, Conditions | string>
  bin: Record<string, string>
}

/** Every .ts file under lib/, relative to it, without extension. */
function libModules(dir = join(repoRoot, 'lib'), prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? libModules(join(dir, entry.name), `${prefix}${entry.name}/`)
      : entry.name.endsWith('.ts')
        ? [`${prefix}${entry.name.slice(0, -3)}`]
        : [],
  )
}

describe('packaging', () => {
  it('require() and import load the same module: one class object, instanceof holds across', () => {
    const cjs = require('passport-agentpress-partner') as typeof esm
    expect(cjs.PartnerTokenError).to.equal(esm.PartnerTokenError)
    expect(new cjs.PartnerTokenError('expired')).to.be.instanceOf(esm.PartnerTokenError)
    expect(new esm.JwksUnavailableError()).to.be.instanceOf(cjs.JwksUnavailableError)
    expect(Object.keys(cjs).sort()).to.deep.equal(Object.keys(esm).sort())
    for (const name of Object.keys(esm) as Array<keyof typeof esm>)
      expect(cjs[name], name).to.equal(esm[name])
    const cjsTesting = require('passport-agentpress-partner/testing') as typeof esmTesting
    expect(cjsTesting.createMockAgentPress).to.equal(esmTesting.createMockAgentPress)
  })

  it('the ./express entry is types only: an empty module from import and from require', async () => {
    expect(Object.keys(await import('passport-agentpress-partner/express'))).to.deep.equal([])
    expect(Object.keys(require('passport-agentpress-partner/express') as object)).to.deep.equal([])
  })

  it('works from a plain CommonJS script in a child process, with nothing on stderr', () => {
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
    // CommonJS underneath: no require(esm), so not even its ExperimentalWarning.
    expect({ status: child.status, stderr: child.stderr }).to.deep.equal({ status: 0, stderr: '' })
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
      // tsc's CommonJS output: every import is a `require("…")` in double quotes (TSDoc examples
      // in comments use single quotes).
      for (const [, spec] of text.matchAll(/require\("([^"]+)"\)/g)) {
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
    const manifest = require('../package.json') as {
      dependencies: Record<string, string>
      peerDependencies: Record<string, string>
      peerDependenciesMeta: Record<string, { optional?: boolean }>
    }
    expect(manifest.dependencies).to.deep.equal({ 'passport-strategy': '^1.0.0' })
    expect(manifest.peerDependencies['@opentelemetry/api']).to.equal('^1.9.0')
    expect(manifest.peerDependenciesMeta['@opentelemetry/api']).to.deep.equal({ optional: true })
    const otel = (await import('passport-agentpress-partner/opentelemetry')) as Record<
      string,
      unknown
    >
    expect(Object.keys(otel).sort()).to.deep.equal(['METRIC_NAMES', 'instrumentOpenTelemetry'])
  })

  it('every entry: import → .mjs + .d.mts, require → .js + .d.ts (CommonJS), as package.json says', () => {
    expect(Object.keys(pkg.exports)).to.deep.equal([
      '.',
      './testing',
      './express',
      './diagnostics',
      './redis',
      './opentelemetry',
      './mcp',
      './mcp/v2',
      './package.json',
    ])
    expect(pkg.exports['./package.json']).to.equal('./package.json')
    for (const [subpath, conditions] of Object.entries(pkg.exports)) {
      if (typeof conditions === 'string') continue
      const base = conditions.require.default.slice(0, -'.js'.length)
      // Every entry is a folder's index named after its subpath (lib/README.md).
      expect(base, subpath).to.equal(
        subpath === '.' ? './dist/index' : `./dist/${subpath.slice(2)}/index`,
      )
      expect(conditions, subpath).to.deep.equal({
        import: { types: `${base}.d.mts`, default: `${base}.mjs` },
        require: { types: `${base}.d.ts`, default: `${base}.js` },
      })
    }
    expect(require('../dist/package.json')).to.deep.equal({ type: 'commonjs' })
    expect(pkg.bin).to.deep.equal({ 'agentpress-mock': 'dist/testing/cli.js' })
  })

  it('the ./redis entry: the same RedisFleet from import and from require', async () => {
    const esmRedis = await import('passport-agentpress-partner/redis')
    const cjsRedis = require('passport-agentpress-partner/redis') as typeof esmRedis
    expect(Object.keys(esmRedis).sort()).to.deep.equal([
      'RedisFleet',
      'RedisUnavailableError',
      'createRedisFleet',
    ])
    expect(cjsRedis.RedisFleet).to.equal(esmRedis.RedisFleet)
  })

  describe('the tarball', function () {
    this.timeout(120_000)

    it('without the optional redis peer: the root and /testing load, only /redis asks for it', async () => {
      const { root } = await packOnce()
      const script = `
        const pkg = require('passport-agentpress-partner')
        require('passport-agentpress-partner/testing')
        let missing
        try { require('passport-agentpress-partner/redis') } catch (e) { missing = e.code + ' ' + /'redis'/.test(e.message) }
        console.log(JSON.stringify({ verifier: typeof pkg.PartnerTokenVerifier, missing }))`
      const child = spawnSync(process.execPath, ['--input-type=commonjs', '-e', script], {
        cwd: root,
        encoding: 'utf8',
        timeout: 20_000,
      })
      expect({ status: child.status, stderr: child.stderr }).to.deep.equal({
        status: 0,
        stderr: '',
      })
      expect(JSON.parse(child.stdout)).to.deep.equal({
        verifier: 'function',
        missing: 'MODULE_NOT_FOUND true',
      })
    })

    it('ships exactly dist/ (.js + .d.ts per lib/ module, the ESM entries), no maps, no tests', async () => {
      const { files } = await packOnce()
      const entries = Object.values(pkg.exports)
        .filter((c): c is Conditions => typeof c !== 'string')
        .flatMap((c) => [c.import.default, c.import.types].map((p) => p.slice(2)))
      const expected = [
        'LICENSE',
        'README.md',
        'package.json',
        'dist/package.json',
        ...libModules().flatMap((m) => [`dist/${m}.js`, `dist/${m}.d.ts`]),
        ...entries,
      ].sort()
      expect(files).to.deep.equal(expected)
      expect(files.filter((f) => /\.map$|tsbuildinfo|(^|\/)test\/|\.test\./.test(f))).to.deep.equal(
        [],
      )
    })

    it('passes @arethetypeswrong/cli with its default profile (exit 0, no problem)', async () => {
      const { tarball } = await packOnce()
      const cli = join(repoRoot, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js')
      const { stdout } = await exec(process.execPath, [cli, tarball, '--format', 'json'])
      expect((JSON.parse(stdout) as { problems: unknown }).problems).to.deep.equal({})
    })

    it('passes publint --strict on the unpacked tarball (exports, files, types)', async () => {
      const { publint } = await import('publint')
      const { root } = await packOnce()
      const pkgDir = join(root, 'node_modules', 'passport-agentpress-partner')
      // pack: false: every file of pkgDir is what was published.
      const { messages } = await publint({ pkgDir, pack: false, level: 'suggestion', strict: true })
      expect(messages).to.deep.equal([])
    })
  })

  it('declares the Node lines CI runs, and this Node is one of them', () => {
    // .ci/run runs the suite on the machine's Node 20 and on pinned Node 22.23.5, 24.22.3 and
    // 26.12.1.
    expect(pkg.engines.node).to.equal('^20.20.2 || ^22.23.5 || ^24.22.3 || ^26.12.1')
    expect(pkg.type).to.equal('module')
    const [major, minor, patch] = process.versions.node.split('.').map(Number) as [
      number,
      number,
      number,
    ]
    const floor: Record<number, [number, number]> = {
      20: [20, 2],
      22: [23, 5],
      24: [22, 3],
      26: [12, 1],
    }
    const line = floor[major]
    expect(line, `Node ${process.version} is not a supported line`).to.not.equal(undefined)
    expect(minor * 1000 + patch).to.be.at.least(line![0] * 1000 + line![1])
  })
})
