// Runs only the fan-out with the JWKS hanging (no quiet-CPU gate; quote the machine's load with
// the numbers): node bench/fleet/hanging.mjs [rotations, default 20]. Needs redis-server and a
// built dist/ (npm run build).
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fanoutLatencyJwksHanging } from './fanout.mjs'

const rotations = Number(process.argv[2] ?? 20)
const port = await new Promise((resolve) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address()
    server.close(() => resolve(port))
  })
})
const redis = spawn(
  'redis-server',
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  { stdio: 'ignore' },
)
try {
  await new Promise((resolve) => setTimeout(resolve, 300))
  const result = await fanoutLatencyJwksHanging({
    redisUrl: `redis://127.0.0.1:${port}`,
    rotations,
  })
  console.log(JSON.stringify(result))
} finally {
  redis.kill('SIGTERM')
}
