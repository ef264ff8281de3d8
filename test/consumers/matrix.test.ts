// Consumer projects built from `npm pack`, as users build theirs: JavaScript ESM and CommonJS, and
// TypeScript in every `module` mode, compiled under `strict` by the lowest and the highest
// TypeScript supported, then run against the test kit's mock. Each must print exactly the answers
// to a minted token (200 with the typed req.user, req.authInfo and req.auth), a token without the
// route's scope (403) and a malformed one (401).
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { packOnce, repoRoot } from '../support/pack.js'

const exec = promisify(execFile)
const fixtures = join(import.meta.dirname, 'fixtures')

/** TypeScript versions by their package names here (package.json aliases). */
const LOWEST = 'typescript49' // 4.9.5
const HIGHEST = 'typescript' // the repository's own 5.9
const NATIVE = 'typescript7' // TypeScript 7, the native compiler (`npm install typescript` now)

interface Consumer {
  readonly name: string
  readonly type: 'module' | 'commonjs'
  readonly file: 'app.mjs' | 'app.cjs' | 'app.ts'
  /** Present for TypeScript consumers. */
  readonly compilerOptions?: Record<string, unknown>
  /**
   * The TypeScript versions that compile it (bundler resolution appeared in 5.0; TypeScript 7 no
   * longer knows node10 resolution). Default: 4.9, 5.9 and 7.
   */
  readonly typescript?: readonly string[]
}

const CONSUMERS: readonly Consumer[] = [
  { name: 'js-esm', type: 'module', file: 'app.mjs' },
  { name: 'js-cjs-require', type: 'commonjs', file: 'app.cjs' },
  {
    name: 'ts-nodenext-esm',
    type: 'module',
    file: 'app.ts',
    compilerOptions: { module: 'nodenext' },
  },
  {
    name: 'ts-nodenext-cjs',
    type: 'commonjs',
    file: 'app.ts',
    compilerOptions: { module: 'nodenext' },
  },
  {
    name: 'ts-node16-cjs',
    type: 'commonjs',
    file: 'app.ts',
    compilerOptions: { module: 'node16' },
  },
  {
    name: 'ts-commonjs-node10',
    type: 'commonjs',
    file: 'app.ts',
    // `node` is node10's older name, the only one TypeScript 4.9 knows; TypeScript 7 refuses it
    // (TS5108), so this mode is compiled by 4.9 and 5.9.
    compilerOptions: { module: 'commonjs', moduleResolution: 'node', esModuleInterop: true },
    typescript: [LOWEST, HIGHEST],
  },
  {
    // `module: commonjs` with no resolution named: bundler on TypeScript 7 (node10 on 5.x, the
    // case above).
    name: 'ts-commonjs-default',
    type: 'commonjs',
    file: 'app.ts',
    compilerOptions: { module: 'commonjs', esModuleInterop: true },
    typescript: [NATIVE],
  },
  {
    name: 'ts-bundler',
    type: 'module',
    file: 'app.ts',
    compilerOptions: { module: 'esnext', moduleResolution: 'bundler' },
    typescript: ['typescript50', HIGHEST, NATIVE],
  },
  {
    // No `target`: TypeScript 5.x then targets ES5, where a `#private` member in a .d.ts is
    // TS18028; the package's declarations must compile there too.
    name: 'ts-bundler-no-target',
    type: 'module',
    file: 'app.ts',
    compilerOptions: { module: 'esnext', moduleResolution: 'bundler', target: undefined },
    typescript: [HIGHEST, NATIVE],
  },
]

// resource_metadata: the default, derived from the mock's audience http://127.0.0.1:3000/mcp.
const PRM = 'resource_metadata="http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp"'
const EXPECTED = [
  '200 {"user":{"id":"alice"},"scopes":["mcp:read","mcp:write"],"clientId":"example-partner","sub":"alice","fromMock":true}',
  `403 Bearer realm="mcp", error="insufficient_scope", error_description="Insufficient scope", scope="mcp:read", ${PRM}`,
  `401 Bearer realm="mcp", error="invalid_token", error_description="Malformed token", ${PRM}`,
].join('\n')

interface Outcome {
  /** tsc's output (empty when it compiled cleanly), or undefined for JavaScript. */
  readonly compiled?: { code: number; output: string }
  readonly run: { code: number; stdout: string; stderr: string }
}

