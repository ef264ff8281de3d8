/**
 * The MCP scope gate: scopes for every operation on the one MCP endpoint. Every MCP request goes
 * to the same `POST /mcp`, so a route-level `requireScopes('notes:write')` would refuse the read
 * operations too; this gate reads the JSON-RPC body instead and asks, for each request message of
 * the body (one, or a batch), for the scopes its rule names: `tools/call` by tool name,
 * `resources/read` by URI (exact, URI template or prefix), `prompts/get` by prompt name, and any
 * method by a catch-all rule. One HTTP request gets one answer: the union of every message's
 * scopes in one 403 `insufficient_scope` challenge, exactly as `requireScopes` gives it (MCP
 * 2025-11-25, "Scope challenge handling": the `scope` lists what the operation needs).
 *
 * Plain `(req, res, next)` over Node's request and response: it runs unchanged under Express 4,
 * Express 5 and Connect, in front of the MCP SDK's v1 or v2 transport.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

import {
  checkImplication,
  checkScopes,
  hasScopes,
  isScopeToken,
  type Implication,
  type ScopeImplication,
} from '../core/token/scope.js'
import {
  optionalBoolean,
  optionalFunction,
  optionsObject,
  rejectUnknownKeys,
} from '../core/validate.js'
import { sendJson, type Middleware } from '../http/connect.js'
import { auditCalls } from '../http/audit.js'
import { scopeImplicationOf, type RefusalCarrier } from '../http/refusal.js'
import { grantedScopes, refuseScopes } from '../middleware/require-scopes.js'

/**
 * Tool name → the scopes a call of it needs, all of them (flat set, no wildcards). `[]` marks a
 * tool every authenticated caller may use.
 *
 * @example
 * ```ts
 * const toolScopes: ToolScopes = { list_notes: ['mcp:read'], add_note: ['mcp:write'] }
 * ```
 */
export type ToolScopes = Readonly<Record<string, readonly string[]>>

/**
 * What the granted scopes can be read from: the MCP SDK's `AuthInfo` (`req.auth`, or
 * `extra.authInfo` / `ctx.http.authInfo` in a handler), our `req.authInfo`, or a list of scopes.
 *
 * @example
 * ```ts
 * const granted: GrantedScopes = extra.authInfo // { scopes: ['mcp:read'], … }
 * ```
 */
export type GrantedScopes = { readonly scopes: readonly string[] } | readonly string[] | undefined

/**
 * The caller's `AuthInfo` as a rule function sees it: `req.auth` (the MCP SDK's shape, set by
 * our strategy and by the SDK's `requireBearerAuth`), else `req.authInfo`; `undefined` when no
 * authentication ran before the gate.
 *
 * @example
 * ```ts
 * const rule: ScopeRuleFunction = (_params, auth?: ScopeRuleAuthInfo) =>
 *   auth?.clientId === 'acme' ? ['notes:read'] : ['notes:admin']
 * ```
 */
export interface ScopeRuleAuthInfo {
  readonly scopes: readonly string[]
  readonly clientId?: string
  readonly extra?: Readonly<Record<string, unknown>>
  readonly [key: string]: unknown
}

/**
 * A rule computed from the message: `params` is the JSON-RPC `params` object of the message
 * (`{ name, arguments }` for `tools/call`, `{ uri }` for `resources/read`, `{}` when absent).
 * Synchronous; it returns the scopes the call needs (`[]`: none). If it throws or returns
 * anything but a list of scope tokens, the request is answered 500 (a JSON-RPC error naming the
 * rule, never the error's text or stack) and `onRuleError` is told.
 *
 * @example
 * ```ts
 * const writeFile: ScopeRuleFunction = (params) =>
 *   (params.arguments as { folder?: string } | undefined)?.folder === 'shared'
 *     ? ['files:write', 'files:share']
 *     : ['files:write']
 * ```
 */
export type ScopeRuleFunction = (
  params: Readonly<Record<string, unknown>>,
  authInfo: ScopeRuleAuthInfo | undefined,
) => readonly string[]

