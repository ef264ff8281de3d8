/**
 * What `check` reports: one finding per probe, and the judgements the probes share.
 */
import { challengeParam, hasBearerChallenge, type ProbeResponse } from './request.js'

/**
 * `pass`: the server answered as it must. `fail`: it did not (exit 1). `warn`: worth a look, not
 * a failure (e.g. plain http to a public host). `skip`: the probe needs an option or an answer
 * the run did not have.
 */
export type CheckResult = 'pass' | 'fail' | 'warn' | 'skip'

export interface Finding {
  /** Stable name, e.g. `alg-none`; the tests and scripts key on it. */
  readonly id: string
  /** What was sent, in words. */
  readonly title: string
  readonly result: CheckResult
  /** What came back, or why it was skipped. */
  readonly detail: string
}

export type Verdict = readonly [CheckResult, string]

/** Short description of an answer: `401 invalid_token "Token expired"`. */
export function describe(response: ProbeResponse): string {
  const error = challengeParam(response, 'error')
  const description = challengeParam(response, 'error_description')
  return [
    String(response.status),
    error,
    description === undefined ? undefined : JSON.stringify(description),
  ]
    .filter((part) => part !== undefined)
    .join(' ')
}

/** A token the server must refuse: 401 with a `Bearer error="invalid_token"` challenge. */
export function refusedAsInvalidToken(response: ProbeResponse, want?: string): Verdict {
  const { status } = response
  if (status >= 200 && status < 300) return ['fail', `ACCEPTED: ${describe(response)}`]
  if (status >= 500) {
    return ['fail', `${describe(response)}: a bad token must be 401, never a server error`]
  }
  if (status !== 401 || challengeParam(response, 'error') !== 'invalid_token') {
    return ['fail', `${describe(response)}: expected 401 with error="invalid_token"`]
  }
  const description = challengeParam(response, 'error_description')
  if (want !== undefined && description !== undefined && description !== want) {
    return ['pass', `${describe(response)} (the wire contract's text is ${JSON.stringify(want)})`]
  }
  return ['pass', describe(response)]
}

/** No credentials: 401 with a `Bearer` challenge pointing at the metadata (RFC 9728 §5.1). */
export function challengedWithoutToken(response: ProbeResponse): Verdict {
  const { status } = response
  if (status >= 200 && status < 300) return ['fail', `ACCEPTED without a token: ${status}`]
  if (status >= 500) return ['fail', `${status}: a request without a token got a server error`]
  if (status !== 401) return ['fail', `${status}: expected 401 with a Bearer challenge`]
  if (!hasBearerChallenge(response)) return ['fail', '401 without a Bearer challenge']
  const metadata = challengeParam(response, 'resource_metadata')
  if (metadata === undefined) {
    return ['fail', '401 Bearer without resource_metadata: clients cannot discover the issuer']
  }
  const scope = challengeParam(response, 'scope')
  return [
    'pass',
    `401 Bearer resource_metadata="${metadata}"${scope === undefined ? '' : ` scope="${scope}"`}`,
  ]
}
