import { fileURLToPath } from "node:url";
import type { Authenticate } from "./identity/identity-source.js";
import { MIN_SECRET_BYTES } from "./identity/jwt.js";
import type { SharedLog } from "./cluster/shared-log.js";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel, type Logger } from "./log.js";

/** Everything a pollchat server can be told. Each option is optional; resolveOptions() fills defaults once. */
export interface ChatOptions {
  /** @default "127.0.0.1" */
  host?: string;
  /** @default 8080 (0 picks a free port) */
  port?: number;
  /** How long a poll is held when the client names no timeout, in ms. @default 4500 */
  pollTimeoutMs?: number;
  /** Upper clamp for ?timeout=, in ms. @default 30000 */
  maxPollTimeoutMs?: number;
  /** Messages a client's queue keeps before the oldest go (with a gap entry). @default 1000 */
  maxQueue?: number;
  /**
   * Bytes a client's queue keeps before the oldest go (with a gap entry), counted
   * as history is (2 bytes a character of text, name and room, plus 256); the
   * newest message stays however long. @default 4194304 (4 MiB)
   */
  maxQueueBytes?: number;
  /**
   * Bytes all clients' queues keep together; past it the address whose sessions
   * hold the most loses its oldest messages (its readers get a gap). @default 268435456 (256 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * Bytes the queues of the sessions one address created keep together; past it
   * that address's oldest messages go (its readers get a gap), never another's. 0: no share. @default 33554432 (32 MiB)
   */
  maxQueuedBytesPerIp?: number;
  /** A client with no poll, stream or connection for this long is removed, in ms. @default 30000 */
  sessionTtlMs?: number;
  /** join/leave notices go only to rooms of at most this many members. @default 200 */
  presenceLimit?: number;
  /** Longest message, in characters. @default 2000 */
  maxMessage?: number;
  /** Posts per second per session; bursts of twice this. @default 10 */
  rate?: number;
  /**
   * Posts per second of all sessions one address created (IPv6: per /64; the rightmost X-Forwarded-For
   * hop with trustProxy), bursts of twice this; 0 turns it off. @default 30 (30 people behind one address,
   * a post a second each), or three sessions' --rate when that is more (a --rate raised for posters who may post faster)
   */
  ratePerIp?: number;
  /** Most sessions at once. @default 10000 */
  maxSessions?: number;
  /** Every client must join through POST /api/join first. @default false */
  requireToken?: boolean;
  /**
   * A name is taken only with a JWT signed HS256 with this secret (at least 32
   * bytes), its `sub` the name (spec §4): POST /api/join, `/` and SSE in
   * `Authorization: Bearer`, TCP with `/token`. An optional `rooms` claim limits the rooms.
   * With redis: verified by the process a request comes to, the name proven logged; every process needs one (the same).
   */
  jwtSecret?: string;
  /**
   * The embedding program's login decides who a request is: called wherever a
   * request would create a session or claim a name, it returns the name (or a
   * promise of it), or undefined for 401. With it, a name is taken only so.
   * With redis: asked by the process a request comes to; every process needs an identity source.
   */
  authenticate?: Authenticate;
  /** Origin allowed to call from a browser page elsewhere; no CORS headers without it. */
  corsOrigin?: string;
  /** Directory for the message log; without it nothing touches the disk. */
  dataDir?: string;
  /**
   * redis://[:password@]host:port[/db]: run as one of several processes sharing
   * this Redis (spec §10); without it nothing connects. Does not combine with dataDir.
   */
  redis?: string;
  /** Prefix of every Redis key, so deployments can share a Redis. @default "pollchat" */
  redisPrefix?: string;
  /** With redis: entries applied between two snapshots of the shared state (the log is trimmed below the one before). @default 10000 */
  redisSnapshotEvery?: number;
  /**
   * With redis: this server cannot go on with the shared store: its limits differ from those set
   * in a new epoch. By default it closes (the CLI exits 1, so a supervisor restarts it). Redis that
   * lost its data, or a log trimmed past this server, is not such a case: it starts over, or reloads, in place.
   */
  onStoreLost?: (reason: string) => void;
  /** A shared log of your own instead of Redis (tests: several servers of one process on cluster/memory-log.ts). */
  sharedLog?: SharedLog;
  /** Port of the TCP line gateway; off when undefined. */
  tcpPort?: number;
  /** Messages of history kept per room. @default 1000 */
  history?: number;
  /**
   * Bytes of history kept in all rooms together (with --data-dir, the empty rooms
   * it keeps count too); past it the oldest messages of all go first. A message
   * counts 2 bytes a character of its text, name and room, plus 256 (history-budget.ts).
   * 0 keeps no history. @default 67108864 (64 MiB)
   */
  maxHistoryBytes?: number;
  /** Where the browser page lives. @default the package's public/ */
  publicDir?: string;
  /** Time a client gets to send its request headers, in ms (slowloris guard). @default 10000 */
  headersTimeoutMs?: number;
  /** Time a client gets to send its whole request (headers and body), in ms. @default 30000 */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long, in ms. @default 5000 */
  keepAliveTimeoutMs?: number;
  /**
   * A connection whose answer waits unsent (the client does not read) and has not
   * moved for this long is closed, in ms; a sweep checks once a second (sooner for a
   * short timeout), so the cut comes within this plus one sweep. Its answer was not handed over: nothing in it is acknowledged. @default 30000
   */
  writeTimeoutMs?: number;
  /** SSE streams get a `:` comment this often, in ms, so proxies and clients see they are alive. @default 15000 */
  heartbeatMs?: number;
  /** Unread output a stream (SSE, TCP) may hold before new messages wait in its bounded queue, in bytes. @default 65536 */
  maxPendingBytes?: number;
  /**
   * Open connections allowed from one remote address; past it a request gets
   * 503 too_many_connections. 0 turns the cap off; --trust-proxy turns it off for HTTP (every connection is the proxy's).
   * @default 256
   */
  maxConnectionsPerIp?: number;
  /** Rooms one session may be in at once; a join past it gets 403 too_many_rooms. @default 50 */
  maxRoomsPerSession?: number;
  /** Rooms in all; a join that would make one more gets 503 server_full. @default 10000 */
  maxRooms?: number;
  /** Sessions created from one remote address (IPv6: per /64) that may live at once; 0 turns the cap off. @default 100 */
  maxSessionsPerIp?: number;
  /**
   * Retry keys (txn) in their 10 minutes that count against one address (the one that
   * created the posting session, even after it ended); past it that address's posts with a
   * new key get 429 rate_limited. 0 turns the share off. @default 10000
   */
  maxTxnKeysPerIp?: number;
  /**
   * Retry keys (txn) in their 10 minutes, all names together, before only addresses holding at least a
   * fair share of the room left are refused (txn-keys.ts); a quarter more is the hard cap. @default 200000
   */
  maxTxnKeys?: number;
  /**
   * The server sits behind a reverse proxy: per-address limits use the rightmost
   * X-Forwarded-For hop, and X-Forwarded-Proto: https marks the cookie Secure. @default false
   */
  trustProxy?: boolean;
  /** Lines written below this level are dropped; the library is silent unless asked, the CLI says info. @default "silent" */
  logLevel?: LogLevel;
  /** @default "text" */
  logFormat?: LogFormat;
  /** Where log lines go instead of stdout/stderr (then logLevel and logFormat are the logger's business). */
  logger?: Logger;
}

