import { RedisClient, type RespReply } from "../redis/index.js";
import type { PresenceStore } from "./shared-presence.js";
import { RedisSnapshots } from "./snapshot-store.js";
import { START, type LogEntry, type SharedLog } from "./shared-log.js";

/** Connecting (and AUTH/SELECT) must take less than this at start: the process exits within 10 s (spec §10). */
const CONNECT_TIMEOUT_MS = 4000;

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

  constructor(url: string, prefix: string) {
    this.#client = new RedisClient({ url, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    this.#reader = this.#client.duplicate();
    this.#logKey = `${prefix}:log`;
    this.#seenKey = `${prefix}:seen`;
    this.snapshots = new RedisSnapshots(this.#client, prefix, this.#logKey);
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
    } catch (error) {
      await this.close();
      throw new Error(`redis: cannot connect to ${this.#client.target.display}: ${(error as Error).message}`);
    }
  }

  async append(records: readonly string[]): Promise<void> {
    await Promise.all(records.map((data) => this.#client.send(["XADD", this.#logKey, "*", "r", data])));
  }

  async read(after: string, count: number, blockMs: number): Promise<LogEntry[]> {
    const reply = await this.#reader.send(["XREAD", "COUNT", count, "BLOCK", blockMs, "STREAMS", this.#logKey, after]);
    if (!Array.isArray(reply) || reply.length === 0) return [];
    const stream = reply[0];
    return Array.isArray(stream) && Array.isArray(stream[1]) ? stream[1].map(toEntry) : [];
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
