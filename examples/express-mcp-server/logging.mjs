/**
 * Operator log lines from the package's diagnostics channels: webhook refusals, rotations, JWKS
 * failures and readiness changes, one line each. The messages carry no token, kid, claim or
 * secret, so nothing here can leak one. The same few lines work with any logger: pass
 * `(line) => pino.info(line)`, `(line) => winston.warn(line)` or `console.log`.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { DIAGNOSTICS_CHANNELS } from 'passport-agentpress-partner/diagnostics'

/**
 * Subscribes `log` to the channels; returns the function that unsubscribes. Channels are
 * process-wide: JWKS lines are filtered to `issuers` (this server's), webhook lines are this
 * process's deliveries.
 *
 * @param {(line: string) => void} log
 * @param {{ issuers: readonly string[] }} options
 * @returns {() => void}
 */
export function logThroughChannels(log, { issuers }) {
  const ours = new Set(issuers)
  let parsedWarned = false
  const listeners = {
    [DIAGNOSTICS_CHANNELS.webhookDelivery]: (m) => {
      // Another server's verified delivery (refusals carry no issuer: they are logged by all).
      if (m.issuer !== null && m.outcome !== 'ignored' && !ours.has(m.issuer)) return
      const id = m.eventId === null ? '' : ` (delivery ${m.eventId})`
      if (m.outcome === 'accepted') {
        const revoked = m.emergency ? '; emergency: the retired key is refused' : ''
        log(`key rotation: signing keys refreshed for ${m.issuer ?? 'every issuer'}${id}${revoked}`)
      } else if (m.outcome === 'duplicate') log(`key rotation: duplicate acknowledged${id}`)
      else if (m.outcome === 'ignored') log(`key rotation: ignored, ${m.reason} ${m.issuer}${id}`)
      else if (m.outcome === 'unavailable') {
        const what = m.reason === 'jwks_unavailable' ? 'JWKS refresh failed' : m.reason
        log(`key rotation: ${what}, answered 503 so AgentPress retries${id}`)
      } else if (m.reason === 'body_already_parsed') {
        // A setup mistake only AgentPress would see (it retries for a day): once, loudly.
        if (parsedWarned) return
        parsedWarned = true
        log(
          'KEY ROTATION WEBHOOK MISCONFIGURED: a body parser (express.json()?) ran before the ' +
            'key-rotation router, so every delivery fails with 500 body_already_parsed. Mount the ' +
            'router before any body parser.',
        )
      } else log(`key rotation webhook refused: ${m.status} ${m.reason}`)
    },
    [DIAGNOSTICS_CHANNELS.jwksFetchEnd]: (m) => {
      if (m.outcome !== 'failure' || !ours.has(m.issuer)) return
      const status = m.httpStatus === null ? '' : ` (HTTP ${m.httpStatus})`
      log(`JWKS fetch failed for ${m.issuer}: ${m.reason}${status}`)
    },
    [DIAGNOSTICS_CHANNELS.jwksState]: (m) => {
      if (!ours.has(m.issuer)) return
      if (m.state === 'unavailable') log(`signing keys unavailable for ${m.issuer}: answering 503`)
      else if (m.previous === 'unavailable') log(`signing keys available again for ${m.issuer}`)
    },
  }
  // A subscriber that throws would surface as an uncaught exception: a log line never may.
  const safe = Object.entries(listeners).map(([name, listener]) => [
    name,
    (message) => {
      try {
        listener(message)
      } catch {
        // dropped: logging must not take the server down
      }
    },
  ])
  for (const [name, listener] of safe) subscribe(name, listener)
  return () => {
    for (const [name, listener] of safe) unsubscribe(name, listener)
  }
}