type Unset = "corsOrigin" | "dataDir" | "tcpPort" | "logger" | "jwtSecret" | "authenticate" | "redis" | "sharedLog" | "onStoreLost";
export type ResolvedOptions = Required<Omit<ChatOptions, Unset>> & Pick<ChatOptions, Unset>;

/** JSON bodies are capped by the spec, not by configuration. */
export const MAX_BODY_BYTES = 64 * 1024;

export const DEFAULTS = {
  host: "127.0.0.1",
  port: 8080,
  pollTimeoutMs: 4500,
  maxPollTimeoutMs: 30_000,
  maxQueue: 1000,
  // 4 MiB: about 500 private messages of 2000 '€', or 16,000 short ones, behind one reader that stopped reading.
  maxQueueBytes: 4 * 1024 * 1024,
  // 256 MiB in all, 32 MiB an address: one address's flood is held to an eighth of the total.
  maxQueuedBytes: 256 * 1024 * 1024,
  maxQueuedBytesPerIp: 32 * 1024 * 1024,
  sessionTtlMs: 30_000,
  presenceLimit: 200,
  maxMessage: 2000,
  rate: 10,
  // 30 people behind one address, a post a second each (at least three sessions' --rate: resolveOptions).
  ratePerIp: 30,
  maxSessions: 10_000,
  requireToken: false,
  history: 1000,
  // 64 MiB: ~10 rooms of 1000 messages of 2000 '€', or ~200,000 short messages; a heap of 512 MiB holds it with room to spare.
  maxHistoryBytes: 64 * 1024 * 1024,
  publicDir: fileURLToPath(new URL("../public/", import.meta.url)),
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  // 30 s without a byte taken: a reader that slow has gone, yet a slow link keeps moving.
  writeTimeoutMs: 30_000,
  heartbeatMs: 15_000, // 15 s, as the spec asks
  maxPendingBytes: 64 * 1024,
  // 256: far above what one browser or NAT'd office opens, far below the fd limit.
  maxConnectionsPerIp: 256,
  maxRoomsPerSession: 50,
  maxRooms: 10_000,
  maxSessionsPerIp: 100,
  // 10,000 keys in 10 minutes: 30 people behind one address each posting every 2 s.
  maxTxnKeysPerIp: 10_000,
  // 20 addresses at their share.
  maxTxnKeys: 200_000,
  trustProxy: false,
  logLevel: "silent",
  logFormat: "text",
  redisPrefix: "pollchat",
  redisSnapshotEvery: 10_000,
} satisfies ResolvedOptions;

