/**
 * The key-rotation webhook probes (wire contract §5): deliveries AgentPress would never send must
 * be refused — 401 for a missing, bad or stale signature, 400 for a body that is not JSON, 413 for
 * one above 8 KiB — never acknowledged (2xx) and never a server error (5xx).
 *
 * Without the secret every delivery carries a wrong signature, so a body-level refusal may come
 * as 401 too (the signature is checked first). With `--webhook-secret` (a staging or development
 * relationship's) the stale, oversized and non-JSON deliveries are validly signed, so each shows
 * the check it targets.
 */
import { randomBytes } from 'node:crypto'

import { computeWebhookSignature } from '../webhook.js'
import type { ProbeContext } from './check.js'
import type { Verdict } from './findings.js'
import type { ProbeResponse } from './request.js'

interface Delivery {
  readonly id: string
  readonly title: string
  readonly body: string
  readonly timestamp?: number
  readonly sign: 'none' | 'wrong' | 'secret'
  /** What it must be answered with when validly signed. */
  readonly want: number
}

export async function probeWebhook(
  context: ProbeContext,
  webhook: URL,
  secret: string | undefined,
  issuer: string | undefined,
): Promise<void> {
  const now = Math.floor(Date.now() / 1000)
  // Names kids nobody uses: a server that wrongly acts on it only refreshes its key set.
  const event = JSON.stringify({
    id: `evt_check_${randomBytes(6).toString('hex')}`,
    type: 'signing_key_rotation',
    ...(issuer === undefined ? {} : { issuer }),
    retiredKid: 'agentpress-check-retired',
    newCurrentKid: 'agentpress-check-new',
    emergency: false,
    occurredAt: new Date(now * 1000).toISOString(),
  })
  const signed = secret === undefined ? 'wrong' : 'secret'
  const deliveries: Delivery[] = [
    {
      id: 'webhook-unsigned',
      title: 'a delivery without signature headers',
      body: event,
      sign: 'none',
      want: 401,
    },
    {
      id: 'webhook-bad-signature',
      title: 'a delivery with a wrong signature',
      body: event,
      sign: 'wrong',
      want: 401,
    },
    {
      id: 'webhook-stale-timestamp',
      title: `a delivery timestamped an hour ago${secret === undefined ? '' : ', validly signed'}`,
      body: event,
      timestamp: now - 3600,
      sign: signed,
      want: 401,
    },
    {
      id: 'webhook-oversized',
      title: 'a 9 KiB delivery (the limit is 8 KiB)',
      body: JSON.stringify({ ...(JSON.parse(event) as object), pad: 'x'.repeat(9 * 1024) }),
      sign: signed,
      want: 413,
    },
    {
      id: 'webhook-not-json',
      title: 'a delivery whose body is not JSON',
      body: 'this is not json',
      sign: signed,
      want: 400,
    },
  ]
  for (const delivery of deliveries) {
    const timestamp = String(delivery.timestamp ?? now)
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (delivery.sign !== 'none') {
      headers['x-agentpress-timestamp'] = timestamp
      headers['x-agentpress-signature'] =
        delivery.sign === 'secret'
          ? computeWebhookSignature(secret!, timestamp, delivery.body)
          : `sha256=${randomBytes(32).toString('hex')}`
    }
    const answer = await context.requester.send({
      method: 'POST',
      url: webhook,
      headers,
      body: delivery.body,
    })
    context.add(delivery.id, delivery.title, judge(answer, delivery))
  }
}

function judge(answer: ProbeResponse, delivery: Delivery): Verdict {
  const { status } = answer
  if (status >= 200 && status < 300) return ['fail', `ACCEPTED: ${status}`]
  if (status >= 500)
    return ['fail', `${status}: a bad delivery must be refused, never a server error`]
  if (status === delivery.want) return ['pass', String(status)]
  // Signed wrongly, any refusal of §5 is right: the signature may be checked before the body.
  if (delivery.sign !== 'secret' && [400, 401, 413, 415].includes(status)) {
    return ['pass', `${status}`]
  }
  return ['fail', `${status}: expected ${delivery.want}`]
}