/**
 * A rule: the scopes an operation needs (all of them), or a function computing them from the
 * message's params.
 *
 * @example
 * ```ts
 * const rule: ScopeRule = ['notes:read']
 * ```
 */
export type ScopeRule = readonly string[] | ScopeRuleFunction

/**
 * The rules of {@link requireMcpScopes}. A request message is matched, most specific first:
 *
 * - `tools/call`: `tools[params.name]`, else `methods['tools/call']`;
 * - `resources/read` (and `resources/subscribe` / `resources/unsubscribe`): the `resources` rule
 *   of `params.uri` — an exact URI; else every URI template (`notes://{folder}/{id}`, RFC 6570)
 *   that matches (their scopes together); else the longest prefix (a key ending in `*`,
 *   `notes://public/*`) — else `methods[method]`;
 * - `prompts/get`: `prompts[params.name]`, else `methods['prompts/get']`;
 * - any other method: `methods[method]`.
 *
 * A message with no rule passes (the MCP server answers it), unless `failClosed`.
 *
 * @example
 * ```ts
 * const rules: McpScopeRules = {
 *   tools: { list_notes: ['notes:read'], add_note: ['notes:write'] },
 *   resources: { 'notes://public/*': ['notes:read'], 'notes://private/*': ['notes:private'] },
 *   prompts: { summarize: ['notes:read'], rewrite: ['notes:write'] },
 *   methods: { 'completion/complete': ['notes:read'] },
 *   failClosed: true,
 * }
 * ```
 */
export interface McpScopeRules {
  /** Tool name → rule, for `tools/call`. */
  readonly tools?: Readonly<Record<string, ScopeRule>> | undefined
  /** Exact URI, URI template or prefix (ending in `*`) → rule, for `resources/read`. */
  readonly resources?: Readonly<Record<string, ScopeRule>> | undefined
  /** Prompt name → rule, for `prompts/get`. */
  readonly prompts?: Readonly<Record<string, ScopeRule>> | undefined
  /** JSON-RPC method → rule: the catch-all of the method (tools, resources and prompts included). */
  readonly methods?: Readonly<Record<string, ScopeRule>> | undefined
  /**
   * Refuse every request message that has no rule (403 `insufficient_scope` naming no scope),
   * except the ones that only set up or describe the session: `initialize`, `ping`,
   * notifications, and the lists (`tools/list`, `resources/list`, `resources/templates/list`,
   * `prompts/list`; give them a `methods` rule to require scopes). Default `false`.
   */
  readonly failClosed?: boolean | undefined
  /**
   * Opt-in scope hierarchy (`{ 'notes:write': ['notes:read'] }`). Default: the `implies` of the
   * strategy that authenticated the request, if any; else flat sets (§2). `{}` forces flat sets.
   */
  readonly implies?: ScopeImplication | undefined
  /** Told when a rule function throws or returns something other than scopes (for your logs). */
  readonly onRuleError?: ((error: unknown, rule: string) => void) | undefined
}

/**
 * The middleware returned by {@link requireMcpScopes}, with the questions list filtering asks
 * (see `limitToScopes` in `passport-agentpress-partner/mcp`): whether a token may use a tool, a
 * prompt, a resource or a resource template. They answer as the gate would for a call with no
 * arguments: a rule function is called with `{ name }` (or `{ uri }`), and one that throws hides
 * the item. An item with no rule is allowed, unless `failClosed`.
 *
 * @example
 * ```ts
 * const gate: McpScopeGate = requireMcpScopes({ tools: { list_notes: ['notes:read'] } })
 * gate.allowsTool('list_notes', ['notes:read']) // true
 * ```
 */
