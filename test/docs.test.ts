// The docs are tested like code: README.md and every docs/*.md page. The README's Quickstart runs
// as a new user would run it (also with its port taken), every JavaScript and TypeScript block
// copy-pastes (it type-checks under strict against the packed package on its own: nothing is
// declared for it), a block marked `<!-- run -->` runs, the
// tables are the exported tables, every "§n" that lib/ cites names a heading of the wire contract,
// and every relative link points at a file that exists.
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { dirname, join, relative, resolve } from 'node:path'
import { promisify } from 'node:util'
import { AUTH_ERRORS, KEY_ROTATION_ERRORS } from 'passport-agentpress-partner'
import { DIAGNOSTICS_CHANNELS } from 'passport-agentpress-partner/diagnostics'
import { METRIC_NAMES } from 'passport-agentpress-partner/opentelemetry'
import { packOnce } from './support/pack.js'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '..')

/** README.md, then docs/*.md (sorted), then the other top-level pages: repository-relative. */
function pages(): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`)
  return ['README.md', ...docs, 'CONTRIBUTING.md', 'CHANGELOG.md', 'SECURITY.md'].filter((f) =>
    existsSync(join(root, f)),
  )
}

const read = (page: string) => readFileSync(join(root, page), 'utf8')

interface Block {
  readonly page: string
  readonly lang: 'js' | 'ts'
  readonly code: string
  readonly line: number
  /** Preceded by `<!-- run -->`: the block is a whole program that must run and exit 0. */
  readonly runnable: boolean
}

/** Every JavaScript and TypeScript block of a page, with the line its fence opens on. */
function codeBlocks(page: string): Block[] {
  const text = read(page)
  return [...text.matchAll(/^```(js|ts)\n([\s\S]*?)\n```$/gm)].map((m) => {
    const before = text.slice(0, m.index).trimEnd()
    return {
      page,
      lang: m[1] as 'js' | 'ts',
      code: m[2]!,
      line: text.slice(0, m.index).split('\n').length,
      runnable: before.endsWith('<!-- run -->'),
    }
  })
}

function section(text: string, heading: string): string {
  const start = text.indexOf(`\n## ${heading}`)
  expect(start, `section "${heading}"`).to.be.greaterThan(-1)
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
  expect(start, marker).to.be.greaterThan(-1)
  expect(end, marker).to.be.greaterThan(start)
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

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path) : [path]
  })
}

/**
 * The program a block is type-checked in. Blocks are ES modules, so their top-level names never
 * meet; only augmentations reach across files. A block that augments anything (`declare global`,
 * `declare module`, the opt-in `passport-agentpress-partner/express` line, an MCP SDK whose types
 * declare `req.auth`) is therefore a program of its own: each block stands alone, as pasted.
 */
function programOf(block: Block): string {
  return /declare (global|module)|passport-agentpress-partner\/express|@modelcontextprotocol\//.test(
    block.code,
  )
    ? `own-${block.page.replace(/\W/g, '-')}-${block.line}`
    : 'main'
}

/** A free loopback port, held by a plain TCP server until `close()`. */
async function occupiedPort(): Promise<{ port: number; server: Server }> {
  const server = createServer()
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  return { port: (server.address() as { port: number }).port, server }
}

