// The public surface, pinned: the sorted export list of every entry of package.json, as the
// TypeScript checker sees it through the packed package (values and types; `import` condition),
// and the same runtime names from `import()` and `require()`. Growth shows up here as a reviewed
// diff. The root keeps at most 50 public names (one obvious way per job; see CHANGELOG.md).
import { expect } from 'chai'
import { createRequire } from 'node:module'
import { cp, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import ts from 'typescript'
import { packOnce, repoRoot } from './support/pack.js'

const EXPORTS: Record<string, { values: string[]; types: string[] }> = {
  '.': {
    values: [
      'AUTH_ERRORS',
      'AgentPressAuthError',
      'AgentPressHttpError',
      'AgentPressPartnerStrategy',
      'JwksFetchError',
      'JwksUnavailableError',
      'KEY_ROTATION_ERRORS',
      'KeyRotationVerifyError',
      'MemoryReplayStore',
      'MultiIssuerVerifier',
      'PartnerTokenError',
      'PartnerTokenVerifier',
      'ReplayUnavailableError',
      'agentPressErrorHandler',
      'agentPressIssuer',
      'authenticatePartner',
      'createKeyRotationRouter',
      'protectedResourceMetadata',
      'protectedResourceMetadataUrl',
      'provisionOnce',
      'provisioningKey',
      'refusalOf',
      'requireScopes',
      'verifyKeyRotation',
    ],
    types: [
      'AgentPressAuthInfo',
      'AgentPressPartnerStrategyOptions',
      'AgentPressTypes',
      'AuthErrorReason',
      'AuthenticatePartnerOptions',
      'ErrorHandlerOptions',
      'ErrorMiddleware',
      'IgnoredWebhookEvent',
      'JwksFetchErrorReason',
      'KeyRotationEvent',
      'KeyRotationRouterOptions',
      'KeyRotationVerifyErrorReason',
      'McpAuthInfo',
      'Middleware',
      'PartnerTokenClaims',
      'PartnerTokenErrorReason',
      'PartnerTokenVerifierOptions',
      'ProtectedResourceMetadata',
      'ProtectedResourceMetadataOptions',
      'ReplayStore',
      'RotationFleet',
      'ScopeImplication',
      'TokenVerifier',
      'VerifyFunction',
      'VerifyFunctionWithRequest',
      'VerifyKeyRotationOptions',
    ],
  },
  './testing': {
    values: [
      'computeWebhookSignature',
      'createMockAgentPress',
      'createMockControl',
      'deliverWebhook',
      'signWebhook',
    ],
    types: [
      'DeliverWebhookOptions',
      'JwksMode',
      'MockAgentPress',
      'MockAgentPressOptions',
      'MockAlg',
      'MockControlHandler',
      'MockControlOptions',
      'MockRotateRequest',
      'MockSigningKey',
      'MockTokenRequest',
      'SignWebhookOptions',
      'SignedWebhook',
      'WebhookDeliveryResult',
      'WebhookSigningForm',
    ],
  },
  './express': {
    values: [],
    types: [],
  },
  './diagnostics': {
    values: ['AUDIT_CHANNEL', 'DIAGNOSTICS_CHANNELS', 'readinessHandler', 'startAuditLog'],
    types: [
      'AuditEvent',
      'AuditLogOptions',
      'AuditRecord',
      'FleetConnectionMessage',
      'FleetConnectionState',
      'JwksFetchEndMessage',
      'JwksFetchStartMessage',
      'JwksRevocationMessage',
      'JwksState',
      'JwksStateMessage',
      'JwksStatus',
      'ReadinessBody',
      'ReadinessSource',
      'ReadinessTarget',
      'RequestDecisionMessage',
      'TokenDecisionMessage',
      'TokenOutcome',
      'TokenVerifyTraceContext',
      'WarmUpResult',
      'WebhookDeliveryMessage',
      'WebhookOutcome',
    ],
  },
  './redis': {
    values: ['RedisFleet', 'RedisFleetDamagedError', 'RedisUnavailableError', 'createRedisFleet'],
    types: ['RedisClientLike', 'RedisFleetOptions', 'RedisFleetState', 'RedisFleetStats'],
  },
  './opentelemetry': {
    values: ['METRIC_NAMES', 'instrumentOpenTelemetry'],
    types: ['OpenTelemetryHandle', 'OpenTelemetryOptions'],
  },
  './mcp': {
    values: [
      'limitToScopes',
      'limitToolsToScopes',
      'partnerTokenVerifier',
      'requireMcpScopes',
      'requireToolScopes',
    ],
    types: [
      'GrantedScopes',
      'McpScopeGate',
      'McpScopeRules',
      'PartnerOAuthTokenVerifier',
      'PartnerTokenVerifierAdapterOptions',
      'ScopeRule',
      'ScopeRuleAuthInfo',
      'ScopeRuleFunction',
      'ScopedRegistry',
      'ToolRegistry',
      'ToolScopeGate',
      'ToolScopes',
    ],
  },
  './mcp/v2': {
    values: [
      'limitToScopes',
      'limitToolsToScopes',
      'partnerTokenVerifier',
      'requireMcpScopes',
      'requireToolScopes',
    ],
    types: [
      'GrantedScopes',
      'McpScopeGate',
      'McpScopeRules',
      'PartnerOAuthTokenVerifier',
      'PartnerTokenVerifierAdapterOptions',
      'ScopeRule',
      'ScopeRuleAuthInfo',
      'ScopeRuleFunction',
      'ScopedRegistry',
      'ToolRegistry',
      'ToolScopeGate',
      'ToolScopes',
    ],
  },
}

const run = promisify(execFile)
const pkg = createRequire(import.meta.url)(join(repoRoot, 'package.json')) as {
  exports: Record<string, unknown>
}
const SUBPATHS = Object.keys(pkg.exports).filter((s) => s !== './package.json')

/** Every name an entry exports, split into runtime values and type-only names, by the checker. */
async function checkerExports(): Promise<Map<string, { values: string[]; types: string[] }>> {
  const { root } = await packOnce()
  const dir = join(root, 'export-lists')
  await mkdir(dir, { recursive: true })
  const files: string[] = []
  for (const [i, subpath] of SUBPATHS.entries()) {
    const file = join(dir, `entry-${i}.mts`)
    const specifier = `passport-agentpress-partner${subpath.slice(1)}`
    await writeFile(file, `export * as entry from '${specifier}'\n`)
    files.push(file)
  }
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  })
  const checker = program.getTypeChecker()
  const lists = new Map<string, { values: string[]; types: string[] }>()
  for (const [i, subpath] of SUBPATHS.entries()) {
    const source = program.getSourceFile(files[i]!)!
    const reexport = source.statements[0] as ts.ExportDeclaration
    const moduleSymbol = checker.getSymbolAtLocation(reexport.moduleSpecifier!)
    expect(moduleSymbol, `${subpath} resolves`).to.not.equal(undefined)
    const values: string[] = []
    const types: string[] = []
    for (const symbol of checker.getExportsOfModule(moduleSymbol!)) {
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
      ;(target.flags & ts.SymbolFlags.Value ? values : types).push(symbol.getName())
    }
    lists.set(subpath, { values: values.sort(), types: types.sort() })
  }
  return lists
}