function wholeNumber(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be a whole number from ${min} to ${max}, not ${value}`);
  }
  return value;
}

export function resolveOptions(options: ChatOptions = {}): ResolvedOptions {
  const o: ResolvedOptions = { ...DEFAULTS, ...stripUndefined(options) };
  if (options.ratePerIp === undefined) o.ratePerIp = Math.max(DEFAULTS.ratePerIp, 3 * o.rate);
  wholeNumber("port", o.port, 0, 65535);
  wholeNumber("pollTimeoutMs", o.pollTimeoutMs, 0);
  wholeNumber("maxPollTimeoutMs", o.maxPollTimeoutMs, 0);
  wholeNumber("maxQueue", o.maxQueue, 1);
  wholeNumber("maxQueueBytes", o.maxQueueBytes, 1);
  wholeNumber("maxQueuedBytes", o.maxQueuedBytes, 1);
  wholeNumber("maxQueuedBytesPerIp", o.maxQueuedBytesPerIp, 0);
  wholeNumber("sessionTtlMs", o.sessionTtlMs, 1);
  wholeNumber("presenceLimit", o.presenceLimit, 0);
  wholeNumber("maxMessage", o.maxMessage, 1);
  if (!(o.rate > 0)) throw new RangeError(`rate must be above 0, not ${o.rate}`);
  if (!(o.ratePerIp >= 0) || !Number.isFinite(o.ratePerIp)) throw new RangeError(`ratePerIp must be 0 (off) or above, not ${o.ratePerIp}`);
  wholeNumber("maxSessions", o.maxSessions, 1);
  wholeNumber("history", o.history, 0);
  wholeNumber("maxHistoryBytes", o.maxHistoryBytes, 0);
  wholeNumber("headersTimeoutMs", o.headersTimeoutMs, 1);
  wholeNumber("requestTimeoutMs", o.requestTimeoutMs, 0);
  wholeNumber("keepAliveTimeoutMs", o.keepAliveTimeoutMs, 1);
  wholeNumber("writeTimeoutMs", o.writeTimeoutMs, 1);
  wholeNumber("heartbeatMs", o.heartbeatMs, 1);
  wholeNumber("maxPendingBytes", o.maxPendingBytes, 1);
  wholeNumber("maxConnectionsPerIp", o.maxConnectionsPerIp, 0);
  wholeNumber("maxRoomsPerSession", o.maxRoomsPerSession, 1);
  wholeNumber("maxRooms", o.maxRooms, 1);
  wholeNumber("maxSessionsPerIp", o.maxSessionsPerIp, 0);
  wholeNumber("maxTxnKeysPerIp", o.maxTxnKeysPerIp, 0);
  wholeNumber("maxTxnKeys", o.maxTxnKeys, 1);
  if (!LOG_LEVELS.includes(o.logLevel)) throw new RangeError(`logLevel must be one of ${LOG_LEVELS.join(", ")}, not ${o.logLevel}`);
  if (!LOG_FORMATS.includes(o.logFormat)) throw new RangeError(`logFormat must be text or json, not ${o.logFormat}`);
  if (o.tcpPort !== undefined) wholeNumber("tcpPort", o.tcpPort, 0, 65535);
  if (o.jwtSecret !== undefined && Buffer.byteLength(o.jwtSecret, "utf8") < MIN_SECRET_BYTES) {
    throw new RangeError(`jwtSecret must be at least ${MIN_SECRET_BYTES} bytes (HS256, RFC 7518 §3.2)`);
  }
  if (o.authenticate !== undefined && typeof o.authenticate !== "function") throw new TypeError("authenticate must be a function");
  if ((o.redis !== undefined || o.sharedLog !== undefined) && o.dataDir !== undefined) throw new RangeError("dataDir and redis do not combine: Redis is the store");
  wholeNumber("redisSnapshotEvery", o.redisSnapshotEvery, 1);
  if (!/^[\x21-\x7e]{1,64}$/.test(o.redisPrefix)) throw new RangeError(`redisPrefix must be 1-64 printable characters without spaces, not ${o.redisPrefix}`);
  o.pollTimeoutMs = Math.min(o.pollTimeoutMs, o.maxPollTimeoutMs);
  // node:http refuses a headers timeout above the request timeout (0 turns the latter off).
  if (o.requestTimeoutMs > 0) o.headersTimeoutMs = Math.min(o.headersTimeoutMs, o.requestTimeoutMs);
  return o;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
