import { EventEmitter } from "node:events";
import { RedisConnection } from "./redis-connection.js";
import { RedisConnectionError, RedisReplyError } from "./redis-errors.js";
import type { RedisScript } from "./redis-script.js";
import { parseRedisUrl, type RedisTarget } from "./redis-url.js";
import type { RedisArg } from "./resp-encode.js";
import type { RespLimits } from "./resp-limits.js";
import type { RespReply } from "./resp-reply.js";

export interface RedisClientOptions {
  /** A `redis://` URL (see parseRedisUrl) or one already parsed. */
  url: string | RedisTarget;
  /** Connecting plus AUTH/SELECT must take less, or the attempt fails. @default 5000 (ms) */
  connectTimeoutMs?: number;
  /**
   * Commands waiting and not a byte from Redis for this long: the connection
   * is taken for lost (its commands rejected, sent: true) and reconnected.
   * A client that blocks (XREAD BLOCK n) needs n well below it. @default undefined (never)
   */
  replyTimeoutMs?: number;
  /** Waits between reconnect attempts: doubling from the first to the last, each with jitter. @default 50, 2000 (ms) */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  limits?: Partial<RespLimits>;
}

/**
 * `disconnected`: not connected (before connect(), or between reconnect
 * attempts); `connecting`: an attempt is under way; `closed`: close() was called.
 */
export type RedisState = "disconnected" | "connecting" | "connected" | "closed";

export interface RedisClientEvents {
  /** Connected and logged in, the first time and after every reconnect. */
  connected: [];
  /** The connection was lost; reconnect attempts follow until close(). */
  disconnected: [reason: Error];
}

/**
 * A Redis client over one connection at a time: connect() once, then it
 * reconnects by itself after a loss, with exponential backoff and jitter,
 * until close(). While it is not connected, commands fail at once with a
 * RedisConnectionError (sent: false) rather than wait in memory: the caller
 * decides (pollchat answers 503). A blocking command (XREAD BLOCK) holds
 * its connection, so it gets its own client: duplicate().
 */
export class RedisClient extends EventEmitter<RedisClientEvents> {
  readonly target: RedisTarget;
  readonly #options: RedisClientOptions;
  readonly #connectTimeoutMs: number;
  readonly #reconnectMinMs: number;
  readonly #reconnectMaxMs: number;
  #state: RedisState = "disconnected";
  #connection: RedisConnection | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Failed attempts since the connection was lost: the backoff's exponent. */
  #failures = 0;
  #reconnects = 0;
  #lastError: Error | undefined;

  constructor(options: RedisClientOptions) {
    super();
    this.#options = options;
    this.target = typeof options.url === "string" ? parseRedisUrl(options.url) : options.url;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#reconnectMinMs = options.reconnectMinMs ?? 50;
    this.#reconnectMaxMs = options.reconnectMaxMs ?? 2000;
  }

  get state(): RedisState {
    return this.#state;
  }

  /** Times the connection came back after a loss. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Why the last connection or attempt ended, for a log line. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** Commands sent and not answered yet. */
  get waiting(): number {
    return this.#connection?.waiting ?? 0;
  }

  /**
   * The first connection: one attempt, rejected with a one-line reason
   * (refused, timed out, AUTH or SELECT refused). May be called again after
   * a failure. Once connected, losses are repaired by reconnecting.
   */
  connect(): Promise<void> {
    if (this.#state !== "disconnected" || this.#timer !== undefined) return Promise.reject(new Error(`connect() when ${this.#state}`));
    return this.#open(false);
  }

  /** Sends a command (pipelined with the others of this tick); rejects with a RedisReplyError or a RedisConnectionError. */
  send(args: readonly RedisArg[]): Promise<RespReply> {
    const connection = this.#connection;
    if (this.#state !== "connected" || connection === undefined) {
      const why = this.#lastError ? ` (${this.#lastError.message})` : "";
      return Promise.reject(new RedisConnectionError(`${this.target.display}: not connected${why}`, false));
    }
    return connection.send(args);
  }

  call(...args: RedisArg[]): Promise<RespReply> {
    return this.send(args);
  }

  /**
   * Runs a script by EVALSHA, and by EVAL (which also loads it) if the server
   * does not know it (NOSCRIPT: after a restart or SCRIPT FLUSH; nothing ran).
   * The fallback goes out when the NOSCRIPT reply is in, so it may run after
   * commands sent later than the EVALSHA: order scripts by awaiting them.
   */
  async runScript(script: RedisScript, keys: readonly RedisArg[] = [], args: readonly RedisArg[] = []): Promise<RespReply> {
    try {
      return await this.send(["EVALSHA", script.sha1, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!(error instanceof RedisReplyError) || error.code !== "NOSCRIPT") throw error;
      return this.send(["EVAL", script.source, keys.length, ...keys, ...args]);
    }
  }

  /** A new, unconnected client to the same server with the same options (for blocking reads). */
  duplicate(): RedisClient {
    return new RedisClient({ ...this.#options, url: this.target });
  }

  /** Stops everything: the socket, reconnect timer; waiting commands are rejected. Resolves once the socket is gone. */
  async close(): Promise<void> {
    this.#state = "closed";
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const connection = this.#connection;
    this.#connection = undefined;
    await connection?.destroy(new RedisConnectionError(`${this.target.display}: client closed`, false));
  }

  async #open(reconnecting: boolean): Promise<void> {
    this.#state = "connecting";
    const connection = new RedisConnection({
      target: this.target,
      connectTimeoutMs: this.#connectTimeoutMs,
      ...(this.#options.replyTimeoutMs !== undefined ? { replyTimeoutMs: this.#options.replyTimeoutMs } : {}),
      ...(this.#options.limits ? { limits: this.#options.limits } : {}),
      onClose: (reason) => this.#onClose(connection, reason),
    });
    this.#connection = connection;
    try {
      await connection.ready;
      // Lost between its last handshake reply and here: #onClose ignored it, so it fails here.
      if (!connection.usable) throw connection.reason ?? new RedisConnectionError(`${this.target.display}: connection lost`, false);
    } catch (error) {
      if (this.#connection === connection) this.#connection = undefined;
      this.#lastError = error as Error;
      // (read through the getter: close() may have run while this awaited)
      if (this.state !== "closed") this.#state = "disconnected";
      throw error;
    }
    if (this.state === "closed") return;
    this.#state = "connected";
    this.#failures = 0;
    if (reconnecting) this.#reconnects++;
    this.emit("connected");
  }

  #onClose(connection: RedisConnection, reason: Error): void {
    if (this.#connection !== connection) return;
    // A failed attempt is handled where it was awaited.
    if (this.#state !== "connected") return;
    this.#connection = undefined;
    this.#lastError = reason;
    this.#state = "disconnected";
    this.emit("disconnected", reason);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#state === "closed") return;
    // Equal jitter: at least half the backoff, so a restarted Redis is not hit by every process at once.
    const backoff = Math.min(this.#reconnectMaxMs, this.#reconnectMinMs * 2 ** Math.min(this.#failures, 20));
    const delay = backoff / 2 + Math.random() * (backoff / 2);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#open(true).catch(() => {
        this.#failures++;
        this.#scheduleReconnect();
      });
    }, delay);
  }
}
