// Shared knobs of the fuzz suites: seeded and bounded by default (seconds in CI); longer runs with
// FUZZ_RUNS=10000 npm test (and FUZZ_SEED=<n> to explore another part of the space).
export const FUZZ_RUNS = positive(process.env.FUZZ_RUNS, 100)
export const FUZZ_SEED =
  Number.isSafeInteger(Number(process.env.FUZZ_SEED)) && process.env.FUZZ_SEED
    ? Number(process.env.FUZZ_SEED)
    : 0x5eed

function positive(value: string | undefined, fallback: number): number {
  const n = Number(value)
  return Number.isSafeInteger(n) && n > 0 ? n : fallback
}

/** fast-check parameters for one property: `scale` × FUZZ_RUNS runs, the shared seed. */
export const params = (scale = 1) => ({
  seed: FUZZ_SEED,
  numRuns: Math.max(1, Math.round(FUZZ_RUNS * scale)),
  // Bounded: a property that takes too long fails instead of stalling the suite.
  interruptAfterTimeLimit: 120_000,
  markInterruptAsFailure: true,
})

/** Timeout for a suite whose properties together make `requests` loopback requests. */
export const suiteTimeout = (requests: number) => Math.max(30_000, requests * 20)