export interface McpScopeGate extends Middleware {
  /** Whether the gate refuses messages without a rule. */
  readonly failClosed: boolean
  /** Whether a token with `granted` may call tool `name`. */
  allowsTool(name: string, granted: GrantedScopes): boolean
  /** Whether a token with `granted` may get prompt `name`. */
  allowsPrompt(name: string, granted: GrantedScopes): boolean
  /** Whether a token with `granted` may read resource `uri`. */
  allowsResource(uri: string, granted: GrantedScopes): boolean
  /**
   * Whether a token with `granted` may read resources of the URI template `uriTemplate` (as the
   * server registered it): the `resources` rule keyed by that very template, else the longest
   * prefix rule the template's literal start falls under, else `methods['resources/read']`.
   */
  allowsResourceTemplate(uriTemplate: string, granted: GrantedScopes): boolean
  /** The same as {@link McpScopeGate.allowsTool}. */
  allows(tool: string, granted: GrantedScopes): boolean
}

/**
 * The gate {@link requireToolScopes} returns: an {@link McpScopeGate} with its tool table.
 *
 * @example
 * ```ts
 * const gate: ToolScopeGate = requireToolScopes({ list_notes: ['mcp:read'] })
 * gate.allows('list_notes', ['mcp:read']) // true
 * ```
 */
export interface ToolScopeGate extends McpScopeGate {
  /** The validated, frozen table. */
  readonly toolScopes: ToolScopes
}

// The only media type of an MCP message body (MCP Streamable HTTP: the POST body is JSON).
const MCP_MEDIA_TYPE = /^application\/json\s*(?:;|$)/i

// JSON-RPC's "server error" code the MCP SDK's transport uses for its own HTTP-level refusals.
const SERVER_ERROR = -32000
// JSON-RPC "internal error": a rule function failed.
const INTERNAL_ERROR = -32603

// Messages failClosed lets through without a rule: setting up and describing the session.
const SETUP_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'prompts/list',
])
const RESOURCE_METHODS: ReadonlySet<string> = new Set([
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
])

const RULE_OPTIONS: ReadonlySet<string> = new Set([
  'tools',
  'resources',
  'prompts',
  'methods',
  'failClosed',
  'implies',
  'onRuleError',
])

interface NamedRule {
  /** Where the rule is configured, e.g. `tools["add_note"]` (for errors and challenges' order). */
  readonly where: string
  readonly rule: readonly string[] | ScopeRuleFunction
}

interface TemplateRule extends NamedRule {
  readonly template: string
  readonly pattern: RegExp
}

interface PrefixRule extends NamedRule {
  readonly prefix: string
}

/** Every rule, validated and frozen. */
interface RuleBook {
  readonly tools: ReadonlyMap<string, NamedRule>
  readonly prompts: ReadonlyMap<string, NamedRule>
  readonly methods: ReadonlyMap<string, NamedRule>
  readonly exactResources: ReadonlyMap<string, NamedRule>
  readonly templateResources: readonly TemplateRule[]
  /** Longest prefix first. */
  readonly prefixResources: readonly PrefixRule[]
  /** Each static scope's first position in the rules: the order of every challenge's list. */
  readonly order: ReadonlyMap<string, number>
}

/** A rule function failed: answered 500. */
class RuleFailure {
  constructor(
    readonly where: string,
    readonly error: unknown,
  ) {}
}

