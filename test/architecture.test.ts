// The house rules of lib/ (lib/README.md), checked over every import of every lib/ file: the
// import lines as TypeScript itself reads them (ts.preProcessFile: static imports, re-exports,
// `import()` and `require()`, never the examples inside doc comments), resolved against lib/.
// A planted violation in a scratch copy of lib/ proves each rule can fail.
import { expect } from 'chai'
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

/** The core wings, lowest first: a wing may import its own and the ones before it. */
const WINGS = ['refusals', 'token', 'diagnostics', 'jwks', 'verifier', 'key-rotation']
/** The public entries that are folders (each an `index.ts` named after its subpath). */
const ENTRY_FOLDERS = ['mcp', 'express', 'diagnostics', 'redis', 'opentelemetry', 'testing']
/** The most loose files lib/core's root may hold. */
const MAX_LOOSE_CORE_FILES = 2

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path) : [path]
  })
}

/** lib/-relative POSIX path of every .ts file. */
function libFiles(lib: string): string[] {
  return walk(lib)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => relative(lib, f).split(sep).join('/'))
    .sort()
}

function importsOf(text: string): string[] {
  const info = ts.preProcessFile(text, true, true)
  return [...info.importedFiles.map((f) => f.fileName), ...(info.ambientExternalModules ?? [])]
}

/** Every broken house rule of the lib/ folder at `lib`, one line each. */
export function houseRuleViolations(lib: string): string[] {
  const found: string[] = []
  const files = libFiles(lib)
  const rootFiles = readdirSync(lib).filter((n) => !statSync(join(lib, n)).isDirectory())
  for (const name of rootFiles)
    if (name !== 'index.ts' && name !== 'README.md')
      found.push(`lib/${name}: lib/'s root holds only index.ts (and README.md)`)
  const looseCore = readdirSync(join(lib, 'core')).filter(
    (n) => !statSync(join(lib, 'core', n)).isDirectory(),
  )
  if (looseCore.length > MAX_LOOSE_CORE_FILES)
    found.push(`lib/core: ${looseCore.length} loose files (${looseCore.join(', ')}), at most 2`)

  for (const file of files) {
    const [top, second] = file.split('/')
    const text = readFileSync(join(lib, file), 'utf8')
    for (const specifier of importsOf(text)) {
      const where = `lib/${file} imports '${specifier}'`
      if (specifier.includes('shared/') && specifier.startsWith('.')) {
        found.push(`${where}: nothing points outside the repository`)
        continue
      }
      const relativeImport = specifier.startsWith('.')
      const target = relativeImport
        ? posix.normalize(posix.join(posix.dirname(file), specifier))
        : undefined
      if (target !== undefined && (target.startsWith('..') || target.startsWith('/'))) {
        found.push(`${where}: a path outside lib/`)
        continue
      }
      const [targetTop, targetSecond] = target?.split('/') ?? []
      if (top === 'core') {
        if (!relativeImport && !specifier.startsWith('node:')) {
          found.push(`${where}: a core file imports only core and node:*`)
          continue
        }
        if (relativeImport && targetTop !== 'core') {
          found.push(`${where}: a core file imports only core and node:*`)
          continue
        }
        const from = WINGS.indexOf(second!)
        const to = WINGS.indexOf(targetSecond!)
        if (relativeImport && from >= 0 && to > from)
          found.push(`${where}: core wing ${second} is below ${targetSecond} and never imports it`)
        if (relativeImport && from < 0 && to >= 0)
          found.push(`${where}: a loose core file imports no wing`)
      } else if (top === 'http') {
        if (
          relativeImport
            ? targetTop !== 'core' && targetTop !== 'http'
            : !specifier.startsWith('node:')
        )
          found.push(`${where}: http/ imports only core (and node:*)`)
      } else if (ENTRY_FOLDERS.includes(top!) && relativeImport) {
        if (ENTRY_FOLDERS.includes(targetTop!) && targetTop !== top)
          found.push(`${where}: entry folder ${top}/ never imports entry folder ${targetTop}/`)
      }
    }
  }
  return found
}

