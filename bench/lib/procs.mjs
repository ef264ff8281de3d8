// Child processes of the bench: pinned with taskset when possible, always bounded in time.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { pinnedNode } from './common.mjs'

/** Runs `node <script> <json>` (pinned to `cpu` when `pin`), resolves the last JSON line it prints. */
export function runJsonChild(script, arg, { cpu, pin, timeoutMs, nodeArgs = [] }) {
  const [cmd, pre] = pinnedNode(cpu, pin)
  const child = spawn(cmd, [...pre, ...nodeArgs, script, JSON.stringify(arg)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${script} exceeded ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const line = out.trim().split('\n').at(-1)
      if (code !== 0)
        return reject(new Error(`${script} exited ${code ?? signal}: ${out.slice(-500)}`))
      try {
        resolve(JSON.parse(line))
      } catch {
        reject(new Error(`${script} printed no JSON: ${out.slice(-500)}`))
      }
    })
  })
}

/**
 * Starts a scenario server; resolves `{ port, controlPort, stop, pid }`, or `{ unavailable }` with
 * its reason.
 */
export function startServer(script, arg, { cpu, pin, timeoutMs = 20_000 }) {
  const [cmd, pre] = pinnedNode(cpu, pin)
  // BENCH_SERVER_PROFILE=1 keeps a .cpuprofile of every scenario server in bench/.out/ (DevTools).
  const profile = process.env.BENCH_SERVER_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${new URL('../.out/', import.meta.url).pathname}`]
    : []
  const child = spawn(cmd, [...pre, ...profile, script, JSON.stringify(arg)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const stop = async () => {
    child.stdin.end()
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server ${arg.scenario} did not start in ${timeoutMs} ms`))
    }, timeoutMs)
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      if (line.startsWith('READY ')) {
        clearTimeout(timer)
        const [port, controlPort] = line.slice(6).split(' ').map(Number)
        resolve({ port, controlPort, stop, pid: child.pid })
      } else if (line.startsWith('UNAVAILABLE ')) {
        clearTimeout(timer)
        resolve({ unavailable: line.slice(12) })
      }
    })
    exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server ${arg.scenario} exited early (${code})`))
    })
  })
}
