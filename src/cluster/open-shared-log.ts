import type { ResolvedOptions } from "../config.js";
import type { SharedLog } from "./shared-log.js";
import { RedisLog } from "./redis-log.js";

/** The shared log the options name: one given (tests), Redis with options.redis, or none (one process). Nothing connects without them. */
export function openSharedLog(options: ResolvedOptions): SharedLog | undefined {
  if (options.sharedLog !== undefined) return options.sharedLog;
  if (options.redis === undefined) return undefined;
  return new RedisLog(options.redis, options.redisPrefix);
}
