import type { SessionQueue } from "./session-queue.js";

/** The shapes the hub is made with and spoken to in (hub.ts re-exports them). */

export interface HubOptions {
  maxQueue: number;
  /** Bytes one session's queue holds (historyBytes), besides --max-queue entries; the newest always stays. */
  maxQueueBytes: number;
  /** Bytes all session queues hold together (queue-budget.ts). */
  maxQueuedBytes: number;
  /** Bytes the queues of one address's sessions hold together; 0: no share, the total only. */
  maxQueuedBytesPerIp: number;
  sessionTtlMs: number;
  presenceLimit: number;
  maxMessage: number;
  rate: number;
  /** Posts per second of all sessions one address created (session-limits.ts); 0: no cap. */
  ratePerIp: number;
  maxSessions: number;
  history: number;
  /** Bytes of history in all rooms together (history-budget.ts counts them); the oldest of all go first. */
  maxHistoryBytes: number;
  maxRoomsPerSession: number;
  maxRooms: number;
  maxSessionsPerIp: number;
  /** Retry keys (txn) in their window that count against one address (the one that made the posting session); 0: no share. */
  maxTxnKeysPerIp: number;
  /** Retry keys (txn) in their window, all names together: the soft cap (txn-keys.ts). */
  maxTxnKeys: number;
}

/**
 * A name the host application vouches for (a JWT signed with --jwt-secret, or
 * the authenticate hook), and the rooms it may join when its JWT limits them
 * (lower case, in the order listed: the first is its default room).
 */
export interface Identity {
  readonly name: string;
  readonly rooms: ReadonlySet<string> | undefined;
}

/** Who a name-based request (the seed endpoint) is: what decides whether it may act as the name or make its session. */
export interface SessionRequest {
  /** The token the request carries for a state change, if any. */
  token?: string;
  /** No session is made for an unknown name (--require-token): 401. */
  requireToken?: boolean;
  /** The address that asks (http/client-address.ts): a new session counts against --max-sessions-per-ip. */
  address?: string;
  /** The host vouches for this name: its session (or a new one, with a token) is this request's, whatever token it carries. */
  identity?: Identity | undefined;
  /** The token a session made for `identity` gets instead of a random one: --redis makes it before the record, so every replica gives the same. */
  newToken?: string | undefined;
}

export interface PostInput {
  text: string;
  /** Room to post to; the client's current room when absent. */
  room?: string;
  /** Makes the post private to this name (the JSON API's "to"). */
  to?: string;
  /** Idempotency key: a retry with the same key answers the first id and posts nothing. */
  txn?: string;
  /** Posting to a room one is not in joins it (the seed's way) instead of failing. */
  autoJoin?: boolean;
}

/** A session as a store saved it, its queue rebuilt (Hub.restore). */
export interface RestoredSession {
  name: string;
  token: string | undefined;
  /** In the order they were joined: leaving the current room falls back to the last. */
  rooms: readonly string[];
  currentRoom: string;
  queue: SessionQueue;
  /** Its rooms claim, when the JWT that made it had one. */
  allowedRooms?: readonly string[] | undefined;
  /** Who made it (absent in a log older than the field: it counts against no address). */
  address?: string | undefined;
  /** Made for a name the host vouched for (absent in an older log: not proven). */
  proven?: boolean | undefined;
  /** What --redis snapshots save besides (cluster/snapshot-lines.ts): false for a session of one connection (TCP). */
  resumable?: boolean | undefined;
}

/**
 * An idempotency key as a store saved it: [name key, txn key, id, at, the address it counts
 * against (undefined: none known)]. Kept apart from sessions (spec §5).
 */
export type RestoredTxn = readonly [string, string, number, number, (string | undefined)?];

/** How POST /api/join (and a TCP name) makes or extends a session. */
export interface JoinOptions {
  /** The token of the caller's own session: with it, the same name joins one more room. */
  token?: string | undefined;
  /** False for a session that lives and dies with one connection (TCP): a store does not bring it back. @default true */
  resumable?: boolean;
  /** Who asks (addressKey), counted against --max-sessions-per-ip. */
  address?: string | undefined;
  /** The token a new session gets instead of a random one: --redis makes it before the record, so every replica gives the same. */
  newToken?: string | undefined;
}

/** A session about to be made: its token (none for the seed's open names), whether a store brings it back, who made it. */
export interface NewSession {
  token?: string | undefined;
  resumable?: boolean | undefined;
  address?: string | undefined;
  /** The rooms claim of the identity it is made for: the only rooms it may ever join. */
  allowedRooms?: ReadonlySet<string> | undefined;
  /** Made for a name the host vouches for. */
  proven?: boolean | undefined;
}
