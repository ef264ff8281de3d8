// A loopback redis-server for the bench (no persistence), when Debian's redis-server is installed.
import { spawn, spawnSync } from 'node:child_process'
import { createServer, createConnection } from 'node:net'

async function freePort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(200, () => done(false))
    socket.on('error', () => done(false))
    socket.on('data', (chunk) => done(chunk.toString().startsWith('+PONG')))
    socket.write('PING\r\n')
  })
}

/** Resolves `{ url, stop }`, or `{ unavailable }` when redis-server is not installed. */
export async function startBenchRedis() {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    return { unavailable: 'redis-server not installed (apt-get install redis-server)' }
  }
  const port = await freePort()
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  )
  const deadline = Date.now() + 5000
  while (!(await ping(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL')
      return { unavailable: 'redis-server did not start' }
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
      await exited
      clearTimeout(timer)
    },
  }
}