/**
 * The MCP scope gate for the JSON-RPC body of an MCP endpoint. Mount it after authentication
 * (our strategy, `authenticatePartner`, or the MCP SDK's `requireBearerAuth`) and after a JSON
 * body parser (`express.json()`), before the MCP transport.
 *
 * - For a single message or a batch, every request message adds the scopes of its rule (see
 *   {@link McpScopeRules}); when the token lacks any of them the whole request is refused with one
 *   403 `insufficient_scope` whose `scope="…"` is the union (in the order the rules name them),
 *   through the same path as `requireScopes`: same headers, and the JSON / JSON-RPC body after
 *   `authenticatePartner`. Nothing of the batch reaches the transport, so no handler runs.
 * - With `failClosed`, a message without a rule refuses the request: 403 `insufficient_scope`
 *   whose challenge names no scope (there is none the token could get to be allowed).
 * - A rule function that throws, returns a promise or anything but scope tokens: 500 with a
 *   JSON-RPC error naming the rule (fixed text: no error message, no stack); `onRuleError` gets
 *   the error.
 * - Messages that are not JSON-RPC requests pass through: the transport answers them.
 * - The body must be `application/json` (MCP's only media type): any other `Content-Type` with a
 *   body is 415, whatever parser ran (Express 4, Express 5 and Connect alike). An
 *   `application/json` body with no parsed JSON value (`req.body` unset, a string or bytes) means
 *   no JSON parser ran before the gate — a server setup error, answered 501 with a JSON-RPC error
 *   saying so. Neither is ever passed on: the transport would parse and run the unchecked body.
 *
 * @throws {TypeError} at creation, on an unknown option, a rule that is neither a list of RFC 6749
 *   scope tokens nor a function, or a URI template with an unclosed `{`.
 *
 * @example
 * ```ts
 * const gate = requireMcpScopes({
 *   tools: { list_notes: ['notes:read'], add_note: ['notes:write'] },
 *   resources: { 'notes://public/*': ['notes:read'], 'notes://private/*': ['notes:private'] },
 *   prompts: { rewrite: ['notes:write'] },
 *   failClosed: true,
 * })
 * app.post('/mcp', authenticatePartner(strategy, { body: 'jsonrpc' }), express.json(), gate, mcpHandler)
 * ```
 */
export function requireMcpScopes(rules: McpScopeRules): McpScopeGate {
  const input = optionsObject(rules, 'requireMcpScopes() needs an object of rules') as McpScopeRules
  rejectUnknownKeys(input, RULE_OPTIONS, 'requireMcpScopes()')
  const failClosed = optionalBoolean(input.failClosed, 'requireMcpScopes() options.failClosed')
  const implication = checkImplication(input.implies, 'requireMcpScopes() options.implies')
  const onRuleError = optionalFunction(
    input.onRuleError,
    'requireMcpScopes() options.onRuleError must be a function',
  )
  const order = new Map<string, number>()
  // In the order the rules are documented: the order of every challenge's scope list.
  const tools = ruleTable(input.tools, 'tools', 'requireMcpScopes()', order)
  const resources = resourceRules(
    ruleTable(input.resources, 'resources', 'requireMcpScopes()', order),
  )
  const prompts = ruleTable(input.prompts, 'prompts', 'requireMcpScopes()', order)
  const methods = ruleTable(input.methods, 'methods', 'requireMcpScopes()', order)
  const book: RuleBook = { tools, prompts, methods, ...resources, order }
  return buildGate(book, failClosed, implication, onRuleError)
}

/**
 * The per-tool form of {@link requireMcpScopes}: `requireToolScopes(table)` is
 * `requireMcpScopes({ tools: table })` (tools outside the table pass), with the table kept as
 * `toolScopes`.
 *
 * @throws {TypeError} at creation, when the table is not an object or a tool's scopes are not a
 * list of RFC 6749 scope tokens.
 *
 * @example
 * ```ts
 * const tools = requireToolScopes({ list_notes: ['mcp:read'], add_note: ['mcp:write'] })
 * app.post('/mcp', authenticatePartner(passport, { body: 'jsonrpc' }), express.json(), tools, mcpHandler)
 * ```
 */
export function requireToolScopes(toolScopes: ToolScopes): ToolScopeGate {
  const input = optionsObject(toolScopes, 'requireToolScopes() needs an object: tool name → scopes')
  const table: Record<string, readonly string[]> = {}
  for (const tool of Object.keys(input)) {
    table[tool] = checkScopes(
      input[tool],
      `requireToolScopes() toolScopes[${JSON.stringify(tool)}]`,
      true,
    )
  }
  const order = new Map<string, number>()
  const book: RuleBook = {
    tools: ruleTable(table, 'tools', 'requireToolScopes()', order),
    prompts: new Map(),
    methods: new Map(),
    exactResources: new Map(),
    templateResources: [],
    prefixResources: [],
    order,
  }
  return buildGate(book, false, undefined, undefined, {
    toolScopes: Object.freeze(table),
  }) as ToolScopeGate
}

