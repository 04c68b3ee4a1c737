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

/** How often a process checks that the shared log is still the one of its epoch (Redis did not lose its data). */
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
  /** The epoch is gone, and the new one not joined yet: nothing is appended meanwhile. */
  #changing = false;
  #checking = false;
  #onNewEpoch: ((reason: string) => void) | undefined;

  constructor(url: string, prefix: string) {
    // A Redis that hangs or vanishes without a reset is taken for lost in seconds (posts 503, /healthz 503).
    this.#client = new RedisClient({ url, connectTimeoutMs: CONNECT_TIMEOUT_MS, replyTimeoutMs: REPLY_TIMEOUT_MS });
    // The blocking read waits up to its BLOCK time for a reply: its own, longer, timeout.
    this.#reader = new RedisClient({ url, connectTimeoutMs: CONNECT_TIMEOUT_MS, replyTimeoutMs: READ_REPLY_TIMEOUT_MS });
    this.#logKey = `${prefix}:log`;
    this.#seenKey = `${prefix}:seen`;
    this.#epochKey = `${prefix}:epoch`;
    this.snapshots = new RedisSnapshots(this.#client, prefix, this.#logKey, { key: this.#epochKey, now: () => this.#epoch ?? "" });
    this.#prefix = prefix;
  }

  get presence(): PresenceStore {
    return this;
  }

  /** False too while the epoch is being changed: appends wait for the new one (503 meanwhile). */
  get connected(): boolean {
    return this.#client.state === "connected" && !this.#changing;
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
      this.#epoch = await this.#nameEpoch();
    } catch (error) {
      this.close();
      throw new Error(`redis: cannot connect to ${this.#client.target.display}: ${(error as Error).message}`);
    }
    this.#epochTimer = setInterval(() => void this.#checkEpoch(), EPOCH_CHECK_MS).unref();
  }

  /** Told each time the log is found to have lost its data, once this process has joined the new epoch: its state must start over. */
  onNewEpoch(listener: (reason: string) => void): void {
    this.#onNewEpoch = listener;
  }

  /** The first process of a deployment (or of a new epoch) names it; the others read it. */
  async #nameEpoch(): Promise<string> {
    await this.#client.send(["SET", this.#epochKey, randomBytes(8).toString("hex"), "NX"]);
    return text((await this.#client.send(["GET", this.#epochKey]))!);
  }

  async append(records: readonly string[]): Promise<void> {
    try {
      await this.#client.runScript(APPEND, [this.#logKey, this.#epochKey], [this.#epoch ?? "", ...records]);
    } catch (error) {
      // Refused whole by the script: nothing of it was stored.
      if (error instanceof RedisReplyError && error.code === "EPOCH") {
        this.#lost();
        throw new NotStored(error.message);
      }
      if (error instanceof RedisConnectionError && !error.sent) throw new NotStored(error.message);
      throw error;
    }
  }

  /**
   * Whether the epoch is still this process's; if not (Redis lost its data), joins
   * the new one (named by the first process to notice, as open() does) and says so.
   * Tried again on the next tick while Redis cannot be asked.
   */
  async #checkEpoch(): Promise<void> {
    if (this.#client.state !== "connected" || this.#checking) return;
    this.#checking = true;
    try {
      const reply = await this.#client.send(["GET", this.#epochKey]);
      if (reply !== null && text(reply) === this.#epoch) {
        this.#changing = false; // an append refused for an epoch this process had already left
        return;
      }
      this.#changing = true;
      const old = this.#epoch;
      this.#epoch = await this.#nameEpoch();
      this.#changing = false;
      const reason = `redis: the shared log at ${this.#client.target.display} lost its data (its epoch ${old} is gone); this process starts over in epoch ${this.#epoch}`;
      this.#onNewEpoch?.(reason);
    } catch {
      // Redis cannot be asked now: the next tick asks again.
    } finally {
      this.#checking = false;
    }
  }

  /** Found by an append or a read: appends stop until the new epoch is joined. */
  #lost(): void {
    this.#changing = true;
    void this.#checkEpoch();
  }

  async read(after: string, count: number, blockMs: number): Promise<LogEntry[]> {
    const epoch = this.#epoch;
    // The epoch, asked right after the read on its connection: entries read once Redis lost its data may be the new log's, never to be applied to this state.
    const [reply, current] = await Promise.all([
      this.#reader.send(["XREAD", "COUNT", count, "BLOCK", blockMs, "STREAMS", this.#logKey, after]),
      this.#reader.send(["GET", this.#epochKey]),
    ]);
    if (current === null || text(current) !== epoch) {
      this.#lost();
      throw new Error("redis: the shared log is not this epoch's");
    }
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
