// The README is tested like code: its quickstart runs as a new user would run it, and its tables
// are the exported tables.
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { AUTH_ERRORS, DIAGNOSTICS_CHANNELS, KEY_ROTATION_ERRORS } from 'passport-agentpress-partner'
import { METRIC_NAMES } from 'passport-agentpress-partner/opentelemetry'
import { packOnce } from './support/pack.js'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '..')

// What README fragments use without defining: an app, Passport, a verify callback… Module-scope
// imports and declarations in a block shadow these.
const README_GLOBALS = `
type Apx = typeof import('passport-agentpress-partner')
type ApxTesting = typeof import('passport-agentpress-partner/testing')
declare const app: import('express').Express
declare const express: typeof import('express')
declare const passport: import('passport').PassportStatic
declare const handler: import('express').RequestHandler
declare const verify: import('passport-agentpress-partner').VerifyFunction
declare const options: import('passport-agentpress-partner').AgentPressPartnerStrategyOptions & {
  passReqToCallback?: false
}
declare const partnerMcp: import('passport-agentpress-partner').PartnerTokenVerifierOptions
declare const token: string
declare const strategy: InstanceType<Apx['AgentPressPartnerStrategy']>
declare const AgentPressPartnerStrategy: Apx['AgentPressPartnerStrategy']
declare const PartnerTokenVerifier: Apx['PartnerTokenVerifier']
declare const authenticatePartner: Apx['authenticatePartner']
declare const requireScopes: Apx['requireScopes']
declare const deliverWebhook: ApxTesting['deliverWebhook']
`

/** Every JavaScript and TypeScript block of the README, with the line its fence opens on. */
function codeBlocks(text: string): Array<{ lang: 'js' | 'ts'; code: string; line: number }> {
  return [...text.matchAll(/^```(js|ts)\n([\s\S]*?)\n```$/gm)].map((m) => ({
    lang: m[1] as 'js' | 'ts',
    code: m[2]!,
    line: text.slice(0, m.index).split('\n').length,
  }))
}

async function readme(): Promise<string> {
  return readFile(join(root, 'README.md'), 'utf8')
}

function section(text: string, heading: string): string {
  const start = text.indexOf(`\n## ${heading}`)
  expect(start, `README section "${heading}"`).to.be.greaterThan(-1)
  const end = text.indexOf('\n## ', start + 4)
  return text.slice(start, end === -1 ? undefined : end)
}

function fenced(text: string, lang: string): string {
  const match = new RegExp('```' + lang + '\\n([\\s\\S]*?)\\n```').exec(text)
  expect(match, `a \`\`\`${lang} block`).to.not.equal(null)
  return match![1]!
}

function tableRows(text: string, marker: string): string[][] {
  const start = text.indexOf(`<!-- ${marker}:start -->`)
  const end = text.indexOf(`<!-- ${marker}:end -->`)
  expect(start).to.be.greaterThan(-1)
  expect(end).to.be.greaterThan(start)
  return text
    .slice(start, end)
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    )
}