describe('docs (README.md and docs/*.md)', () => {
  it('the README is a short hall: ≤ 250 lines and ≤ 16,000 bytes, with ≥ 8 pages in docs/', () => {
    const readme = read('README.md')
    expect(readme.split('\n').length).to.be.at.most(250)
    expect(Buffer.byteLength(readme)).to.be.at.most(16_000)
    const docs = pages().filter((p) => p.startsWith('docs/'))
    expect(docs.length).to.be.at.least(8)
    expect(docs).to.include('docs/wire-contract.md')
  })

  it('the README names npm test (and what it needs) and npm start at the top', () => {
    const top = read('README.md').split('\n## ')[0]!
    expect(top).to.include('npm test')
    expect(top).to.include('redis-server')
    expect(top).to.include('npm start')
  })

  it('every relative link of every page points at a file of the repository', () => {
    const broken: string[] = []
    for (const page of pages()) {
      for (const m of read(page).matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)) {
        const target = m[1]!
        if (/^[a-z]+:/.test(target)) continue
        if (!existsSync(join(root, dirname(page), target))) broken.push(`${page}: ${target}`)
      }
    }
    expect(broken).to.deep.equal([])
  })

  it('every "§n" that lib/ cites names a numbered heading of docs/wire-contract.md', () => {
    const headings = new Set(
      [...read('docs/wire-contract.md').matchAll(/^#{2,4} (\d+(?:\.\d+)*)\. /gm)].map((m) => m[1]),
    )
    expect(headings.size).to.be.at.least(5)
    const unresolved: string[] = []
    let cited = 0
    for (const file of walk(join(root, 'lib')).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(file, 'utf8')
      // "§n" of another document is always named before it (RFC 9728 §3.1, RFC 6750 §2.1…).
      for (const m of text.matchAll(/(\b(?:RFC|rfc) ?\d+ |\bSP ?\d+ )?§ ?(\d+(?:\.\d+)*)/g)) {
        if (m[1] !== undefined) continue
        cited++
        if (!headings.has(m[2]!)) unresolved.push(`${relative(root, file)}: §${m[2]}`)
      }
    }
    expect(cited).to.be.greaterThan(50)
    expect(unresolved).to.deep.equal([])
  })

  it('docs/refusals.md lists every reason of the exported table, with its status, code, description and origin', () => {
    const rows = tableRows(read('docs/refusals.md'), 'reasons')
    expect(rows.map((r) => r[0]!.replaceAll('`', ''))).to.deep.equal(Object.keys(AUTH_ERRORS))
    for (const [reason, status, error, description, origin] of rows) {
      const entry = AUTH_ERRORS[reason!.replaceAll('`', '') as keyof typeof AUTH_ERRORS]
      expect(Number(status), reason).to.equal(entry.status)
      expect(error === '—' ? undefined : error!.replaceAll('`', ''), reason).to.equal(entry.error)
      expect(description, reason).to.equal(entry.description)
      expect(origin!.split(' ')[0], reason).to.equal(entry.origin)
    }
  })

  it('docs/refusals.md lists every key-rotation reason with its status', () => {
    const rows = tableRows(read('docs/refusals.md'), 'rotation')
    expect(rows.map((r) => r[0]!.replaceAll('`', ''))).to.deep.equal(
      Object.keys(KEY_ROTATION_ERRORS),
    )
    for (const [reason, status] of rows) {
      const entry =
        KEY_ROTATION_ERRORS[reason!.replaceAll('`', '') as keyof typeof KEY_ROTATION_ERRORS]
      expect(Number(status), reason).to.equal(entry.status)
    }
  })

  it('docs/operating.md lists every diagnostics channel and every OpenTelemetry instrument, by name', () => {
    const text = read('docs/operating.md')
    const names = (marker: string) => tableRows(text, marker).map((r) => r[0]!.replaceAll('`', ''))
    expect(names('channels')).to.deep.equal(Object.values(DIAGNOSTICS_CHANNELS))
    expect(names('metrics')).to.deep.equal(Object.values(METRIC_NAMES))
  })

  it('every JavaScript and TypeScript block type-checks under strict against the packed package', async function () {
    this.timeout(300_000)
    const blocks = pages().flatMap(codeBlocks)
    // No block escapes the extraction (another info string, a missing newline…).
    for (const page of pages()) {
      const fences = read(page).match(/^```(js|ts|javascript|typescript|jsx|tsx|mjs|cjs)\b.*$/gm)
      expect(codeBlocks(page).length, page).to.equal(fences?.length ?? 0)
    }
    expect(blocks.length).to.be.greaterThan(20)
    const { root: consumers } = await packOnce()
    const dir = join(consumers, 'doc-blocks')
    await mkdir(dir)
    await writeFile(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
    const programs = new Map<string, string[]>()
    for (const block of blocks) {
      // A block that only requires is a CommonJS script; any other block is an ES module.
      const commonjs = /\brequire\(/.test(block.code) && !/^import /m.test(block.code)
      const ext = block.lang === 'ts' ? 'ts' : commonjs ? 'cjs' : 'mjs'
      // File names carry the page and the line of each block's fence.
      const file = `${block.page.replace(/\W/g, '-')}-line-${block.line}.${ext}`
      await writeFile(join(dir, file), commonjs ? block.code : `${block.code}\nexport {}\n`)
      const name = programOf(block)
      programs.set(name, [...(programs.get(name) ?? []), file])
    }
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    for (const [name, files] of programs) {
      await writeFile(
        join(dir, `tsconfig.${name}.json`),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            module: 'nodenext',
            target: 'ES2022',
            // DOM: the MCP SDK's transport types name fetch's HeadersInit.
            lib: ['ES2022', 'DOM'],
            allowJs: true,
            checkJs: true,
            noEmit: true,
            skipLibCheck: true,
          },
          files,
        }),
      )
      const result = await run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], {
        cwd: dir,
      }).then(
        ({ stdout }) => ({ code: 0, output: stdout }),
        (err: { code: number; stdout: string; stderr: string }) => ({
          code: err.code,
          output: err.stdout + err.stderr,
        }),
      )
      expect(result, name).to.deep.equal({ code: 0, output: '' })
    }
  })

  it('every block marked <!-- run --> runs from a fresh project with the packed package and exits 0', async function () {
    this.timeout(300_000)
    const runnable = pages()
      .flatMap(codeBlocks)
      .filter((b) => b.runnable)
    const { root: consumers } = await packOnce()
    const dir = join(consumers, 'doc-runs')
    await mkdir(dir)
    await writeFile(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
    for (const block of runnable) {
      expect(block.lang, `${block.page}:${block.line} (a runnable block is JavaScript)`).to.equal(
        'js',
      )
      const file = `${block.page.replace(/\W/g, '-')}-line-${block.line}.mjs`
      await writeFile(join(dir, file), block.code)
      const result = await run(process.execPath, [file], { cwd: dir, timeout: 60_000 }).then(
        () => 0,
        (err: { code: number; stderr: string }) => `${err.code}: ${err.stderr}`,
      )
      expect(result, `${block.page}:${block.line}`).to.equal(0)
    }
  })

  describe('the Quickstart, run as a new user would', function () {
    this.timeout(180_000)

    async function quickstart(): Promise<{ app: string; expected: string }> {
      const text = section(read('README.md'), 'Quickstart')
      // The tarball npm would publish, unpacked beside express and passport (test/support/pack.ts).
      const { root: consumers } = await packOnce()
      const app = join(consumers, 'quickstart')
      if (!existsSync(app)) {
        await mkdir(app)
        await writeFile(
          join(app, 'package.json'),
          JSON.stringify({ name: 'qs', private: true, type: 'module' }),
        )
        await writeFile(join(app, 'server.mjs'), fenced(text, 'js'))
      }
      return { app, expected: fenced(text, 'text') }
    }

    it('prints what the README says, from a fresh project with the packed package', async () => {
      const { app, expected } = await quickstart()
      const { stdout } = await run(process.execPath, ['server.mjs'], {
        cwd: app,
        env: { ...process.env, PORT: '0' },
        timeout: 30_000,
      })
      expect(stdout.trim()).to.equal(expected.trim())
    })

    it('with its port taken: exit code 1 and one clear line naming the port and the fix, no TypeError', async () => {
      const { app } = await quickstart()
      const { port, server } = await occupiedPort()
      try {
        const result = await run(process.execPath, ['server.mjs'], {
          cwd: app,
          env: { ...process.env, PORT: String(port) },
          timeout: 30_000,
        }).then(
          ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
          (err: { code: number; stdout: string; stderr: string }) => err,
        )
        expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).to.deep.equal({
          code: 1,
          stdout: '',
          stderr: `cannot listen on 127.0.0.1:${port} (listen EADDRINUSE: address already in use 127.0.0.1:${port}): set PORT to a free port\n`,
        })
      } finally {
        server.close()
      }
    })
  })
})
