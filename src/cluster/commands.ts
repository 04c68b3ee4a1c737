/**
 * What a process appends to the shared log with --redis: the requests that
 * change the hub, as they came (a token made ahead, so every replica gives the
 * same), not their outcome. Every replica applies each one to its own hub in
 * log order (apply-command.ts) and computes the same outcome, refusals
 * included: two processes racing for one name both append a join, the first in
 * the log wins everywhere, the second is refused (409) everywhere.
 *
 * Keys are short: one record per post, join and batch of acknowledgements.
 *
 * With an identity source (--jwt-secret, authenticate) the proof of a name is
 * checked where the request comes in, never logged (a JWT is not a secret
 * anyone should find in Redis, a login cannot be asked twice): the record
 * carries its outcome, the name proven and its rooms claim (`vouch`, a seed's
 * `v`). Every replica trusts the log, which only pollchat processes write, and
 * refuses alike a record that would claim a name without that mark (apply-command.ts).
 */
export type Command =
  /** POST /api/join (and a TCP name: tcp): k is the new session's token, o the caller's own. */
  | { t: "join"; n: string; r: string; k: string; o?: string; a?: string; tcp?: 1 }
  /**
   * A name the identity source proved here (POST /api/join, an SSE stream or TCP `/token` with a JWT):
   * its session, or a new one with token k and the rooms claim ar. r: the room to join; with none,
   * j joins the claim's first, else the session's first, else lobby (decided at apply: the session may be newer than this process knows).
   */
  | { t: "vouch"; n: string; r?: string; j?: 1; k: string; a?: string; ar?: string[] }
  /** POST /api/messages by token k. */
  | { t: "post"; k: string; x: string; r?: string; to?: string; i?: string; auto?: 1 }
  /** The seed endpoint (`/`): a post (x) or a poll that may make the session or join r. v: n proven here (as vouch), with the claim ar and a new session's token nk. */
  | { t: "seed"; n: string; x?: string; r?: string; i?: string; k?: string; rq?: 1; a?: string; v?: 1; ar?: string[]; nk?: string }
  /** POST /api/leave by token k: one room, or with none the session. */
  | { t: "leave"; k: string; r?: string }
  /** Where queues stand after polls without a cursor (or with one): [name key, acknowledged up to]. */
  | { t: "acks"; a: [string, number][] }
  /** Sessions no process has seen for --session-ttl, as [name key, position made at]: each ends once, with one leave. */
  | { t: "expire"; s: [string, string][] }
  /**
   * A process that found Redis lost its data starts over in the new epoch and appends its
   * last id (f) before anything else: applying it raises every replica's ids above it.
   */
  | { t: "floor"; f: number }
  /**
   * A process that starts with an identity source found sessions no proof made (from before the source was set):
   * each ends, with its leave notices, on every replica alike (with none set, it changes nothing).
   */
  | { t: "unproven" };

/** A record of the shared log: a command, and who waits for its outcome (the process and its request number). */
export interface LogRecord {
  c: Command;
  /** The process that appended it. */
  o?: string;
  /** Its request number there. */
  q?: number;
}

export function encodeRecord(record: LogRecord): string {
  return JSON.stringify(record);
}

const KINDS = new Set(["join", "vouch", "post", "seed", "leave", "acks", "expire", "floor", "unproven"]);

/** A log entry back into a record; undefined for one that is not (another version's, garbage): every replica skips it alike. */
export function decodeRecord(data: string): LogRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const record = value as Partial<LogRecord>;
  const c = record.c as { t?: unknown } | undefined;
  if (c === null || typeof c !== "object" || typeof c.t !== "string" || !KINDS.has(c.t)) return undefined;
  if (record.o !== undefined && typeof record.o !== "string") return undefined;
  if (record.q !== undefined && typeof record.q !== "number") return undefined;
  return record as LogRecord;
}
