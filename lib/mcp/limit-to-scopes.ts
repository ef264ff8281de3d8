/**
 * Opt-in list filtering: an `McpServer` (MCP SDK v1 or v2) that lists only what the request's
 * token may use under the scope gate's rules. The gate refuses the calls whatever is listed; this
 * only changes what `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list`
 * show. Hiding an item may also hide it from the AgentPress admin console, which lists a server's
 * tools so that admins can pick them per agent: filtering is a choice (docs/authorization.md).
 */
import type { GrantedScopes, McpScopeGate } from './tool-scopes.js'

/**
 * The part of the SDK's `McpServer` (v1 `@modelcontextprotocol/sdk`, v2
 * `@modelcontextprotocol/server`) {@link limitToScopes} uses. Structural on purpose: either SDK,
 * ESM or CommonJS, is accepted.
 *
 * @example
 * ```ts
 * const registry: ScopedRegistry = new McpServer({ name: 'notes', version: '1.0.0' })
 * ```
 */
export interface ScopedRegistry {
  registerTool(name: string, ...rest: never[]): { disable(): void }
  registerPrompt?(name: string, ...rest: never[]): { disable(): void }
  registerResource?(name: string, uriOrTemplate: never, ...rest: never[]): { disable(): void }
}

interface TemplateLike {
  readonly uriTemplate: { toString(): string }
  readonly listCallback?: ((...args: unknown[]) => unknown) | undefined
}

interface RegisteredTemplate {
  resourceTemplate?: TemplateLike
  remove?(): void
  disable(): void
}

/**
 * Makes the list methods of one `McpServer` show only what `granted` may use under `gate`
 * (MCP 2026-07-28 lets lists vary by authorization). Call it on a fresh server, before
 * registering anything: from then on
 *
 * - a tool, prompt or fixed-URI resource the token may not use is registered disabled (the SDK
 *   leaves it out of its list and refuses to run it);
 * - a resource template the token may not read is removed (the SDKs list templates whatever their
 *   state), and the resources a template's `list` callback returns are filtered one by one.
 *
 * An item without a rule stays listed, unless the gate is fail-closed. A rule function is asked
 * as for a call with no arguments (`{ name }`, or `{ uri }`). Meant for one server per request
 * (stateless Streamable HTTP), where `granted` is that request's `req.auth`.
 *
 * @throws {TypeError} when `gate` is not a gate of `requireMcpScopes()` / `requireToolScopes()`.
 *
 * @example
 * ```ts
 * const gate = requireMcpScopes({ tools: { add_note: ['notes:write'] }, resources: { 'notes://private/*': ['notes:private'] } })
 * app.post('/mcp', authenticatePartner(strategy), express.json(), gate, async (req, res) => {
 *   const server = limitToScopes(new McpServer({ name: 'notes', version: '1.0.0' }), gate, req.auth)
 *   server.registerTool('add_note', { description: 'Add a note', inputSchema }, addNote)
 *   // … register the rest, connect a transport, handle the request
 * })
 * ```
 */
export function limitToScopes<S extends ScopedRegistry>(
  server: S,
  gate: McpScopeGate,
  granted: GrantedScopes,
): S {
  if (typeof gate?.allowsResource !== 'function') {
    throw new TypeError(
      'limitToScopes() needs the gate returned by requireMcpScopes() or requireToolScopes()',
    )
  }
  const registry = server as unknown as Record<string, (...args: unknown[]) => unknown>
  wrap(registry, 'registerTool', (registered, name) => {
    if (typeof name === 'string' && !gate.allowsTool(name, granted)) disable(registered)
  })
  wrap(registry, 'registerPrompt', (registered, name) => {
    if (typeof name === 'string' && !gate.allowsPrompt(name, granted)) disable(registered)
  })
  wrap(registry, 'registerResource', (registered, _name, uriOrTemplate) => {
    if (typeof uriOrTemplate === 'string') {
      if (!gate.allowsResource(uriOrTemplate, granted)) disable(registered)
      return
    }
    const entry = registered as RegisteredTemplate
    const template = entry.resourceTemplate
    if (template === undefined) return
    if (!gate.allowsResourceTemplate(template.uriTemplate.toString(), granted)) {
      if (typeof entry.remove === 'function') entry.remove()
      else entry.disable()
      return
    }
    const list = template.listCallback
    if (typeof list !== 'function') return
    // The SDK reads `resourceTemplate.listCallback` when it lists: a view of the same template
    // whose list keeps only the resources the token may read.
    entry.resourceTemplate = Object.create(template, {
      listCallback: {
        value: async (...args: unknown[]) => {
          const result = (await list.apply(template, args)) as { resources?: unknown }
          if (!Array.isArray(result?.resources)) return result
          const resources = result.resources.filter(
            (r: { uri?: unknown }) =>
              typeof r?.uri === 'string' && gate.allowsResource(r.uri, granted),
          )
          return { ...result, resources }
        },
      },
    }) as TemplateLike
  })
  return server
}

function wrap(
  registry: Record<string, (...args: unknown[]) => unknown>,
  method: string,
  after: (registered: unknown, ...args: unknown[]) => void,
): void {
  const original = registry[method]
  if (typeof original !== 'function') return
  const bound = original.bind(registry)
  registry[method] = (...args: unknown[]) => {
    const registered = bound(...args)
    after(registered, ...args)
    return registered
  }
}

function disable(registered: unknown): void {
  ;(registered as { disable(): void }).disable()
}
