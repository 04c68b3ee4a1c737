export { RedisClient, type RedisClientEvents, type RedisClientOptions, type RedisState } from "./redis-client.js";
export { RedisConnectionError, RedisReplyError, RespProtocolError } from "./redis-errors.js";
export { RedisScript } from "./redis-script.js";
export { parseRedisUrl, type RedisTarget } from "./redis-url.js";
export type { RedisArg } from "./resp-encode.js";
export { DEFAULT_RESP_LIMITS, type RespLimits } from "./resp-limits.js";
export type { RespReply } from "./resp-reply.js";
