// docs/authorization.md is tested like code: every TypeScript block type-checks under strict
// against the packed package, as a new project would compile it.
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { packOnce } from '../support/pack.js'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '..', '..')

describe('docs/authorization.md', () => {
  it('every TypeScript block type-checks under strict against the packed package', async function () {
    this.timeout(120_000)
    const text = await readFile(join(root, 'docs', 'authorization.md'), 'utf8')
    const blocks = [...text.matchAll(/^```ts\n([\s\S]*?)\n```$/gm)].map((m) => ({
      code: m[1]!,
      line: text.slice(0, m.index).split('\n').length,
    }))
    const fences = text.match(/^```(js|ts|javascript|typescript|mjs|cjs)\b.*$/gm) ?? []
    expect(blocks.length).to.equal(fences.length)
    expect(blocks.length).to.be.greaterThan(4)
    const { root: consumers } = await packOnce()
    const dir = join(consumers, 'docs-authorization-blocks')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
    const files: string[] = []
    for (const { code, line } of blocks) {
      const file = `authorization-line-${line}.ts`
      await writeFile(join(dir, file), `${code}\nexport {}\n`)
      files.push(file)
    }
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          target: 'ES2022',
          lib: ['ES2022', 'DOM'],
          noEmit: true,
          skipLibCheck: true,
        },
        files,
      }),
    )
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir }).then(
      ({ stdout }) => ({ code: 0, output: stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, output: err.stdout }),
    )
    expect(result).to.deep.equal({ code: 0, output: '' })
  })
})