function buildGate(
  book: RuleBook,
  failClosed: boolean,
  implication: Implication | undefined,
  onRuleError: ((error: unknown, rule: string) => void) | undefined,
  fields: Readonly<Record<string, unknown>> = {},
): McpScopeGate {
  const gate = function requireMcpScopesMiddleware(req, res, next) {
    const request = req as RefusalCarrier & { body?: unknown }
    const declared = declaresBody(req)
    // Refused on its Content-Type, never on what a parser left: Express 4's express.json() leaves
    // {} for a type it skips and Express 5's undefined, and every stack must answer the same 415.
    if (declared && !MCP_MEDIA_TYPE.test(req.headers['content-type'] ?? '')) {
      return refuseUnparsed(res, 415)
    }
    const body = request.body
    if (typeof body !== 'object' || body === null || body instanceof Uint8Array) {
      // Nothing was sent (a GET, an empty POST): nothing to check.
      if (!declared) return next()
      return refuseUnparsed(res, 501)
    }
    auditCalls(req, body)
    const authInfo = authInfoOf(request)
    const needed: string[] = []
    let unruled = false
    for (const message of Array.isArray(body) ? body : [body]) {
      const scopes = messageScopes(book, failClosed, message, authInfo)
      if (scopes instanceof RuleFailure) {
        report(onRuleError, scopes)
        return sendJson(res, 500, jsonRpcError(INTERNAL_ERROR, ruleFailedText(scopes.where)))
      }
      if (scopes === null) unruled = true
      else for (const scope of scopes) if (!needed.includes(scope)) needed.push(scope)
    }
    if (unruled) return refuseScopes(request, res, next, [])
    if (needed.length === 0) return next()
    const held = request.authInfo
    const granted = grantedScopes(request, held)
    if (hasScopes(granted, needed, implication ?? scopeImplicationOf(request, held))) return next()
    refuseScopes(request, res, next, sortByRules(book.order, needed), held)
  } as Middleware as McpScopeGate & Record<string, unknown>

  const allowed = (found: NamedRule[] | undefined, params: object, granted: GrantedScopes) => {
    if (found === undefined) return !failClosed
    const scopes = evaluate(found, params, grantedAuthInfo(granted))
    if (scopes instanceof RuleFailure) return false
    return hasScopes(grantedList(granted), scopes, implication)
  }
  for (const [name, value] of Object.entries({ ...fields, failClosed })) {
    Object.defineProperty(gate, name, { value, enumerable: true })
  }
  gate.allowsTool = (name: string, granted: GrantedScopes) =>
    allowed(byName(book.tools, book.methods, 'tools/call', name), { name }, granted)
  gate.allowsPrompt = (name: string, granted: GrantedScopes) =>
    allowed(byName(book.prompts, book.methods, 'prompts/get', name), { name }, granted)
  gate.allowsResource = (uri: string, granted: GrantedScopes) =>
    allowed(byUri(book, 'resources/read', uri), { uri }, granted)
  gate.allowsResourceTemplate = (uriTemplate: string, granted: GrantedScopes) =>
    allowed(byTemplate(book, uriTemplate), { uri: uriTemplate }, granted)
  gate.allows = gate.allowsTool
  return Object.freeze(gate) as McpScopeGate
}

// The scopes one message needs: [] when it needs none, `null` when it has no rule and the gate is
// fail-closed, a RuleFailure when a rule function failed.
function messageScopes(
  book: RuleBook,
  failClosed: boolean,
  message: unknown,
  authInfo: ScopeRuleAuthInfo | undefined,
): readonly string[] | null | RuleFailure {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) return []
  const { method, params, id } = message as { method?: unknown; params?: unknown; id?: unknown }
  if (typeof method !== 'string') return [] // a response, or not JSON-RPC: the transport answers
  const isRequest = id !== undefined
  const p: Record<string, unknown> =
    params !== null && typeof params === 'object' && !Array.isArray(params)
      ? (params as Record<string, unknown>)
      : {}
  let found: NamedRule[] | undefined
  if (method === 'tools/call') found = byName(book.tools, book.methods, method, p.name)
  else if (method === 'prompts/get') found = byName(book.prompts, book.methods, method, p.name)
  else if (RESOURCE_METHODS.has(method)) found = byUri(book, method, p.uri)
  else found = ruleOf(book.methods, method)
  if (found !== undefined) return evaluate(found, p, authInfo)
  if (failClosed && isRequest && !SETUP_METHODS.has(method)) return null
  return []
}

