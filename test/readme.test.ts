// The README is tested like code: its quickstart runs as a new user would run it, and its tables
// are the exported tables.
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { AUTH_ERRORS, DIAGNOSTICS_CHANNELS, KEY_ROTATION_ERRORS } from 'passport-agentpress-partner'
import { METRIC_NAMES } from 'passport-agentpress-partner/opentelemetry'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '..')

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

  describe('quickstart, run as a new user would', function () {
    this.timeout(180_000)
    let dir: string

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'apx-quickstart-'))
    })
    after(() => rm(dir, { recursive: true, force: true }))

    it('prints what the README says, from a fresh project with the packed package', async () => {
      const text = section(await readme(), 'Quickstart')
      const code = fenced(text, 'js')
      const expected = fenced(text, 'text')
      // The tarball npm would publish (dist/ was built by `npm test`'s pretest).
      const { stdout: packed } = await run(
        'npm',
        ['pack', '--ignore-scripts', '--json', '--pack-destination', dir],
        {
          cwd: root,
        },
      )
      const tarball = join(dir, (JSON.parse(packed) as Array<{ filename: string }>)[0]!.filename)
      const app = join(dir, 'app')
      await run('mkdir', ['-p', app])
      await writeFile(
        join(app, 'package.json'),
        JSON.stringify({ name: 'qs', private: true, type: 'module' }),
      )
      await writeFile(join(app, 'server.mjs'), code)
      // The same versions as this repository's lockfile, from npm's cache when it has them.
      const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { version: string }>
      }
      const pin = (name: string) => `${name}@${lock.packages[`node_modules/${name}`]!.version}`
      await run(
        'npm',
        [
          'install',
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
          tarball,
          pin('express'),
          pin('passport'),
        ],
        { cwd: app },
      )
      const { stdout } = await run(process.execPath, ['server.mjs'], {
        cwd: app,
        env: { ...process.env, PORT: '0' },
        timeout: 30_000,
      })
      expect(stdout.trim()).to.equal(expected.trim())
    })
  })
})