describe('house rules of lib/ (lib/README.md)', () => {
  it('hold for lib/ as it is', () => {
    expect(houseRuleViolations(join(ROOT, 'lib'))).to.deep.equal([])
  })

  it('no file of the repository points at the shared folder beside it', () => {
    const files = ['lib', 'test', 'bench', 'soak', 'examples', 'scripts', 'docs', '.ci']
      .flatMap((d) => {
        try {
          return walk(join(ROOT, d))
        } catch {
          return []
        }
      })
      .concat(
        ['README.md', 'CONTRIBUTING.md', 'CHANGELOG.md', 'SECURITY.md', 'package.json'].map((f) =>
          join(ROOT, f),
        ),
      )
      .filter(
        (f) => !f.includes(`${sep}node_modules${sep}`) && /\.(ts|mjs|cjs|js|md|json)$|run$/.test(f),
      )
    const needle = ['..', 'shared'].join('/')
    const offenders = files.filter((f) => {
      try {
        return readFileSync(f, 'utf8').includes(needle)
      } catch {
        return false
      }
    })
    expect(offenders.map((f) => relative(ROOT, f))).to.deep.equal([])
  })

  describe('each rule fails on a planted violation (a scratch copy of lib/)', () => {
    let scratch: string
    beforeEach(() => {
      scratch = mkdtempSync(join(tmpdir(), 'house-rules-'))
      cpSync(join(ROOT, 'lib'), scratch, { recursive: true })
    })
    afterEach(() => rmSync(scratch, { recursive: true, force: true }))

    const plant = (file: string, line: string) => {
      const path = join(scratch, file)
      writeFileSync(path, `${line}\n${readFileSync(path, 'utf8')}`)
    }

    it("import 'express' in a core file", () => {
      plant('core/token/scope.ts', "import 'express'")
      expect(houseRuleViolations(scratch)).to.deep.equal([
        "lib/core/token/scope.ts imports 'express': a core file imports only core and node:*",
      ])
    })

    it('a core file importing http/', () => {
      plant('core/verifier/verifier.ts', "import '../../http/connect.js'")
      expect(houseRuleViolations(scratch)).to.deep.equal([
        "lib/core/verifier/verifier.ts imports '../../http/connect.js': a core file imports only core and node:*",
      ])
    })

    it('a lower core wing importing a higher one', () => {
      plant('core/token/claims.ts', "import type { JwksStatus } from '../jwks/readiness.js'")
      expect(houseRuleViolations(scratch)).to.deep.equal([
        "lib/core/token/claims.ts imports '../jwks/readiness.js': core wing token is below jwks and never imports it",
      ])
    })

    it('http/ importing a framework or a root part', () => {
      plant('http/connect.ts', "import '../passport/strategy.js'\nimport 'passport'")
      expect(houseRuleViolations(scratch)).to.deep.equal([
        "lib/http/connect.ts imports '../passport/strategy.js': http/ imports only core (and node:*)",
        "lib/http/connect.ts imports 'passport': http/ imports only core (and node:*)",
      ])
    })

    it('one entry folder importing another', () => {
      plant('redis/index.ts', "import '../testing/index.js'")
      expect(houseRuleViolations(scratch)).to.deep.equal([
        "lib/redis/index.ts imports '../testing/index.js': entry folder redis/ never imports entry folder testing/",
      ])
    })

    it('a path outside the repository, a loose file in lib/ or too many in lib/core', () => {
      const outside = ['..', '..', '..', 'shared', 'SPEC.md'].join('/')
      plant('core/validate.ts', `import '${outside}'`)
      writeFileSync(join(scratch, 'strategy.ts'), 'export {}\n')
      writeFileSync(join(scratch, 'core', 'extra.ts'), 'export {}\n')
      writeFileSync(join(scratch, 'core', 'more.ts'), 'export {}\n')
      expect(houseRuleViolations(scratch)).to.deep.equal([
        "lib/strategy.ts: lib/'s root holds only index.ts (and README.md)",
        'lib/core: 3 loose files (extra.ts, more.ts, validate.ts), at most 2',
        `lib/core/validate.ts imports '${outside}': nothing points outside the repository`,
      ])
    })
  })
})
