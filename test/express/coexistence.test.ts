// `import 'passport-agentpress-partner/express'` beside the MCP SDKs' own `req.auth` declarations
// (`@modelcontextprotocol/express` 2.x, v1's `requireBearerAuth`), under `skipLibCheck: false`:
// before, TS2717 / TS2687 ("Subsequent property declarations must have the same type", "All
// declarations of 'auth' must have identical modifiers"). Compiled from npm pack by TypeScript
// 5.9 and 7.
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { packOnce, repoRoot } from '../support/pack.js'

const exec = promisify(execFile)

// v1 and v2 each declare \`auth?: AuthInfo\` with their own AuthInfo, so they cannot share one
// program under skipLibCheck: false (TS2717 between the two SDKs); one program per SDK.
const V2 = `
import 'passport-agentpress-partner/express'
import express from 'express'
import { requireBearerAuth } from '@modelcontextprotocol/express'
import { PartnerTokenVerifier, type AgentPressAuthInfo, type McpAuthInfo } from 'passport-agentpress-partner'
import { partnerTokenVerifier } from 'passport-agentpress-partner/mcp/v2'

const verifier = new PartnerTokenVerifier({
  issuer: 'https://api.agent.press/orgs/acme',
  audience: 'https://mcp.example.com/mcp',
  expectedExtProvider: 'example',
})
const app = express()
app.post('/v2', requireBearerAuth({ verifier: partnerTokenVerifier(verifier) }), (req, res) => {
  const info: AgentPressAuthInfo = req.authInfo
  const auth: McpAuthInfo | undefined = req.auth
  res.json({ scopes: info.scopes, clientId: auth?.clientId, metadata: req.auth?.resourceMetadataUrl })
})
export default app
`
const V1 = `
import 'passport-agentpress-partner/express'
import express from 'express'
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js'
import { PartnerTokenVerifier, type AgentPressAuthInfo, type McpAuthInfo } from 'passport-agentpress-partner'
import { partnerTokenVerifier } from 'passport-agentpress-partner/mcp'

const verifier = new PartnerTokenVerifier({
  issuer: 'https://api.agent.press/orgs/acme',
  audience: 'https://mcp.example.com/mcp',
  expectedExtProvider: 'example',
})
const app = express()
app.post('/v1', requireBearerAuth({ verifier: partnerTokenVerifier(verifier) }), (req, res) => {
  const info: AgentPressAuthInfo = req.authInfo
  const auth: McpAuthInfo | undefined = req.auth
  res.json({ scopes: info.scopes, clientId: auth?.clientId })
})
export default app
`

describe("'/express' types beside the MCP SDKs' own req.auth (skipLibCheck: false)", function () {
  this.timeout(300_000)
  for (const [sdk, app, typescript] of [
    ['@modelcontextprotocol/express (v2)', V2, 'typescript'],
    ['@modelcontextprotocol/express (v2)', V2, 'typescript7'],
    ["v1's requireBearerAuth", V1, 'typescript'],
    ["v1's requireBearerAuth", V1, 'typescript7'],
  ] as const) {
    it(`${typescript}: compiles beside ${sdk}`, async () => {
      const { root } = await packOnce()
      const dir = join(root, `express-coexistence-${typescript}-${app === V1 ? 'v1' : 'v2'}`)
      await mkdir(dir, { recursive: true })
      await writeFile(join(dir, 'package.json'), '{"private":true,"type":"module"}')
      await writeFile(join(dir, 'app.ts'), app)
      await writeFile(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            skipLibCheck: false,
            module: 'nodenext',
            target: 'ES2022',
            lib: ['ES2022', 'DOM'],
            types: ['node'],
            noEmit: true,
          },
          files: ['app.ts'],
        }),
      )
      const tsc = join(repoRoot, 'node_modules', typescript, 'bin', 'tsc')
      const result = await exec(process.execPath, [tsc, '-p', '.'], { cwd: dir }).then(
        ({ stdout }) => ({ code: 0, output: stdout.trim() }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code,
          output: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim(),
        }),
      )
      expect(result).to.deep.equal({ code: 0, output: '' })
    })
  }
})
