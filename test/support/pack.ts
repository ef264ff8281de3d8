// The package as npm would publish it: packed once per mocha run, unpacked into a temporary
// node_modules under os.tmpdir(), next to links to this repository's own installed dependencies
// (express, passport, their types…). Consumer projects made in that directory resolve everything
// from there, so they build and run with the lockfile's versions and no network.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, symlink } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
export const repoRoot = resolve(import.meta.dirname, '..', '..')

/** What a consumer needs besides the package: linked, never copied or downloaded. */
const LINKED = [
  'express',
  'passport',
  'passport-strategy',
  '@modelcontextprotocol/sdk',
  '@modelcontextprotocol/server',
  '@modelcontextprotocol/express',
  '@modelcontextprotocol/node',
  '@modelcontextprotocol/client',
  '@modelcontextprotocol/core',
  '@types/node',
  '@types/express',
  '@types/express-serve-static-core',
  '@types/passport',
  // Optional peer of /opentelemetry, and the proxy agent the README's proxy example uses.
  '@opentelemetry/api',
  'https-proxy-agent',
]

export interface Packed {
  /** A temporary directory whose node_modules holds the unpacked package and the links. */
  readonly root: string
  /** The tarball `npm pack` wrote. */
  readonly tarball: string
  /** The paths the tarball holds, as `npm pack --json` lists them. */
  readonly files: readonly string[]
}

let packed: Promise<Packed> | undefined

/** Packs dist/ as built by `npm test`'s pretest (no scripts run), once per process. */
export function packOnce(): Promise<Packed> {
  packed ??= pack()
  return packed
}

async function pack(): Promise<Packed> {
  const root = await mkdtemp(join(tmpdir(), 'apx-consumers-'))
  process.once('exit', () => rmSync(root, { recursive: true, force: true }))
  const { stdout } = await run(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', root],
    { cwd: repoRoot },
  )
  const [result] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
  const tarball = join(root, result!.filename)
  const modules = join(root, 'node_modules')
  const unpacked = join(modules, 'passport-agentpress-partner')
  await mkdir(join(modules, '@types'), { recursive: true })
  await mkdir(join(modules, '@modelcontextprotocol'), { recursive: true })
  await mkdir(join(modules, '@opentelemetry'), { recursive: true })
  await mkdir(unpacked)
  await run('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1'])
  for (const name of LINKED)
    await symlink(join(repoRoot, 'node_modules', name), join(modules, name))
  return { root, tarball, files: result!.files.map((f) => f.path).sort() }
}
