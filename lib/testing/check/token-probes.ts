/**
 * The hostile-token probes: each must be answered 401 `invalid_token` (wire contract §2, §4;
 * RFC 8725), never 2xx, never 5xx; and no URL a token names may be fetched.
 *
 * Without a mock issuer `check` cannot sign a token the server's keys verify, so the claim probes
 * (expired, wrong audience, …) are signed by a key of its own: they show the refusal, not which
 * check refused. With `--issuer` the mock mints them with a valid signature, and a server that
 * ignores `aud` or `exp` is caught accepting them.
 */
import { randomBytes } from 'node:crypto'

import { isLoopbackHost } from '../../core/validate.js'
import type { ProbeContext } from './check.js'
import { describe, refusedAsInvalidToken, type Verdict } from './findings.js'
import type { MockIssuer } from './issuer-probes.js'
import { challengeParam, type ProbeResponse } from './request.js'
import {
  foreignKey,
  hs256WithPublicKey,
  plausibleClaims,
  signEdDSA,
  unsigned,
  type ForeignKey,
} from './tokens.js'
import { startTrap } from './trap.js'

export interface TokenContext {
  readonly audience: string
  /** The issuer the metadata names (or the mock's). */
  readonly issuer: string | undefined
  /** The mock's JWKS URL; else `<issuer>/.well-known/jwks.json`. */
  readonly jwksUrl: string | undefined
  readonly scope: string
  readonly extProvider: string
  /** The server runs on this machine: it could reach the trap, so its silence means something. */
  readonly local: boolean
}

interface PublishedKey {
  readonly kid: string
  readonly jwk: Record<string, unknown>
}

/** The issuer's current public key, for the same-kid forgeries and the HS256 confusion. */
async function publishedKey(
  context: ProbeContext,
  tokens: TokenContext,
): Promise<PublishedKey | undefined> {
  const where = tokens.jwksUrl ?? (tokens.issuer && `${tokens.issuer}/.well-known/jwks.json`)
  if (!where || !URL.canParse(where)) return undefined
  const url = new URL(where)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    return undefined
  }
  let answer: ProbeResponse
  try {
    answer = await context.requester.send({ method: 'GET', url })
  } catch {
    return undefined
  }
  try {
    const { keys } = JSON.parse(answer.body) as { keys?: Array<Record<string, unknown>> }
    const key = keys?.find(
      (k) => k.kty === 'OKP' && k.crv === 'Ed25519' && typeof k.kid === 'string' && k.kid !== '',
    )
    return key === undefined ? undefined : { kid: key.kid as string, jwk: key }
  } catch {
    return undefined
  }
}

interface TokenRow {
  readonly id: string
  readonly title: string
  readonly token: string
  /** The wire contract's `error_description` for it. */
  readonly want?: string
}

