import type { RedisClient } from "../redis/index.js";
import { text } from "./redis-replies.js";
import type { PresenceStore } from "./shared-presence.js";
import { decodeSpan, encodeSpan, MAX_SPANS, type Span } from "./unrecorded-time.js";

/**
 * Presence on Redis (spec §10): the sorted set `<prefix>:seen` (name key → last seen, ms),
 * and `<prefix>:unrecorded`, the spans during which a process could not record presence
 * (score: their end). Sent on the log's command connection (redis-log.ts).
 */
export class RedisPresence implements PresenceStore {
  readonly #client: RedisClient;
  readonly #seenKey: string;
  readonly #unrecordedKey: string;

  constructor(client: RedisClient, prefix: string) {
    this.#client = client;
    this.#seenKey = `${prefix}:seen`;
    this.#unrecordedKey = `${prefix}:unrecorded`;
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
    await this.#client.send(["ZREMRANGEBYSCORE", this.#unrecordedKey, "-inf", `(${before}`]);
  }

  async unrecorded(span: Span): Promise<void> {
    await this.#client.send(["ZADD", this.#unrecordedKey, span[1], encodeSpan(span)]);
    // The newest only (one per process per outage): a flapping Redis adds no more than that.
    await this.#client.send(["ZREMRANGEBYRANK", this.#unrecordedKey, 0, -(MAX_SPANS + 1)]);
  }

  async unrecordedSince(after: number): Promise<Span[]> {
    const reply = await this.#client.send(["ZRANGE", this.#unrecordedKey, "+inf", `(${after}`, "BYSCORE", "REV", "LIMIT", 0, MAX_SPANS]);
    return Array.isArray(reply) ? reply.map((m) => decodeSpan(text(m))).filter((s): s is Span => s !== undefined) : [];
  }
}
