/** The command line and environment turned into ChatOptions; no side effects, so tests can call it. */
import { parseArgs } from "node:util";
import { DEFAULTS, type ChatOptions } from "./config.js";
import { MIN_SECRET_BYTES } from "./identity/jwt.js";
import { LOG_FORMATS, LOG_LEVELS } from "./log.js";
import { parseRedisUrl } from "./redis/redis-url.js";

/** Every flag, its meaning and its default, in the order --help prints them. */
const FLAGS = {
  host: { type: "string", help: `address to listen on (env HOST; default ${DEFAULTS.host})` },
  port: { type: "string", help: `port to listen on, 0 picks a free one (env PORT; default ${DEFAULTS.port})` },
  "poll-timeout": { type: "string", help: `ms a poll is held when it names no timeout (default ${DEFAULTS.pollTimeoutMs})` },
  "max-queue": { type: "string", help: `messages kept per client before the oldest go (default ${DEFAULTS.maxQueue})` },
  "max-queue-bytes": { type: "string", help: `bytes kept per client's queue before the oldest go (default ${DEFAULTS.maxQueueBytes}, 4 MiB)` },
  "max-queued-bytes": {
    type: "string",
    help: `bytes all queues keep; past it the address holding the most loses its oldest (default ${DEFAULTS.maxQueuedBytes}, 256 MiB)`,
  },
  "max-queued-bytes-per-ip": {
    type: "string",
    help: `bytes the queues of one address's sessions keep, 0 for no share (default ${DEFAULTS.maxQueuedBytesPerIp}, 32 MiB)`,
  },
  "session-ttl": { type: "string", help: `seconds without a poll before a client is removed (default ${DEFAULTS.sessionTtlMs / 1000})` },
  "presence-limit": { type: "string", help: `join/leave notices only in rooms up to this size (default ${DEFAULTS.presenceLimit})` },
  "max-message": { type: "string", help: `longest message in characters (default ${DEFAULTS.maxMessage})` },
  rate: { type: "string", help: `posts per second per session, bursts of twice that (default ${DEFAULTS.rate})` },
  "rate-per-ip": {
    type: "string",
    help:
      `posts per second of all sessions one address created, bursts of twice that, 0 for no cap ` +
      `(default ${DEFAULTS.ratePerIp}, or 3 × --rate when more)`,
  },
  "max-sessions": { type: "string", help: `most sessions at once (default ${DEFAULTS.maxSessions})` },
  history: { type: "string", help: `messages of history kept per room (default ${DEFAULTS.history})` },
  "max-history-bytes": {
    type: "string",
    help: `bytes of history in all rooms, oldest of all go first (default ${DEFAULTS.maxHistoryBytes}, 64 MiB)`,
  },
  "require-token": { type: "boolean", help: "every client must join through POST /api/join first" },
  "jwt-secret": {
    type: "string",
    help: `names only from JWTs signed HS256 with this secret, ${MIN_SECRET_BYTES}+ bytes (env PCHAT_JWT_SECRET, which ps cannot show; with --redis: the same on every process)`,
  },
  "cors-origin": { type: "string", help: "allow a page from this origin (answers OPTIONS preflights)" },
  "data-dir": { type: "string", help: "keep a message log in this directory and restore from it" },
  redis: {
    type: "string",
    help: "redis://[:password@]host:port[/db]: one of several processes sharing this Redis 6.2+ (env REDIS_URL; not with --data-dir)",
  },
  "redis-prefix": { type: "string", help: `prefix of every Redis key, so deployments can share a Redis (default ${DEFAULTS.redisPrefix})` },
  "redis-snapshot-every": {
    type: "string",
    help: `entries of the shared log between snapshots of the state; the log is trimmed below the one before (default ${DEFAULTS.redisSnapshotEvery})`,
  },
  "tcp-port": { type: "string", help: "also serve the TCP line gateway (nc, telnet) on this port" },
  "max-connections-per-ip": {
    type: "string",
    help: `open connections from one address, 0 for no cap (default ${DEFAULTS.maxConnectionsPerIp}; with --trust-proxy the HTTP cap is off)`,
  },
  "max-rooms-per-session": { type: "string", help: `rooms one session may be in (default ${DEFAULTS.maxRoomsPerSession})` },
  "max-rooms": { type: "string", help: `rooms in all (default ${DEFAULTS.maxRooms})` },
  "max-sessions-per-ip": {
    type: "string",
    help: `sessions created from one address (IPv6: one /64), 0 for no cap (default ${DEFAULTS.maxSessionsPerIp})`,
  },
  "max-txn-keys-per-ip": {
    type: "string",
    help: `retry keys (txn) in their 10 minutes from sessions one address created, 0 for no share (default ${DEFAULTS.maxTxnKeysPerIp})`,
  },
  "max-txn-keys": {
    type: "string",
    help: `retry keys (txn) in their 10 minutes in all; past it only addresses holding their part are refused (default ${DEFAULTS.maxTxnKeys})`,
  },
  "trust-proxy": { type: "boolean", help: "behind a reverse proxy: per-address limits use the rightmost X-Forwarded-For hop" },
  "log-level": { type: "string", help: "error, warn, info or debug (default info; silent writes nothing)" },
  "log-format": { type: "string", help: "text or json, one line per event (default text)" },
  help: { type: "boolean", help: "print this help" },
} as const;

