// Load time of the built package, each measurement in a fresh Node process: `require` of the
// CommonJS build, `import` of its ESM entry, and both in one program (which must give the same
// class objects). `node bench/load.mjs [runs]`; needs `npm run build`. Not part of `npm run bench`.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const runs = Number(process.argv[2] ?? 41)
const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const timed = (body) => `const t = performance.now(); ${body}; console.log(performance.now() - t)`
const CASES = {
  'ESM loader alone (empty module)': ['module', `await import('${dist}express.mjs')`],
  "require('.') + require('./testing')": [
    'commonjs',
    `require('${dist}index.js'); require('${dist}testing/index.js')`,
  ],
  "import('.') + import('./testing')": [
    'module',
    `await import('${dist}index.mjs'); await import('${dist}testing/index.mjs')`,
  ],
  "import('.') + require('.'), same classes": [
    'module',
    `const { createRequire } = await import('node:module')
     const e = await import('${dist}index.mjs')
     const c = createRequire(import.meta.url)('${dist}index.js')
     if (e.PartnerTokenVerifier !== c.PartnerTokenVerifier) throw new Error('two instances')`,
  ],
}

for (const [name, [type, body]] of Object.entries(CASES)) {
  const ms = []
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(process.execPath, [`--input-type=${type}`, '-e', timed(body)], {
      encoding: 'utf8',
    })
    ms.push(Number(out))
  }
  ms.sort((a, b) => a - b)
  const median = ms[runs >> 1].toFixed(1)
  console.log(`${name.padEnd(42)} median ${median} ms (min ${ms[0].toFixed(1)}, ${runs} runs)`)
}
