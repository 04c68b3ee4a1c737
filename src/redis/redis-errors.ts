/** A `-ERR …` reply: Redis refused the command. `code` is its first word (ERR, NOSCRIPT, WRONGPASS, …). */
export class RedisReplyError extends Error {
  readonly code: string;

  constructor(message: string) {
    super(message);
    this.name = "RedisReplyError";
    const space = message.indexOf(" ");
    this.code = space === -1 ? message : message.slice(0, space);
  }
}

/** Redis sent bytes that are not a RESP2 reply, or a reply past a cap: the connection is closed. */
export class RespProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RespProtocolError";
  }
}

/**
 * A command that got no reply because the connection was lost, closed or not
 * up. `sent` says what the caller may assume: false, it never left this
 * process (nothing happened, safe to retry); true, it was written to the
 * socket, so Redis may or may not have run it (fate unknown: find out before
 * retrying a write that is not idempotent).
 */
export class RedisConnectionError extends Error {
  readonly sent: boolean;

  constructor(message: string, sent: boolean) {
    super(message);
    this.name = "RedisConnectionError";
    this.sent = sent;
  }
}