export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, f]) => `  --${name}${f.type === "string" ? " VALUE" : ""}`.padEnd(34) + f.help);
  return `Usage: pollchat [flags]\n\nA long-polling chat server on node:http.\n\n${lines.join("\n")}\n`;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`--${flag} takes ${allowed.join(", ")}, not "${value}"`);
  return value as T;
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`--${flag} takes a whole number, not "${value}"`);
  return Number(value);
}

/**
 * An environment variable's value, or undefined when it is unset or empty:
 * `PORT= npm start` means "no PORT", as everywhere in Node's ecosystem (spec §8).
 */
function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

/** Flags win over the environment; an explicitly empty flag (`--port ""`) is still an error. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv): ChatOptions | "help" {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([k, f]) => [k, { type: f.type }])) as {
    [K in keyof typeof FLAGS]: { type: (typeof FLAGS)[K]["type"] };
  };
  const { values: v } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  if (v.help) return "help";
  const rate = v.rate === undefined ? undefined : Number(v.rate);
  if (rate !== undefined && !(rate > 0)) throw new Error(`--rate takes a number above 0, not "${v.rate}"`);
  const ratePerIp = v["rate-per-ip"] === undefined ? undefined : Number(v["rate-per-ip"]);
  if (ratePerIp !== undefined && !(ratePerIp >= 0 && Number.isFinite(ratePerIp) && v["rate-per-ip"]!.trim() !== "")) {
    throw new Error(`--rate-per-ip takes a number, 0 for no cap, not "${v["rate-per-ip"]}"`);
  }
  const ttl = integer("session-ttl", v["session-ttl"]);
  const jwtSecret = v["jwt-secret"] ?? fromEnv(env, "PCHAT_JWT_SECRET");
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret, "utf8") < MIN_SECRET_BYTES) {
    throw new Error(`--jwt-secret (or PCHAT_JWT_SECRET) must be at least ${MIN_SECRET_BYTES} bytes: HS256 needs a 256-bit key`);
  }
  // The flag wins over the environment; with either, the log lives in Redis and no data dir may hold one too.
  const redis = v.redis ?? fromEnv(env, "REDIS_URL");
  if (redis !== undefined) {
    try {
      parseRedisUrl(redis);
    } catch (error) {
      throw new Error(`--redis: ${(error as Error).message}`);
    }
  }
  if (redis !== undefined && v["data-dir"] !== undefined) throw new Error("--data-dir and --redis do not combine: with --redis, Redis is the store");
  return {
    host: v.host ?? fromEnv(env, "HOST"),
    port: integer("port", v.port ?? fromEnv(env, "PORT")),
    pollTimeoutMs: integer("poll-timeout", v["poll-timeout"]),
    maxQueue: integer("max-queue", v["max-queue"]),
    maxQueueBytes: integer("max-queue-bytes", v["max-queue-bytes"]),
    maxQueuedBytes: integer("max-queued-bytes", v["max-queued-bytes"]),
    maxQueuedBytesPerIp: integer("max-queued-bytes-per-ip", v["max-queued-bytes-per-ip"]),
    sessionTtlMs: ttl === undefined ? undefined : ttl * 1000,
    presenceLimit: integer("presence-limit", v["presence-limit"]),
    maxMessage: integer("max-message", v["max-message"]),
    rate,
    ratePerIp,
    maxSessions: integer("max-sessions", v["max-sessions"]),
    history: integer("history", v.history),
    maxHistoryBytes: integer("max-history-bytes", v["max-history-bytes"]),
    requireToken: v["require-token"],
    jwtSecret,
    corsOrigin: v["cors-origin"],
    dataDir: v["data-dir"],
    redis,
    redisPrefix: v["redis-prefix"],
    redisSnapshotEvery: integer("redis-snapshot-every", v["redis-snapshot-every"]),
    tcpPort: integer("tcp-port", v["tcp-port"]),
    maxConnectionsPerIp: integer("max-connections-per-ip", v["max-connections-per-ip"]),
    maxRoomsPerSession: integer("max-rooms-per-session", v["max-rooms-per-session"]),
    maxRooms: integer("max-rooms", v["max-rooms"]),
    maxSessionsPerIp: integer("max-sessions-per-ip", v["max-sessions-per-ip"]),
    maxTxnKeysPerIp: integer("max-txn-keys-per-ip", v["max-txn-keys-per-ip"]),
    maxTxnKeys: integer("max-txn-keys", v["max-txn-keys"]),
    trustProxy: v["trust-proxy"],
    // The library is silent by default; the command line says what happens.
    logLevel: oneOf("log-level", v["log-level"] ?? "info", LOG_LEVELS),
    logFormat: oneOf("log-format", v["log-format"] ?? "text", LOG_FORMATS),
  };
}
