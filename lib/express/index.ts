/**
 * `passport-agentpress-partner/express`: the types of an Express route behind this package's
 * strategy, opted into with one line anywhere in the program:
 *
 * ```ts
 * import 'passport-agentpress-partner/express'
 * ```
 *
 * After it, `req.authInfo` is {@link AgentPressAuthInfo} (`claims`, `scopes`, `issuer`), present,
 * so route code needs no `!` and no cast; `req.auth` is {@link McpAuthInfo} (the MCP SDKs'
 * `AuthInfo` shape), optional as both MCP SDKs declare it, so that this entry and
 * `@modelcontextprotocol/express` (or v1's `requireBearerAuth`) compile together. The module is empty at run time.
 *
 * Why opt-in rather than automatic: it declares `req.authInfo` present on every Express request of
 * the program, which only holds when the routes that read it sit behind the strategy (and
 * `requireScopes`). An application that chose this package for
 * its protected routes can make that promise; a library that merely imports ours cannot.
 * `req.user` stays Passport's `Express.User`, which the application declares.
 *
 * @example
 * ```ts
 * import 'passport-agentpress-partner/express'
 *
 * declare global {
 *   namespace Express {
 *     interface User { id: number; externalId: string }
 *   }
 * }
 *
 * app.post('/mcp', passport.authenticate('agentpress-partner', { session: false }), (req, res) => {
 *   res.json({ user: req.user, scopes: req.authInfo.scopes, clientId: req.auth?.clientId })
 * })
 * ```
 *
 * @packageDocumentation
 */
import type { Request } from 'express-serve-static-core'
import type { AgentPressAuthInfo, McpAuthInfo } from '../index.js'

// With `passReqToCallback: true`, verify's `req` is Express's request.
declare module '../http/verify-callback.js' {
  interface AgentPressTypes {
    request: Request
  }
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // Passport's own (empty, mergeable) interface, declared here too so that this file stands
    // without @types/passport and stays assignable to whatever the application merges into it.
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface AuthInfo {}
  }
}

// On express-serve-static-core's Request, the one Express route handlers receive: it extends the
// global Express.Request, where Passport declares `authInfo` optional, and may narrow it.
declare module 'express-serve-static-core' {
  interface Request {
    /** Set by the strategy on success: the verified claims, the granted scopes, the issuer. */
    authInfo: Express.AuthInfo & AgentPressAuthInfo
  }
}

// `req.auth` on Express's global Request, optional: the MCP SDKs declare it themselves
// (`@modelcontextprotocol/express`, v1's `requireBearerAuth`) as `auth?: AuthInfo` on
// express-serve-static-core's Request, and two declarations of one property must be identical
// (TS2717, TS2687). Declared here instead, on the interface theirs extends, with a type theirs is
// assignable to, it coexists with either under `skipLibCheck: false`: with an SDK loaded `req.auth`
// is the SDK's `AuthInfo | undefined`, without one ours.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by the strategy on success: the MCP SDK's `AuthInfo`, read by its transports. */
      auth?: McpAuthInfo
    }
  }
}
