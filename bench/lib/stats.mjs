// Statistics of the CPU comparisons: paired differences over interleaved rounds.
import { median } from './common.mjs'

// Two-sided 95 % quantiles of Student's t for n − 1 degrees of freedom (n = 2 … 31).
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145,
  2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048,
  2.045, 2.042,
]

/** Median, min and max of a sample, and the spread as (max − min) / median. */
export function summary(values) {
  const xs = values.filter(Number.isFinite)
  if (xs.length === 0) return undefined
  const m = median(xs)
  const min = Math.min(...xs)
  const max = Math.max(...xs)
  return { n: xs.length, median: m, min, max, spread: (max - min) / m }
}

/**
 * The difference a − b taken round by round (both measured in the same round, so drift and
 * foreign load of that round cancel), its median, mean and a 95 % confidence interval of the mean
 * (Student's t over rounds). `a` and `b` are arrays indexed by round; rounds missing either are
 * skipped.
 */
export function pairedDifference(a, b) {
  const d = []
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (Number.isFinite(a[i]) && Number.isFinite(b[i])) d.push(a[i] - b[i])
  }
  if (d.length === 0) return undefined
  const mean = d.reduce((x, y) => x + y, 0) / d.length
  if (d.length < 2) return { n: 1, median: d[0], mean, ci: [-Infinity, Infinity], diffs: d }
  const sd = Math.sqrt(d.reduce((x, y) => x + (y - mean) ** 2, 0) / (d.length - 1))
  const half = (T95[Math.min(d.length, 31) - 2] ?? 1.96) * (sd / Math.sqrt(d.length))
  return { n: d.length, median: median(d), mean, ci: [mean - half, mean + half], diffs: d }
}

/**
 * A target "a − b ≤ limit µs": PASS when the whole 95 % interval is under it, MISS when the whole
 * interval is above it, otherwise inconclusive (more rounds, or a quieter machine, are needed).
 */
export function overheadVerdict(diff, limit) {
  if (diff === undefined) return { pass: undefined, text: 'not measured' }
  const [lo, hi] = diff.ci
  if (hi <= limit) return { pass: true, text: '**PASS**' }
  if (lo > limit) return { pass: false, text: '**MISS**' }
  return {
    pass: undefined,
    text: `inconclusive (the interval crosses the target; median ${diff.median <= limit ? 'under' : 'over'} it)`,
  }
}

/** The three overhead targets of issue 24: [a, b, limit µs, label]. */
export const CPU_TARGETS = [
  [
    'ours',
    'passport-core',
    2,
    'Passport strategy: `ours` − thinnest Passport strategy over PartnerTokenVerifier (`passport-core`)',
  ],
  [
    'ours-direct',
    'ours-core',
    1,
    'Without Passport: `authenticatePartner(strategy)` (`ours-direct`) − thinnest middleware over PartnerTokenVerifier (`ours-core`)',
  ],
  [
    'ours',
    'passport-core-auth',
    2,
    'Passport strategy, same request properties: `ours` − thinnest Passport strategy that also sets `req.auth` (`passport-core-auth`)',
  ],
  [
    'ours-direct',
    'ours-core-props',
    1,
    'Without Passport, same request properties: `ours-direct` − thinnest middleware that sets `req.auth`, `req.user`, `req.authInfo` (`ours-core-props`)',
  ],
  [
    'ours-direct',
    'ours-direct-no-events',
    0.5,
    'Events with no subscriber: `ours-direct` − the same on a build whose emitters return at once',
  ],
]

/** The scenarios the CPU comparisons need (the `cpu` and `inproc` phases' default set). */
export const CPU_SCENARIOS = [
  'raw',
  'passport-raw',
  'passport-core',
  'ours',
  'ours-core',
  'ours-direct',
  'ours-direct-no-events',
  'passport-core-auth',
  'ours-core-props',
]

/**
 * The probe's kept runs of one HTTP phase (`results.http` or `results.cpu`) judged against its
 * speed summary (`results.speed.*`, bench/run.mjs speedWatch): how many were kept, how many still
 * slow, and whether the CPU was steady through the phase (no slow run kept, repeats not used up).
 * `undefined` when the phase has no probe figures.
 */
export function speedOf(summary, probes) {
  if (!summary || !Number.isFinite(summary.fastestUs)) return undefined
  const kept = probes.filter(Number.isFinite)
  const slow = kept.filter((p) => p > summary.fastestUs * (1 + summary.limit)).length
  return {
    ...summary,
    kept: kept.length,
    slow,
    steady: slow === 0 && summary.repeated < summary.budget,
  }
}

/** The probe readings of a phase's kept runs (`results.http` or `results.cpu`). */
export const keptProbes = (phase) =>
  Object.values(phase ?? {}).flatMap((h) => (h.rounds ?? []).map((x) => x.probeUs ?? NaN))
