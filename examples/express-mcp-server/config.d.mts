// Types of config.mjs, for TypeScript callers (the tests).

/** A configuration mistake: printed as is, exit status 2. */
export declare class ConfigError extends Error {}

/** Whether `host` (a listen address or host name) is this machine only. */
export declare function isLoopbackListener(host: string): boolean

export interface ExampleConfig {
  port: number
  host: string
  audience: string | undefined
  extProvider: string | undefined
  webhookSecret: string | undefined
  warmUp: boolean
  redisUrl: string | undefined
  replay: string | undefined
  /** AGENTPRESS_MOCK_CONTROL: serve the embedded mock's control API. */
  mockControl: boolean
  /** The trusted issuer; undefined: the embedded mock. */
  agentpress: { issuer: string; extProvider: string } | undefined
}

export declare function configFromEnv(env?: NodeJS.ProcessEnv): ExampleConfig
