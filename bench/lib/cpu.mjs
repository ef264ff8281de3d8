// Detects other processes running on the CPUs a measurement uses (this machine is shared: tests,
// builds). Busy time of one CPU comes from /proc/stat (user+nice+system+steal, in clock ticks;
// irq/softirq are left out: loopback networking of our own processes is accounted there);
// subtracting what our own processes used there leaves the foreign share.
import { readFileSync } from 'node:fs'

const TICK_MS = 10 // USER_HZ is 100 on Linux

/** Busy milliseconds of `cpu` since boot, or NaN where /proc/stat is missing. */
export function cpuBusyMs(cpu) {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${cpu} `))
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal
    return (f[0] + f[1] + f[2] + (f[7] ?? 0)) * TICK_MS
  } catch {
    return NaN
  }
}

/** CPU milliseconds (user+system) a process has used, or NaN. */
export function pidCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields after the command: state(0) ... utime(11) stime(12)
    return (Number(f[11]) + Number(f[12])) * TICK_MS
  } catch {
    return NaN
  }
}

/**
 * Starts a window on `cpu`; `stop(ownMs)` returns the foreign share of that CPU over the window
 * (0 = nobody else ran, 0.1 = others used 10% of it), given how many ms our own processes used.
 */
export function foreignWindow(cpu) {
  const busy0 = cpuBusyMs(cpu)
  const t0 = performance.now()
  return (ownMs) => {
    const wall = performance.now() - t0
    const foreign = (cpuBusyMs(cpu) - busy0 - ownMs) / wall
    return Number.isFinite(foreign) ? Math.max(0, foreign) : NaN
  }
}

/** Measurements with more foreign load than this are repeated (bounded), or flagged. */
export const FOREIGN_LIMIT = Number(process.env.BENCH_FOREIGN_LIMIT ?? 0.05)

/**
 * Waits (bounded) until other processes leave the CPUs alone: samples their busy share over short
 * windows while none of our measured processes run, and returns as soon as it is at most `limit`,
 * or once `maxWaitMs` has passed. Returns the last share seen and how long it waited.
 */
export async function waitForQuiet({
  cpus = [0, 1],
  limit = 0.1,
  windowMs = 400,
  maxWaitMs = 10_000,
} = {}) {
  const t0 = Date.now()
  for (;;) {
    const before = cpus.map(cpuBusyMs)
    const w0 = performance.now()
    await new Promise((resolve) => setTimeout(resolve, windowMs))
    const wall = performance.now() - w0
    const share = Math.max(...cpus.map((c, i) => (cpuBusyMs(c) - before[i]) / wall))
    const waitedMs = Date.now() - t0
    if (!(share > limit) || waitedMs >= maxWaitMs) return { share, waitedMs }
  }
}
