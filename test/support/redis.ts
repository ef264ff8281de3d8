// A real redis-server for tests: on a free loopback port, no persistence, stopped reliably, and
// restartable on the same port (fault tests). .ci/run installs Debian's redis-server when this file
// exists.
import { spawn, type ChildProcess } from 'node:child_process'
import { createConnection } from 'node:net'
import { closedPort } from './servers.js'

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Stops the server (SIGKILL after 2 s if it does not exit). Idempotent. */
  stop(): Promise<void>
  /** Starts a fresh, empty server on the same port. */
  restart(): Promise<void>
}

/** Sends one RESP command over a fresh connection; resolves with the first reply line. */
function rawCommand(port: number, args: string[], timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`redis on ${port} did not answer ${args[0]}`))
    }, timeoutMs)
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8')
      if (reply.endsWith('\r\n')) {
        clearTimeout(timer)
        socket.end()
        resolve(reply)
      }
    })
    const encoded =
      `*${args.length}\r\n` + args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')
    socket.write(encoded)
  })
}

async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 5000
  for (;;) {
    const failed = launchErrors.get(child)
    if (failed !== undefined) {
      throw new Error(`cannot start redis-server (apt-get install redis-server): ${failed.message}`)
    }
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`)
    try {
      if ((await rawCommand(port, ['PING'], 200)).startsWith('+PONG')) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer PING`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function launch(port: number): ChildProcess {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  )
  // Not installed (ENOENT): a clear failure of the test, not an uncaught 'error' event.
  child.on('error', (error) => {
    launchErrors.set(child, error)
  })
  return child
}

const launchErrors = new WeakMap<ChildProcess, Error>()

/** Starts redis-server on a free loopback port and waits until it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const port = await closedPort()
  let child: ChildProcess | undefined = launch(port)
  await waitForPing(port, child)
  const stop = async (): Promise<void> => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()))
    running.kill('SIGTERM')
    const timer = setTimeout(() => running.kill('SIGKILL'), 2000)
    await exited
    clearTimeout(timer)
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart() {
      await stop()
      child = launch(port)
      await waitForPing(port, child)
    },
  }
}
