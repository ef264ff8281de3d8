/**
 * The MCP authorization surface both SDK entries share (`./mcp` for v1, `./mcp/v2`): the per-method
 * scope gate and the list filters. They speak JSON-RPC over plain Node requests and import
 * nothing of either SDK, so one module serves both.
 */
export { limitToolsToScopes, type ToolRegistry } from './tools-list.js'
export { limitToScopes, type ScopedRegistry } from './limit-to-scopes.js'
export {
  requireMcpScopes,
  requireToolScopes,
  type GrantedScopes,
  type McpScopeGate,
  type McpScopeRules,
  type ScopeRule,
  type ScopeRuleAuthInfo,
  type ScopeRuleFunction,
  type ToolScopeGate,
  type ToolScopes,
} from './tool-scopes.js'
