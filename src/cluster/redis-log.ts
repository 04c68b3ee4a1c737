import { randomBytes } from "node:crypto";
import { RedisClient, RedisConnectionError, RedisReplyError, RedisScript, type RespReply } from "../redis/index.js";
import type { PresenceStore } from "./shared-presence.js";
import { RedisSnapshots } from "./snapshot-store.js";
import { NotStored, START, type LogEntry, type SharedLog } from "./shared-log.js";

/** Connecting (and AUTH/SELECT) must take less than this at start: the process exits within 10 s (spec §10). */
const CONNECT_TIMEOUT_MS = 4000;
/** A command unanswered this long means the link is lost. */
const REPLY_TIMEOUT_MS = 3000;
/** XREAD BLOCK waits up to 2 s (replica.ts) for an entry: its reply may take that long. */
const READ_REPLY_TIMEOUT_MS = 6000;

/** How often a process checks that the shared log is still the one it read (Redis did not lose its data). */
const EPOCH_CHECK_MS = 1000;

/**
 * Appends a batch of records, all or none, and only to the log of this epoch:
 * a Redis that lost its data (restarted empty, flushed) has no epoch key, or
 * another, so a process still holding the old state can append nothing to the new log.
 */
const APPEND = new RedisScript(`
local epoch = redis.call('GET', KEYS[2])
if epoch ~= ARGV[1] then return redis.error_reply('EPOCH the shared log is not the one this process read (Redis lost its data?)') end
for i = 2, #ARGV do redis.call('XADD', KEYS[1], '*', 'r', ARGV[i]) end
return #ARGV - 1
`);

/**
 * The shared log on Redis (spec §10): one stream, `<prefix>:log`, whose
 * entries hold one record each (field `r`), appended with XADD (ids "ms-seq"
 * from Redis' clock, never going back) and read by XREAD BLOCK on a connection
 * of its own; presence in the sorted set `<prefix>:seen`. Pipelined: the
 * appends of one turn go out in one write, in order.
 */
export class RedisLog implements SharedLog, PresenceStore {
  readonly #client: RedisClient;
  /** For XREAD BLOCK, which holds its connection. */
  readonly #reader: RedisClient;
  readonly #logKey: string;
  readonly #seenKey: string;
  readonly snapshots: RedisSnapshots;
  readonly #epochKey: string;
  readonly #prefix: string;
  #epoch: string | undefined;
  #epochTimer: NodeJS.Timeout | undefined;
  #onLost: ((reason: string) => void) | undefined;