export async function probeTokens(
  context: ProbeContext,
  tokens: TokenContext,
  mock: MockIssuer | undefined,
): Promise<void> {
  const published = await publishedKey(context, tokens)
  const kid = published?.kid ?? `agentpress-check-${randomBytes(6).toString('hex')}`
  const forger: ForeignKey = foreignKey(kid)
  const base =
    mock !== undefined
      ? await mock.claims()
      : plausibleClaims({ ...tokens, issuer: tokens.issuer ?? 'https://issuer.invalid' })
  const now = Math.floor(Date.now() / 1000)
  const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    ...base,
    jti: randomBytes(12).toString('base64url'),
    iat: now,
    exp: now + 60,
    ...overrides,
  })
  const forged = (overrides: Record<string, unknown> = {}, header = {}): string =>
    signEdDSA(forger.privateKey, { kid, ...header }, claims(overrides))
  // The claim's own refusal text is expected only when the mock signed it; a forgery is refused
  // at its signature first (§2's order of checks).
  const signedByMock = (text: string): string | undefined => (mock === undefined ? undefined : text)
  // With the mock: validly signed, exactly one claim wrong.
  const minted = async (
    request: Parameters<MockIssuer['mint']>[0],
    fallback: Record<string, unknown>,
  ): Promise<string> => (mock === undefined ? forged(fallback) : mock.mint(request))

  const trap = await startTrap({ keys: [forger.publicJwk] })
  try {
    // The one probe a correct verifier may hold (an unknown kid waits for a refetch, §3): sent
    // first, awaited last, so its wait overlaps the others.
    const unknownKid = `agentpress-check-${randomBytes(6).toString('hex')}`
    const held = context.post({
      authorization: `Bearer ${signEdDSA(forger.privateKey, { kid: unknownKid }, claims())}`,
    })
    held.catch(() => {})

    const rows: TokenRow[] = [
      { id: 'alg-none', title: 'alg "none", no signature', token: unsigned(kid, claims()) },
      {
        id: 'alg-hs256-public-key',
        title: 'HS256 keyed with the published public key (alg confusion)',
        token: hs256WithPublicKey(published?.jwk, kid, claims()),
        want: 'Algorithm not allowed',
      },
      {
        id: 'foreign-key-same-kid',
        title: `EdDSA by an unpublished key, the published kid${published ? '' : ' (JWKS not reachable: a made-up kid)'}`,
        token: forged(),
        want: published ? 'Signature verification failed' : undefined,
      },
      {
        id: 'expired',
        title: 'expired two minutes ago',
        token: await minted({ ttlSec: -120 }, { iat: now - 180, exp: now - 120 }),
        want: signedByMock('Token expired'),
      },
      {
        id: 'not-yet-valid',
        title: 'issued ten minutes in the future',
        token: await minted(
          { claims: { iat: now + 600, exp: now + 660 } },
          { iat: now + 600, exp: now + 660 },
        ),
        want: signedByMock('Token not yet valid'),
      },
      {
        id: 'nbf-in-future',
        title: 'nbf ten minutes in the future',
        token: await minted({ claims: { nbf: now + 600 } }, { nbf: now + 600 }),
        want: signedByMock('Token not yet valid'),
      },
      {
        id: 'wrong-audience',
        title: 'aud of another server',
        token: await minted(
          { audience: 'https://agentpress-check.invalid/mcp' },
          { aud: 'https://agentpress-check.invalid/mcp' },
        ),
        want: signedByMock('Audience does not match'),
      },
      {
        id: 'wrong-ext-provider',
        title: 'ext_provider of another partner',
        token: await minted(
          { claims: { ext_provider: 'agentpress-check-other' } },
          { ext_provider: 'agentpress-check-other' },
        ),
        want: signedByMock('ext_provider does not match'),
      },
      {
        id: 'malformed',
        title: 'three segments that are not JSON',
        token: 'bm90IGpzb24.bm90IGpzb24.c2lnbmF0dXJl',
        want: 'Malformed token',
      },
      {
        id: 'oversized',
        title: 'a 9 KiB token (the limit is 8 KiB)',
        token: forged({ pad: 'x'.repeat(9 * 1024) }),
        want: 'Malformed token',
      },
      {
        id: 'jku-header',
        title: 'jku naming a key set on a loopback trap',
        token: forged({}, { jku: `${trap.url}/jku.json` }),
      },
      {
        id: 'jwk-header',
        title: 'the signing key embedded as jwk',
        token: forged({}, { jwk: forger.publicJwk }),
      },
      {
        id: 'x5u-header',
        title: 'x5u naming a certificate on a loopback trap',
        token: forged({}, { x5u: `${trap.url}/x5u.pem` }),
      },
    ]

    const verdicts = new Map<string, Verdict>()
    for (const row of rows) {
      const answer = await context.post({ authorization: `Bearer ${row.token}` })
      verdicts.set(row.id, judge(row, answer))
    }
    const duplicate = await context.post({
      authorization: [`Bearer ${forged()}`, `Bearer ${forged()}`],
    })
    const unknown = await held

    // A fetch a token provoked may trail its answer: give it a moment before reading the counts.
    await new Promise((resolve) => setTimeout(resolve, 250))
    for (const [id, path] of [
      ['jku-header', '/jku.json'],
      ['x5u-header', '/x5u.pem'],
    ] as const) {
      const fetched = trap.count(path)
      const [result, detail] = verdicts.get(id)!
      verdicts.set(
        id,
        fetched > 0
          ? [
              'fail',
              `${detail}; the server FETCHED the URL the token named (${fetched} request(s))`,
            ]
          : tokens.local
            ? [result, `${detail}; the trap saw no request`]
            : [
                result === 'pass' ? 'warn' : result,
                `${detail}; the server is not on this machine, so a fetch of the trap could not be seen`,
              ],
      )
    }
    for (const row of rows.slice(0, 3)) context.add(row.id, row.title, verdicts.get(row.id)!)
    context.add(
      'foreign-key-unknown-kid',
      'EdDSA by an unpublished key, a kid nobody published',
      refusedAsInvalidToken(unknown, 'Signing key not found'),
    )
    for (const row of rows.slice(3)) context.add(row.id, row.title, verdicts.get(row.id)!)
    context.add('duplicate-authorization', 'two Authorization lines', judgeDuplicate(duplicate))
  } finally {
    await trap.close()
  }
}

function judge(row: TokenRow, answer: ProbeResponse): Verdict {
  // A front proxy may refuse a 9 KiB header before the server sees it: not a flaw, not proof.
  if (row.id === 'oversized' && [400, 413, 431, 494].includes(answer.status)) {
    return ['warn', `${answer.status}: refused before the verifier (a proxy's header limit?)`]
  }
  return refusedAsInvalidToken(answer, row.want)
}

/** Two `Authorization` lines: 400 `invalid_request` (§4), or a 401 `invalid_token`. */
function judgeDuplicate(answer: ProbeResponse): Verdict {
  if (answer.status === 400 && challengeParam(answer, 'error') === 'invalid_request') {
    return ['pass', describe(answer)]
  }
  return refusedAsInvalidToken(answer)
}
