/** Caps on one reply, so a broken or hostile server cannot make this process grow without bound. */
export interface RespLimits {
  /** Bytes in one bulk string: Redis' own cap for a string (proto-max-bulk-len). */
  maxBulkBytes: number;
  /** Bytes of one whole reply on the wire, nested arrays and bulks together. */
  maxReplyBytes: number;
  /** Elements of all arrays of one reply together (so also of any one array). */
  maxElements: number;
  /** Arrays inside arrays: an XREAD reply is 4 deep. */
  maxDepth: number;
  /** Bytes of one `+`, `-`, `:`, `$` or `*` line. */
  maxLineBytes: number;
}

export const DEFAULT_RESP_LIMITS: RespLimits = {
  maxBulkBytes: 512 * 1024 * 1024, // 512 MiB
  maxReplyBytes: 513 * 1024 * 1024, // one bulk of the largest size, and then some
  maxElements: 1024 * 1024,
  maxDepth: 32,
  maxLineBytes: 64 * 1024, // 64 KiB: Redis' error lines are far shorter
};