describe('README', () => {
  it('lists every reason of the exported table, with its status, code, description and origin', async () => {
    const rows = tableRows(await readme(), 'reasons')
    expect(rows.map((r) => r[0]!.replaceAll('`', ''))).to.deep.equal(Object.keys(AUTH_ERRORS))
    for (const [reason, status, error, description, origin] of rows) {
      const entry = AUTH_ERRORS[reason!.replaceAll('`', '') as keyof typeof AUTH_ERRORS]
      expect(Number(status), reason).to.equal(entry.status)
      expect(error === '—' ? undefined : error!.replaceAll('`', ''), reason).to.equal(entry.error)
      expect(description, reason).to.equal(entry.description)
      expect(origin!.split(' ')[0], reason).to.equal(entry.origin)
    }
  })

  it('lists every key-rotation reason with its status', async () => {
    const rows = tableRows(await readme(), 'rotation')
    expect(rows.map((r) => r[0]!.replaceAll('`', ''))).to.deep.equal(
      Object.keys(KEY_ROTATION_ERRORS),
    )
    for (const [reason, status] of rows) {
      const entry =
        KEY_ROTATION_ERRORS[reason!.replaceAll('`', '') as keyof typeof KEY_ROTATION_ERRORS]
      expect(Number(status), reason).to.equal(entry.status)
    }
  })

  it('"Operating it" lists every diagnostics channel and every OpenTelemetry instrument, by name', async () => {
    const text = section(await readme(), 'Operating it')
    const names = (marker: string) => tableRows(text, marker).map((r) => r[0]!.replaceAll('`', ''))
    expect(names('channels')).to.deep.equal(Object.values(DIAGNOSTICS_CHANNELS))
    expect(names('metrics')).to.deep.equal(Object.values(METRIC_NAMES))
    // The names are public API: renaming one means changing the README table too.
    for (const heading of [
      'Logging',
      'OpenTelemetry metrics',
      'Readiness',
      'JWKS through a proxy',
    ]) {
      expect(text).to.include(`\n### ${heading}`)
    }
  })

  it('names npm test and npm start at the top', async () => {
    const top = (await readme()).split('\n## ')[0]!
    expect(top).to.include('npm test')
    expect(top).to.include('npm start')
  })

  it('every JavaScript and TypeScript block type-checks under strict against the packed package', async function () {
    this.timeout(120_000)
    const text = await readme()
    const blocks = codeBlocks(text)
    // No block escapes the extraction (another info string, a missing newline…).
    const fences = text.match(/^```(js|ts|javascript|typescript|jsx|tsx|mjs|cjs)\b.*$/gm) ?? []
    expect(blocks.length).to.equal(fences.length)
    expect(blocks.length).to.be.greaterThan(5)
    const { root: consumers } = await packOnce()
    const dir = join(consumers, 'readme-blocks')
    await mkdir(dir)
    await writeFile(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
    await writeFile(join(dir, 'globals.d.ts'), README_GLOBALS)
    const files = ['globals.d.ts']
    for (const { lang, code, line } of blocks) {
      // A block that only requires is a CommonJS script; any other block is an ES module.
      const commonjs = /\brequire\(/.test(code) && !/^import /m.test(code)
      const file = `readme-line-${line}.${lang === 'ts' ? 'ts' : commonjs ? 'cjs' : 'mjs'}`
      await writeFile(join(dir, file), commonjs ? code : `${code}\nexport {}\n`)
      files.push(file)
    }
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          target: 'ES2022',
          lib: ['ES2022'],
          allowJs: true,
          checkJs: true,
          noEmit: true,
        },
        files,
      }),
    )
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const result = await run(process.execPath, [tsc, '-p', '.'], { cwd: dir }).then(
      ({ stdout }) => ({ code: 0, output: stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, output: err.stdout }),
    )
    // File names carry the README line of each block's fence.
    expect(result).to.deep.equal({ code: 0, output: '' })
  })

  describe('quickstart, run as a new user would', function () {
    this.timeout(180_000)

    it('prints what the README says, from a fresh project with the packed package', async () => {
      const text = section(await readme(), 'Quickstart')
      const code = fenced(text, 'js')
      const expected = fenced(text, 'text')
      // The tarball npm would publish, unpacked beside express and passport (test/support/pack.ts).
      const { root: consumers } = await packOnce()
      const app = join(consumers, 'quickstart')
      await mkdir(app)
      await writeFile(
        join(app, 'package.json'),
        JSON.stringify({ name: 'qs', private: true, type: 'module' }),
      )
      await writeFile(join(app, 'server.mjs'), code)
      const { stdout } = await run(process.execPath, ['server.mjs'], {
        cwd: app,
        env: { ...process.env, PORT: '0' },
        timeout: 30_000,
      })
      expect(stdout.trim()).to.equal(expected.trim())
    })
  })
})
