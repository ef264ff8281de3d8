import { parentPort, workerData } from 'node:worker_threads'
import { createSigner } from './common.mjs'

const { privateKeyPem, issuer, start, n } = workerData
const signToken = createSigner(privateKeyPem, issuer)
const out = new Array(n)
for (let i = 0; i < n; i++) out[i] = signToken(start + i)
parentPort.postMessage(out)
