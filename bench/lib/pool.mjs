// Pre-generates pools of distinct, freshly signed tokens on worker threads (signing is ~35k/s per
// core here), so load generation itself never signs.
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'

const workerUrl = new URL('./pool-worker.mjs', import.meta.url)

/** @returns {Promise<string[]>} `count` distinct tokens valid for LIFETIME_SEC from now */
export async function makePool(count, { privateKeyPem, issuer }) {
  const threads = Math.max(1, Math.min(availableParallelism(), 4))
  const per = Math.ceil(count / threads)
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const start = t * per
      const n = Math.max(0, Math.min(per, count - start))
      return new Promise((resolve, reject) => {
        const worker = new Worker(workerUrl, { workerData: { privateKeyPem, issuer, start, n } })
        worker.once('message', resolve)
        worker.once('error', reject)
      })
    }),
  )
  return parts.flat()
}
