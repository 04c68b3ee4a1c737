import type { RedisReplyError } from "./redis-errors.js";

/**
 * A reply from Redis (RESP2), as the parser produces it:
 * `+simple` → string, `:integer` → number (a bigint past 2^53), `$bulk` →
 * Buffer (binary-safe; converted where it is used), `$-1` and `*-1` → null,
 * `*array` → an array of replies, `-error` → a RedisReplyError value (inside
 * an array, e.g. a script's or EXEC's result, it is one element among others).
 */
export type RespReply = string | number | bigint | Buffer | null | RedisReplyError | RespReply[];