/** The runtime names of every entry, from `import()` and from `require()` in a consumer project. */
async function runtimeExports(): Promise<Record<string, string[]>> {
  // A project of its own: the packed package copied beside links to every optional peer (the
  // shared consumer directory leaves `redis` out on purpose, see test/packaging.test.ts).
  const { root } = await packOnce()
  const dir = join(root, 'export-runtime')
  const modules = join(dir, 'node_modules')
  await mkdir(join(modules, '@opentelemetry'), { recursive: true })
  await mkdir(join(modules, '@modelcontextprotocol'), { recursive: true })
  await cp(
    join(root, 'node_modules', 'passport-agentpress-partner'),
    join(modules, 'passport-agentpress-partner'),
    { recursive: true },
  )
  for (const name of [
    'passport-strategy',
    'redis',
    '@opentelemetry/api',
    '@modelcontextprotocol/sdk',
    '@modelcontextprotocol/server',
  ])
    await symlink(join(repoRoot, 'node_modules', name), join(modules, name))
  const script = join(dir, 'runtime.mjs')
  await writeFile(
    script,
    `import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const out = {}
for (const subpath of ${JSON.stringify(SUBPATHS)}) {
  const specifier = 'passport-agentpress-partner' + subpath.slice(1)
  out[subpath] = Object.keys(await import(specifier)).sort()
  out['require:' + subpath] = Object.keys(require(specifier)).filter((n) => n !== '__esModule').sort()
}
process.stdout.write(JSON.stringify(out))
`,
  )
  const { stdout } = await run(process.execPath, [script], { cwd: dir })
  return JSON.parse(stdout) as Record<string, string[]>
}

describe('the public surface of every entry (export snapshots)', function () {
  this.timeout(120_000)
  let lists: Map<string, { values: string[]; types: string[] }>
  let runtime: Record<string, string[]>
  before(async () => {
    lists = await checkerExports()
    runtime = await runtimeExports()
  })

  it('every entry of package.json has a snapshot here, and no snapshot names a missing entry', () => {
    expect(Object.keys(EXPORTS).sort()).to.deep.equal([...SUBPATHS].sort())
  })

  for (const subpath of SUBPATHS) {
    it(`${subpath}: the checker's export list is the snapshot`, () => {
      expect(lists.get(subpath)).to.deep.equal(EXPORTS[subpath])
    })

    it(`${subpath}: import() and require() expose exactly the snapshot's values`, () => {
      expect(runtime[subpath], 'import()').to.deep.equal(EXPORTS[subpath]?.values)
      expect(runtime[`require:${subpath}`], 'require()').to.deep.equal(EXPORTS[subpath]?.values)
    })
  }

  it('the root has at most 50 public names (values and types)', () => {
    const root = lists.get('.')!
    expect(root.values.length + root.types.length).to.be.at.most(50)
  })
})
