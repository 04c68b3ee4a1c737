import { randomBytes } from "node:crypto";
import { RedisReplyError, RedisScript, type RedisClient, type RespReply } from "../redis/index.js";
import { compareIds } from "./shared-log.js";

/** Where replicas keep the shared state at one position of the log, in chunks (a Redis string stops at 512 MB). */
export interface SnapshotStore {
  /** The newest snapshot: its position and chunks; undefined when none was saved. */
  latest(): Promise<{ pos: string; chunks: Buffer[] } | undefined>;
  /** The newest snapshot's position only. */
  latestPosition(): Promise<string | undefined>;
  /**
   * Saves one unless another process is saving now (false): the chunks, then
   * the pointer to them; then the log is trimmed below the snapshot before it
   * (a process still loading that one finds what follows it) and older chunks go.
   */
  save(pos: string, chunks: readonly Buffer[]): Promise<boolean>;
}

interface Pointer {
  pos: string;
  n: number;
  prev?: { pos: string; n: number };
}

/** A saver holds the lock this long at most (it is released when done). */
const LOCK_MS = 30_000;

/** Points at a saved snapshot only in the epoch it was taken in: one of a state Redis has lost must never be loaded in the new one. */
const SET_POINTER = new RedisScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return redis.error_reply('EPOCH the snapshot is of an epoch that is gone') end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`);

/** Releases the saver's lock only while it is still this saver's (it may have expired and been taken by another, of a new epoch). */
const RELEASE_LOCK = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Keys: `<prefix>:snapshot` (the pointer, JSON), `<prefix>:snapshot:<pos>:<i>`
 * (chunk i), `<prefix>:snapshot-lock`. Two snapshots are kept: the newest and
 * the one before, below which the stream is trimmed (XTRIM MINID).
 */
export class RedisSnapshots implements SnapshotStore {
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #logKey: string;
  /** The epoch key, and the epoch this process's state is of now. */
  readonly #epoch: { key: string; now: () => string };

  constructor(client: RedisClient, prefix: string, logKey: string, epoch: { key: string; now: () => string }) {
    this.#client = client;
    this.#prefix = prefix;
    this.#logKey = logKey;
    this.#epoch = epoch;
  }

  async latest(): Promise<{ pos: string; chunks: Buffer[] } | undefined> {
    // A saver may drop the chunks of an old pointer between our reads: read again, a few times.
    for (let attempt = 0; attempt < 3; attempt++) {
      const pointer = await this.#pointer();
      if (pointer === undefined) return undefined;
      const chunks = await Promise.all(Array.from({ length: pointer.n }, (_, i) => this.#client.send(["GET", this.#chunkKey(pointer.pos, i)])));
      if (chunks.every(Buffer.isBuffer)) return { pos: pointer.pos, chunks: chunks as Buffer[] };
    }
    throw new Error("redis: the snapshot changed while it was read, three times");
  }

  async latestPosition(): Promise<string | undefined> {
    return (await this.#pointer())?.pos;
  }

  async save(pos: string, chunks: readonly Buffer[]): Promise<boolean> {
    // Taken now, with the chunks (synchronously before this call): the epoch the state is of.
    const epoch = this.#epoch.now();
    const lock = `${this.#prefix}:snapshot-lock`;
    const owner = `${pos} ${randomBytes(8).toString("hex")}`;
    if ((await this.#client.send(["SET", lock, owner, "NX", "PX", LOCK_MS])) === null) return false;
    try {
      const previous = await this.#pointer();
      // Another process saved one as new or newer since this one looked (saver.ts asks before the lock): a pointer
      // moved back would trim the log past its own snapshot, and every process loading it would find a hole.
      if (previous !== undefined && compareIds(previous.pos, pos) >= 0) return false;
      await Promise.all(chunks.map((chunk, i) => this.#client.send(["SET", this.#chunkKey(pos, i), chunk])));
      const pointer: Pointer = { pos, n: chunks.length, ...(previous && { prev: { pos: previous.pos, n: previous.n } }) };
      try {
        await this.#client.runScript(SET_POINTER, [`${this.#prefix}:snapshot`, this.#epoch.key], [JSON.stringify(pointer), epoch]);
      } catch (error) {
        if (!(error instanceof RedisReplyError && error.code === "EPOCH")) throw error;
        await this.#client.send(["DEL", ...chunks.map((_, i) => this.#chunkKey(pos, i))]);
        return false;
      }
      if (previous !== undefined) {
        await this.#client.send(["XTRIM", this.#logKey, "MINID", previous.pos]);
        const old = previous.prev;
        if (old !== undefined && old.n > 0) await this.#client.send(["DEL", ...Array.from({ length: old.n }, (_, i) => this.#chunkKey(old.pos, i))]);
      }
      return true;
    } finally {
      await this.#client.runScript(RELEASE_LOCK, [lock], [owner]).catch(() => {});
    }
  }

  async #pointer(): Promise<Pointer | undefined> {
    const reply: RespReply = await this.#client.send(["GET", `${this.#prefix}:snapshot`]);
    if (!Buffer.isBuffer(reply)) return undefined;
    const value = JSON.parse(reply.toString("utf8")) as Pointer;
    return typeof value.pos === "string" && Number.isSafeInteger(value.n) ? value : undefined;
  }

  #chunkKey(pos: string, i: number): string {
    return `${this.#prefix}:snapshot:${pos}:${i}`;
  }
}

/** Snapshots in memory (tests); `trim` drops the log's entries below a position. */
export class MemorySnapshots implements SnapshotStore {
  #latest: { pos: string; chunks: Buffer[] } | undefined;
  #previous: string | undefined;
  readonly #trim: (below: string) => void;

  constructor(trim: (below: string) => void) {
    this.#trim = trim;
  }

  async latest(): Promise<{ pos: string; chunks: Buffer[] } | undefined> {
    return this.#latest;
  }

  async latestPosition(): Promise<string | undefined> {
    return this.#latest?.pos;
  }

  async save(pos: string, chunks: readonly Buffer[]): Promise<boolean> {
    if (this.#latest !== undefined && compareIds(this.#latest.pos, pos) >= 0) return false;
    this.#previous = this.#latest?.pos;
    this.#latest = { pos, chunks: [...chunks] };
    if (this.#previous !== undefined) this.#trim(this.#previous);
    return true;
  }
}
