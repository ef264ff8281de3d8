// The "no events" build: a copy of dist/ in which every diagnostics emitter returns at once, so the
// request path runs without even asking whether anyone subscribes. Comparing `ours-direct` with the
// same scenario on this copy (`ours-direct-no-events`) measures what the events cost a request when
// nobody listens (target ≤ 0.5 µs). The copy lives under bench/.out/, inside the repository, so
// its `require('passport-strategy')` finds the repository's node_modules.
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH_DIR } from './common.mjs'

// What each neutralised emitter returns instead of running: nothing, "nobody listens", or the
// verification itself, unobserved.
const BODIES = {
  verifyObserved: 'return false;',
  observeVerify: 'return run();',
}

/**
 * Builds bench/.out/dist-no-events/ from dist/ and returns `{ entry, neutralised }` (the path of
 * its index.js and the functions it emptied), or `{ unavailable }` when dist/ holds no emitter
 * this transform recognises (it would then measure nothing).
 */
export function buildNoEventsDist() {
  const from = join(BENCH_DIR, '..', 'dist')
  const to = join(BENCH_DIR, '.out', 'dist-no-events')
  rmSync(to, { recursive: true, force: true })
  try {
    cpSync(from, to, { recursive: true })
  } catch (error) {
    return { unavailable: `dist/ not built: ${error.message}` }
  }
  const dir = join(to, 'core', 'diagnostics')
  const neutralised = []
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.js'))) {
    const path = join(dir, file)
    const source = readFileSync(path, 'utf8')
    // Exported top-level functions only (tsc's CommonJS output: `exports.name = name;`).
    const text = source.replace(/^function (\w+)\([^)]*\) \{$/gm, (line, name) => {
      const body = BODIES[name] ?? (name.startsWith('publish') ? 'return;' : undefined)
      if (body === undefined || !source.includes(`exports.${name} = ${name};`)) return line
      neutralised.push(`${file.replace(/\.js$/, '')}.${name}`)
      return `${line} ${body}`
    })
    writeFileSync(path, text)
  }
  for (const needed of ['verify.verifyObserved', 'publish.publishRequestDecision']) {
    if (!neutralised.includes(needed))
      return { unavailable: `no-events build: ${needed} not found in dist/core/diagnostics/` }
  }
  return { entry: join(to, 'index.js'), neutralised }
}
