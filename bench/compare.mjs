// `node bench/compare.mjs <results-a.json> <results-b.json> [limit]`: compares the CPU figures of
// two bench runs (bench/.out/results-*.json), scenario by scenario: each run's median µs CPU per
// request and how far apart they are. Used for the "two runs within 3 %" check: exits 1 when any
// scenario measured in both differs by more than `limit` (default 0.03).
import { readFileSync } from 'node:fs'
import { fmtFixed } from './lib/common.mjs'
import { keptProbes, speedOf } from './lib/stats.mjs'

const [fileA, fileB, limitArg] = process.argv.slice(2)
if (!fileA || !fileB) {
  process.stderr.write('usage: node bench/compare.mjs <results-a.json> <results-b.json> [limit]\n')
  process.exit(2)
}
const limit = Number(limitArg ?? 0.03)
const a = JSON.parse(readFileSync(fileA, 'utf8'))
const b = JSON.parse(readFileSync(fileB, 'utf8'))

// The server CPU figures of a run come from its `http` phase or, without it, its `cpu` phase.
const sections = [
  ['HTTP server CPU', (r) => r.http ?? r.cpu],
  ['in process', (r) => r.inproc],
]
let worst = 0
let compared = 0
for (const [label, pick] of sections) {
  const sa = pick(a)
  const sb = pick(b)
  if (!sa || !sb) continue
  process.stdout.write(`\n${label} (${a.machine.date} vs ${b.machine.date})\n`)
  process.stdout.write('scenario                   run A µs/req  run B µs/req  difference\n')
  for (const id of Object.keys(sa)) {
    const ma = sa[id]?.cpu?.median
    const mb = sb[id]?.cpu?.median
    if (!Number.isFinite(ma) || !Number.isFinite(mb)) continue
    const rel = Math.abs(ma - mb) / Math.min(ma, mb)
    worst = Math.max(worst, rel)
    compared++
    process.stdout.write(
      `${id.padEnd(26)} ${fmtFixed(ma).padStart(12)}  ${fmtFixed(mb).padStart(12)}  ${(rel * 100).toFixed(1).padStart(8)}%${rel > limit ? '  OVER' : ''}\n`,
    )
  }
}
// How steady each run's CPU was (the speed probe, bench/README.md): a run that used up its repeats,
// or kept runs on a slowed CPU, measured a machine that was not the same all along.
for (const [name, r] of [
  ['A', a],
  ['B', b],
]) {
  const s = speedOf(r.speed?.http ?? r.speed?.cpu, keptProbes(r.http ?? r.cpu))
  if (s === undefined) continue
  process.stdout.write(
    `run ${name}: fastest probe ${fmtFixed(s.fastestUs, 1)} µs, ${s.repeated} of ${s.budget} repeats used, ${s.slow} kept run${s.slow === 1 ? '' : 's'} slow${s.steady ? '' : ': the CPU was not steady through this run'}\n`,
  )
}
if (compared === 0) {
  process.stdout.write('no scenario has CPU figures in both runs\n')
  process.exit(2)
}
const ok = worst <= limit
process.stdout.write(
  `\nlargest difference ${(worst * 100).toFixed(1)}% (limit ${(limit * 100).toFixed(1)}%): ${ok ? 'PASS' : 'MISS'}\n`,
)
process.exit(ok ? 0 : 1)