  constructor(url: string, prefix: string) {
    // A Redis that hangs or vanishes without a reset is taken for lost in seconds (posts 503, /healthz 503).
    this.#client = new RedisClient({ url, connectTimeoutMs: CONNECT_TIMEOUT_MS, replyTimeoutMs: REPLY_TIMEOUT_MS });
    // The blocking read waits up to its BLOCK time for a reply: its own, longer, timeout.
    this.#reader = new RedisClient({ url, connectTimeoutMs: CONNECT_TIMEOUT_MS, replyTimeoutMs: READ_REPLY_TIMEOUT_MS });
    this.#logKey = `${prefix}:log`;
    this.#seenKey = `${prefix}:seen`;
    this.snapshots = new RedisSnapshots(this.#client, prefix, this.#logKey);
    this.#epochKey = `${prefix}:epoch`;
    this.#prefix = prefix;
  }

  get presence(): PresenceStore {
    return this;
  }

  get connected(): boolean {
    return this.#client.state === "connected";
  }

  /** Times a connection came back after a loss. */
  get reconnects(): number {
    return this.#client.reconnects;
  }

  /** Connects both connections; rejects with a one-line reason. */
  async open(): Promise<void> {
    try {
      await Promise.all([this.#client.connect(), this.#reader.connect()]);
      // The first process of a deployment names its epoch; the others read it.
      await this.#client.send(["SET", this.#epochKey, randomBytes(8).toString("hex"), "NX"]);
      this.#epoch = text((await this.#client.send(["GET", this.#epochKey]))!);
    } catch (error) {
      this.close();
      throw new Error(`redis: cannot connect to ${this.#client.target.display}: ${(error as Error).message}`);
    }
    this.#epochTimer = setInterval(() => void this.#checkEpoch(), EPOCH_CHECK_MS).unref();
  }

  /** Told once if the log is found to have lost its data: this process's state is of an epoch that is gone. */
  onLost(listener: (reason: string) => void): void {
    this.#onLost = listener;
  }

  async append(records: readonly string[]): Promise<void> {
    try {
      await this.#client.runScript(APPEND, [this.#logKey, this.#epochKey], [this.#epoch ?? "", ...records]);
    } catch (error) {
      if (error instanceof RedisReplyError && error.code === "EPOCH") this.#lost();
      if (error instanceof RedisConnectionError && !error.sent) throw new NotStored(error.message);
      throw error;
    }
  }

  async #checkEpoch(): Promise<void> {
    if (!this.connected) return;
    const reply = await this.#client.send(["GET", this.#epochKey]).catch(() => undefined);
    if (reply !== undefined && (reply === null || text(reply) !== this.#epoch)) this.#lost();
  }

  #lost(): void {
    const listener = this.#onLost;
    this.#onLost = undefined;
    clearInterval(this.#epochTimer);
    listener?.(`redis: the shared log at ${this.#client.target.display} lost its data (its epoch ${this.#epoch} is gone); a process restarted now starts a new epoch`);
  }

  async read(after: string, count: number, blockMs: number): Promise<LogEntry[]> {
    const reply = await this.#reader.send(["XREAD", "COUNT", count, "BLOCK", blockMs, "STREAMS", this.#logKey, after]);
    if (!Array.isArray(reply) || reply.length === 0) return [];
    const stream = reply[0];
    return Array.isArray(stream) && Array.isArray(stream[1]) ? stream[1].map(toEntry) : [];
  }

  async agree(name: string, value: string): Promise<string> {
    const key = `${this.#prefix}:${name}`;
    await this.#client.send(["SET", key, value, "NX"]);
    return text((await this.#client.send(["GET", key]))!);
  }

  async tip(): Promise<string> {
    const reply = await this.#client.send(["XREVRANGE", this.#logKey, "+", "-", "COUNT", 1]);
    return Array.isArray(reply) && reply.length > 0 ? toEntry(reply[0]!).id : START;
  }

  async mark(seen: readonly (readonly [string, number])[]): Promise<void> {
    await this.#client.send(["ZADD", this.#seenKey, "GT", ...seen.flatMap(([key, at]) => [at, key])]);
  }

  async lastSeen(keys: readonly string[]): Promise<(number | undefined)[]> {
    const reply = await this.#client.send(["ZMSCORE", this.#seenKey, ...keys]);
    return Array.isArray(reply) ? reply.map((score) => (score === null ? undefined : Number(text(score)))) : keys.map(() => undefined);
  }

  async forget(before: number): Promise<void> {
    await this.#client.send(["ZREMRANGEBYSCORE", this.#seenKey, "-inf", `(${before}`]);
  }

  close(): void {
    clearInterval(this.#epochTimer);
    void this.#client.close();
    void this.#reader.close();
  }
}

function text(reply: RespReply): string {
  return Buffer.isBuffer(reply) ? reply.toString("utf8") : String(reply);
}

/** [id, [field, value, ...]] → an entry; a record is field `r`. */
function toEntry(reply: RespReply): LogEntry {
  if (!Array.isArray(reply)) return { id: START, data: "" };
  const id = text(reply[0]!);
  const fields = Array.isArray(reply[1]) ? reply[1] : [];
  let data = "";
  for (let i = 0; i + 1 < fields.length; i += 2) if (text(fields[i]!) === "r") data = text(fields[i + 1]!);
  return { id, data };
}