// NODE_ENV=test: Express's final handler would otherwise log the 403 error it renders to stderr.
const env = { ...process.env, NODE_ENV: 'test' }

async function attempt(command: string, args: string[], cwd: string) {
  try {
    const { stdout, stderr } = await exec(command, args, { cwd, env, timeout: 240_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as {
      code?: number | null
      stdout?: string
      stderr?: string
      killed?: boolean
      signal?: string | null
    }
    // A run that ended by a signal (killed at the timeout, or a crash) says so in stderr.
    const ended = e.signal
      ? ` [ended by ${e.signal}${e.killed ? ' after the 240 s timeout' : ''}]`
      : ''
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: (e.stderr || (typeof e.code === 'number' ? '' : String(err))) + ended,
    }
  }
}

async function build(
  root: string,
  consumer: Consumer,
  typescript: string | undefined,
): Promise<Outcome> {
  const dir = join(
    root,
    typescript === undefined ? consumer.name : `${consumer.name}-${typescript}`,
  )
  await mkdir(dir)
  await writeFile(join(dir, 'package.json'), JSON.stringify({ private: true, type: consumer.type }))
  await cp(join(fixtures, consumer.file), join(dir, consumer.file))
  if (typescript === undefined) {
    return { run: await attempt(process.execPath, [consumer.file], dir) }
  }
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        lib: ['ES2022'],
        outDir: 'out',
        ...consumer.compilerOptions,
      },
      files: [consumer.file],
    }),
  )
  const tsc = join(repoRoot, 'node_modules', typescript, 'bin', 'tsc')
  const result = await attempt(process.execPath, [tsc, '-p', '.'], dir)
  const compiled = { code: result.code, output: (result.stdout + result.stderr).trim() }
  if (compiled.code !== 0)
    return { compiled, run: { code: -1, stdout: '', stderr: 'not compiled' } }
  return { compiled, run: await attempt(process.execPath, [join('out', 'app.js')], dir) }
}

/** Runs the jobs with at most `limit` at once. */
async function pool<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length)
  let next = 0
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++
      results[i] = await jobs[i]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker))
  return results
}

describe('consumer projects built from npm pack', function () {
  // 21 compilations (TypeScript 4.9, 5.0, 5.9 and 7) on a shared, loaded machine.
  this.timeout(600_000)
  type Case = { consumer: Consumer; typescript: string | undefined }
  const cases = CONSUMERS.flatMap((consumer): Case[] =>
    consumer.file === 'app.ts'
      ? (consumer.typescript ?? [LOWEST, HIGHEST, NATIVE]).map((typescript) => ({
          consumer,
          typescript,
        }))
      : [{ consumer, typescript: undefined }],
  )
  const outcomes = new Map<string, Outcome>()
  const key = (name: string, typescript: string | undefined) => `${name} ${typescript ?? ''}`

  before(async () => {
    const { root } = await packOnce()
    const results = await pool(
      cases.map(
        ({ consumer, typescript }) =>
          () =>
            build(root, consumer, typescript),
      ),
      Math.max(2, availableParallelism()),
    )
    cases.forEach(({ consumer, typescript }, i) => {
      outcomes.set(key(consumer.name, typescript), results[i]!)
    })
  })

  for (const { consumer, typescript } of cases) {
    const title =
      typescript === undefined
        ? `${consumer.name}: runs, answers 200/403/401 exactly`
        : `${consumer.name} (${typescript}): compiles under strict, runs, answers 200/403/401 exactly`
    it(title, () => {
      const outcome = outcomes.get(key(consumer.name, typescript))!
      if (typescript !== undefined) expect(outcome.compiled).to.deep.equal({ code: 0, output: '' })
      expect(outcome.run).to.deep.equal({ code: 0, stdout: `${EXPECTED}\n`, stderr: '' })
    })
  }

  it('covers TypeScript 4.9, 5.0 (bundler), the repository’s own 5.9 and TypeScript 7', async () => {
    const version = async (name: string) =>
      (
        JSON.parse(
          await readFile(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8'),
        ) as {
          version: string
        }
      ).version
    expect(await version(LOWEST)).to.equal('4.9.5')
    expect(await version('typescript50')).to.equal('5.0.4')
    expect(await version(HIGHEST)).to.match(/^5\.9\./)
    expect(await version(NATIVE)).to.match(/^7\./)
  })
})