function byName(
  table: ReadonlyMap<string, NamedRule>,
  methods: ReadonlyMap<string, NamedRule>,
  method: string,
  name: unknown,
): NamedRule[] | undefined {
  return (typeof name === 'string' ? ruleOf(table, name) : undefined) ?? ruleOf(methods, method)
}

function byUri(book: RuleBook, method: string, uri: unknown): NamedRule[] | undefined {
  if (typeof uri === 'string') {
    const exact = book.exactResources.get(uri)
    if (exact !== undefined) return [exact]
    const templates = book.templateResources.filter((t) => t.pattern.test(uri))
    if (templates.length > 0) return templates
    const prefix = book.prefixResources.find((p) => uri.startsWith(p.prefix))
    if (prefix !== undefined) return [prefix]
  }
  return ruleOf(book.methods, method)
}

function byTemplate(book: RuleBook, uriTemplate: string): NamedRule[] | undefined {
  const exact =
    book.exactResources.get(uriTemplate) ??
    book.templateResources.find((t) => t.template === uriTemplate)
  if (exact !== undefined) return [exact]
  const literal = uriTemplate.split('{', 1)[0]!
  const prefix = book.prefixResources.find((p) => literal.startsWith(p.prefix))
  if (prefix !== undefined) return [prefix]
  return ruleOf(book.methods, 'resources/read')
}

function ruleOf(table: ReadonlyMap<string, NamedRule>, key: string): NamedRule[] | undefined {
  const rule = table.get(key)
  return rule === undefined ? undefined : [rule]
}

// The union of the rules' scopes; a function rule is called and its answer checked.
function evaluate(
  rules: readonly NamedRule[],
  params: object,
  authInfo: ScopeRuleAuthInfo | undefined,
): readonly string[] | RuleFailure {
  const scopes: string[] = []
  for (const { where, rule } of rules) {
    let answer: unknown = rule
    if (typeof rule === 'function') {
      try {
        answer = rule(params as Readonly<Record<string, unknown>>, authInfo)
      } catch (err) {
        return new RuleFailure(where, err)
      }
      const problem = ruleAnswerProblem(answer)
      if (problem !== undefined) return new RuleFailure(where, new TypeError(`${where} ${problem}`))
    }
    for (const scope of answer as readonly string[]) if (!scopes.includes(scope)) scopes.push(scope)
  }
  return scopes
}

function ruleAnswerProblem(answer: unknown): string | undefined {
  if (answer !== null && typeof (answer as { then?: unknown })?.then === 'function') {
    return 'returned a promise: rule functions must return the scopes synchronously'
  }
  if (!Array.isArray(answer)) return 'must return an array of scope strings'
  if (!answer.every(isScopeToken)) return 'returned something that is not an RFC 6749 scope token'
  return undefined
}

function report(
  onRuleError: ((error: unknown, rule: string) => void) | undefined,
  failure: RuleFailure,
) {
  if (onRuleError === undefined) return
  try {
    onRuleError(failure.error, failure.where)
  } catch {
    // A logger that throws must not turn the 500 into a crash.
  }
}

function ruleFailedText(where: string): string {
  return `Internal error: the scope rule ${where} failed`
}

function sortByRules(order: ReadonlyMap<string, number>, needed: readonly string[]): string[] {
  const position = (scope: string) => order.get(scope) ?? order.size + needed.indexOf(scope)
  return [...needed].sort((a, b) => position(a) - position(b))
}

