// createKeyRotationRouter options: every refusal with its exact TypeError message, and the verifier
// list taken as a snapshot.
import type { RequestListener } from 'node:http'
import { expect } from 'chai'
import express from 'express'
import request from 'supertest'
import { createKeyRotationRouter, type KeyRotationRouterOptions } from 'passport-agentpress-partner'
import { signWebhook } from 'passport-agentpress-partner/testing'
import { EVENT, FakeVerifier, ISSUER_A, PATH, SECRET, listen, routerHooks } from './support.js'

describe('createKeyRotationRouter options', () => {
  routerHooks()
  const verifier = new FakeVerifier(ISSUER_A)
  const cases: Array<[string, unknown, string]> = [
    ['no options', undefined, 'createKeyRotationRouter: options must be an object'],
    ['no secret', { verifiers: [verifier] }, 'webhookSecret must be a string'],
    [
      'a short secret',
      { webhookSecret: 'short', verifiers: [verifier] },
      'webhookSecret must be at least 16 characters long',
    ],
    [
      'an empty secret',
      { webhookSecret: '', verifiers: [verifier] },
      'webhookSecret must not be empty',
    ],
    [
      'a secret with a trailing newline',
      { webhookSecret: `${SECRET}\n`, verifiers: [verifier] },
      'webhookSecret must not have leading or trailing whitespace',
    ],
    [
      'a bad second secret',
      { webhookSecret: [SECRET, ' x'], verifiers: [verifier] },
      'webhookSecret[1] must be at least 16 characters long',
    ],
    [
      'neither strategy nor verifiers',
      { webhookSecret: SECRET },
      'strategy or verifiers is required',
    ],
    [
      'both strategy and verifiers',
      { webhookSecret: SECRET, verifiers: [verifier], strategy: { verifiers: [verifier] } },
      'pass either strategy or verifiers, not both',
    ],
    [
      'an empty verifiers array',
      { webhookSecret: SECRET, verifiers: [] },
      'verifiers must be a non-empty array',
    ],
    [
      'a strategy without verifiers',
      { webhookSecret: SECRET, strategy: {} },
      'strategy.verifiers must be a non-empty array',
    ],
    [
      'a null verifier',
      { webhookSecret: SECRET, verifiers: [null] },
      'verifiers[0] must be a TokenVerifier',
    ],
    [
      'verifiers that cannot refresh',
      { webhookSecret: SECRET, verifiers: [{ verifyToken: async () => ({}) }] },
      'verifiers: no verifier has refreshJwks(), so a rotation could change nothing',
    ],
    [
      'a non-function onRotation',
      { webhookSecret: SECRET, verifiers: [verifier], onRotation: 'log' },
      'onRotation must be a function',
    ],
    [
      'a negative toleranceSec',
      { webhookSecret: SECRET, verifiers: [verifier], toleranceSec: -1 },
      'toleranceSec must be a finite, non-negative number of seconds',
    ],
    [
      'a NaN bodyTimeoutMs',
      { webhookSecret: SECRET, verifiers: [verifier], bodyTimeoutMs: Number.NaN },
      'bodyTimeoutMs must be a finite number of milliseconds greater than 0',
    ],
    [
      'an infinite refreshTimeoutMs',
      { webhookSecret: SECRET, verifiers: [verifier], refreshTimeoutMs: Infinity },
      'refreshTimeoutMs must be a finite number of milliseconds greater than 0',
    ],
    [
      'a fractional maxRememberedIds',
      { webhookSecret: SECRET, verifiers: [verifier], maxRememberedIds: 1.5 },
      'maxRememberedIds must be a positive integer',
    ],
  ]
  for (const [label, options, message] of cases) {
    it(`${label} → TypeError`, () => {
      const create = () => createKeyRotationRouter(options as KeyRotationRouterOptions)
      expect(create).to.throw(TypeError, message)
    })
  }

  it('snapshots the verifier list: later mutation changes nothing', async () => {
    const list = [verifier]
    const router = createKeyRotationRouter({ webhookSecret: SECRET, verifiers: list })
    list.length = 0
    const { url } = await listen(express().use(PATH, router) as unknown as RequestListener)
    const before = verifier.refreshes
    const { body, headers } = signWebhook({ ...EVENT, id: 'snapshot' }, { secret: SECRET })
    const res = await request(url).post(PATH).set(headers).send(body)
    expect([res.status, res.body]).to.deep.equal([200, { received: true }])
    expect(verifier.refreshes).to.equal(before + 1)
  })
})
