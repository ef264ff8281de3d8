// The reason table decides (core/reasons.ts): change one row's status there, and only there, and
// every path answers the new status with a coherent challenge and body. A scratch copy of lib/ is
// built with two rows changed (expired 401 → 403, user_not_provisioned 403 → 401), then served
// through real Passport (`passport.authenticate`, plain and with `failWithError` and
// `agentPressErrorHandler`) and
// `authenticatePartner(strategy)` on a real Express app on 127.0.0.1.
import { execFileSync } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { expect } from 'chai'
import express from 'express'
import { createMockAgentPress, type MockAgentPress } from 'passport-agentpress-partner/testing'
import { captureErrorLogs, finalhandlerPage, newPassport } from '../support/stacks.js'

type Package = typeof import('passport-agentpress-partner')

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const REALM = 'mcp'

// Copies lib/ to .tmp/ (git-ignored), rewrites the given rows of the table and builds the copy; returns its root
// module (a second copy of the package, with its own classes).
function buildScratch(rows: Record<string, [from: number, to: number]>): {
  dir: string
  pkg: Promise<Package>
} {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true })
  const dir = mkdtempSync(join(ROOT, '.tmp/reason-table-'))
  cpSync(join(ROOT, 'lib'), join(dir, 'lib'), { recursive: true })
  const file = join(dir, 'lib/core/refusals/reasons.ts')
  let table = readFileSync(file, 'utf8')
  for (const [reason, [from, to]] of Object.entries(rows)) {
    const before = `  ${reason}: row(${from}, `
    expect(table, `row ${reason} of the table`).to.include(before)
    table = table.replace(before, `  ${reason}: row(${to}, `)
  }
  writeFileSync(file, table)
  // The package's own compiler options (tsconfig.json may hold comments: extend it, don't parse
  // it), with the copy's paths, and the same CommonJS marker the build writes beside dist/.
  const config = {
    extends: join(ROOT, 'tsconfig.json'),
    compilerOptions: { rootDir: 'lib', outDir: 'dist', declaration: false },
    include: ['lib/**/*.ts'],
  }
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(config))
  mkdirSync(join(dir, 'dist'), { recursive: true })
  copyFileSync(join(ROOT, 'dist/package.json'), join(dir, 'dist/package.json'))
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir])
  return { dir, pkg: import(pathToFileURL(join(dir, 'dist/index.js')).href) as Promise<Package> }
}

describe('the reason table decides every path (a changed row, built from a scratch copy)', function () {
  this.timeout(120_000)
  captureErrorLogs()
  let dir: string
  let mock: MockAgentPress
  let server: Server
  let base: string

  before(async () => {
    const scratch = buildScratch({ expired: [401, 403], user_not_provisioned: [403, 401] })
    dir = scratch.dir
    const { AgentPressPartnerStrategy, agentPressErrorHandler, authenticatePartner } =
      await scratch.pkg
    mock = await createMockAgentPress()
    const strategy = new AgentPressPartnerStrategy(
      { partnerMcp: mock.partnerMcp, realm: REALM, resourceMetadataUrl: false },
      (claims, done) => done(null, claims.sub === 'nobody' ? false : { id: claims.sub }),
    )
    const passport = newPassport()
    passport.use(strategy)
    const app = express()
    const ok: express.RequestHandler = (_req, res) => {
      res.json({ ok: true })
    }
    app.get('/passport', passport.authenticate('agentpress-partner', { session: false }), ok)
    app.get(
      '/partner-passport',
      passport.authenticate('agentpress-partner', { session: false, failWithError: true }),
      ok,
    )
    app.get('/partner-strategy', authenticatePartner(strategy), ok)
    app.use('/partner-passport', agentPressErrorHandler())
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s))
    })
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  after(async () => {
    await new Promise((resolve) => server?.close(resolve))
    await mock?.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  async function answer(path: string, token: string): Promise<[number, string | null, string]> {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } })
    return [res.status, res.headers.get('www-authenticate'), await res.text()]
  }

  const expiredToken = (): string => {
    const now = Math.floor(Date.now() / 1000)
    return mock.signToken({ iat: now - 600, exp: now - 300 })
  }

  const EXPIRED_CHALLENGE =
    'Bearer realm="mcp", error="invalid_token", error_description="Token expired"'
  const EXPIRED_JSON = '{"error":"invalid_token","error_description":"Token expired"}'
  const UNPROVISIONED_CHALLENGE =
    'Bearer realm="mcp", error="user_not_provisioned", error_description="User not provisioned"'
  const UNPROVISIONED_JSON =
    '{"error":"user_not_provisioned","error_description":"User not provisioned"}'

  it('expired (now 403): an error with the invalid_token challenge on every path', async () => {
    expect(await answer('/passport', expiredToken())).to.deep.equal([
      403,
      EXPIRED_CHALLENGE,
      finalhandlerPage('PartnerTokenError: Token expired', 403),
    ])
    expect(await answer('/partner-passport', expiredToken())).to.deep.equal([
      403,
      EXPIRED_CHALLENGE,
      EXPIRED_JSON,
    ])
    expect(await answer('/partner-strategy', expiredToken())).to.deep.equal([
      403,
      EXPIRED_CHALLENGE,
      EXPIRED_JSON,
    ])
  })

  it('user_not_provisioned (now 401): a Passport failure with its challenge on every path', async () => {
    const token = (): string => mock.signToken({ sub: 'nobody' })
    expect(await answer('/passport', token())).to.deep.equal([
      401,
      UNPROVISIONED_CHALLENGE,
      'Unauthorized',
    ])
    expect(await answer('/partner-passport', token())).to.deep.equal([
      401,
      UNPROVISIONED_CHALLENGE,
      UNPROVISIONED_JSON,
    ])
    expect(await answer('/partner-strategy', token())).to.deep.equal([
      401,
      UNPROVISIONED_CHALLENGE,
      UNPROVISIONED_JSON,
    ])
  })

  it('an unchanged row answers as before, and a valid token passes', async () => {
    for (const path of ['/passport', '/partner-passport', '/partner-strategy']) {
      expect(await answer(path, mock.signToken()), path).to.deep.equal([200, null, '{"ok":true}'])
    }
    expect(await answer('/partner-strategy', `${mock.signToken()}x`)).to.deep.equal([
      401,
      'Bearer realm="mcp", error="invalid_token", error_description="Malformed token"',
      '{"error":"invalid_token","error_description":"Malformed token"}',
    ])
  })
})