// Validates one rule table; each static scope's first position is recorded in `order`.
function ruleTable(
  value: unknown,
  name: string,
  owner: string,
  order: Map<string, number>,
): Map<string, NamedRule> {
  const table = new Map<string, NamedRule>()
  if (value === undefined) return table
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${owner} ${name} must be an object: key → scopes or a rule function`)
  }
  for (const key of Object.keys(value)) {
    const where = `${name}[${JSON.stringify(key)}]`
    const rule = (value as Record<string, unknown>)[key]
    if (typeof rule === 'function') {
      table.set(key, { where, rule: rule as ScopeRuleFunction })
      continue
    }
    const scopes = checkScopes(rule, `${owner} ${where}`, true)
    for (const scope of scopes) if (!order.has(scope)) order.set(scope, order.size)
    table.set(key, { where, rule: scopes })
  }
  return table
}

function resourceRules(
  table: ReadonlyMap<string, NamedRule>,
): Pick<RuleBook, 'exactResources' | 'templateResources' | 'prefixResources'> {
  const exactResources = new Map<string, NamedRule>()
  const templateResources: TemplateRule[] = []
  const prefixResources: PrefixRule[] = []
  for (const [key, rule] of table) {
    if (key.includes('{')) {
      templateResources.push({ ...rule, template: key, pattern: templatePattern(key) })
    } else if (key.endsWith('*')) prefixResources.push({ ...rule, prefix: key.slice(0, -1) })
    else exactResources.set(key, rule)
  }
  prefixResources.sort((a, b) => b.prefix.length - a.prefix.length)
  return { exactResources, templateResources, prefixResources }
}

// What each RFC 6570 expression may expand to, by operator. A wider match only makes more rules
// apply (the scopes of every matching template are needed), so it errs on the refusing side.
const EXPANSIONS: Readonly<Record<string, string>> = {
  '': '[^/?#]*',
  '+': '[^#]*',
  '#': '(?:#.*)?',
  '.': '(?:\\.[^/?#]*)*',
  '/': '(?:/[^/?#]*)*',
  ';': '(?:;[^/?#]*)*',
  '?': '(?:[?&][^#]*)?',
  '&': '(?:&[^#]*)?',
}

function templatePattern(template: string): RegExp {
  let source = '^'
  let rest = template
  for (;;) {
    const open = rest.indexOf('{')
    if (open === -1) break
    const close = rest.indexOf('}', open)
    if (close === -1) {
      throw new TypeError(
        `requireMcpScopes() resources[${JSON.stringify(template)}] has an unclosed "{": a URI template (RFC 6570) closes every expression`,
      )
    }
    const expression = rest.slice(open + 1, close)
    const operator = /^[+#./;?&]/.test(expression) ? expression[0]! : ''
    source += escapeRegExp(rest.slice(0, open)) + EXPANSIONS[operator]
    rest = rest.slice(close + 1)
  }
  return new RegExp(`${source}${escapeRegExp(rest)}$`)
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function authInfoOf(req: RefusalCarrier): ScopeRuleAuthInfo | undefined {
  for (const holder of [req.auth, req.authInfo]) {
    if (holder !== null && typeof holder === 'object') return holder as ScopeRuleAuthInfo
  }
  return undefined
}

function grantedAuthInfo(granted: GrantedScopes): ScopeRuleAuthInfo | undefined {
  if (Array.isArray(granted)) return { scopes: granted as readonly string[] }
  return granted as ScopeRuleAuthInfo | undefined
}

function grantedList(granted: GrantedScopes): readonly unknown[] {
  if (Array.isArray(granted)) return granted
  const scopes = (granted as { scopes?: unknown } | undefined)?.scopes
  return Array.isArray(scopes) ? scopes : []
}

// Whether the request says it has a body (whether or not a parser has read it since).
function declaresBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

function jsonRpcError(code: number, message: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } })
}

// No JSON value to read, or not MCP's media type: never passed on, since the transport would
// parse and run the unchecked body itself.
function refuseUnparsed(res: ServerResponse, status: 415 | 501): void {
  const message =
    status === 501
      ? 'Server setup error: no JSON body parser before the MCP scope gate'
      : 'Unsupported Media Type: Content-Type must be application/json'
  sendJson(res, status, jsonRpcError(SERVER_ERROR, message))
}
