/**
 * passport-agentpress-partner/redis: several instances behind a load balancer, sharing rotations,
 * emergency revocations and replay state through Redis (or a wire-compatible server such as
 * Valkey) with the official `redis` client, an optional peer dependency of this subpath only.
 *
 * @packageDocumentation
 */
export {
  RedisFleet,
  createRedisFleet,
  type RedisFleetOptions,
  type RedisFleetState,
  type RedisFleetStats,
} from './fleet.js'
export {
  RedisFleetDamagedError,
  RedisUnavailableError,
  type RedisClientLike,
} from './connection.js'
