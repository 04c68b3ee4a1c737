import { randomBytes } from "node:crypto";
import { RedisClient, RedisConnectionError, RedisReplyError } from "../redis/index.js";
import { APPEND, CHECK } from "./redis-log-scripts.js";
import { RedisPresence } from "./redis-presence.js";
import { text, toEntry } from "./redis-replies.js";
import { RedisSnapshots } from "./snapshot-store.js";
import { StoreClock } from "./store-clock.js";
import { WriteHealth } from "./write-health.js";
import { compareIds, NotStored, START, type LogEntry, type SharedLog } from "./shared-log.js";

/** Connecting (and AUTH/SELECT) must take less than this at start: the process exits within 10 s (spec §10). */
const CONNECT_TIMEOUT_MS = 4000;
/** A command unanswered this long means the link is lost. */
const REPLY_TIMEOUT_MS = 3000;
/** XREAD BLOCK waits up to 2 s (replica.ts) for an entry: its reply may take that long. */
const READ_REPLY_TIMEOUT_MS = 6000;

/** How often a process checks that the shared log is still the one of its epoch (Redis did not lose its data). */
const EPOCH_CHECK_MS = 1000;
/** How often a process asks Redis' time when no append tells it (store-clock.ts: the bound drifts slowly). */
const TIME_SAMPLE_MS = 2000;
/** Signed positions remembered as found in the log (a mark presented again asks Redis nothing). */
const MAX_HAD = 4096;

/**
 * The shared log on Redis (spec §10): one stream, `<prefix>:log`, whose
 * entries hold one record each (field `r`), appended with XADD (ids "ms-seq"
 * from Redis' clock, never going back) and read by XREAD BLOCK on a connection
 * of its own; presence in the sorted set `<prefix>:seen` (redis-presence.ts).
 * Pipelined: the appends of one turn go out in one write, in order.
 */
export class RedisLog implements SharedLog {
  readonly #client: RedisClient;
  /** For XREAD BLOCK, which holds its connection. */
  readonly #reader: RedisClient;
  readonly #logKey: string;
  readonly snapshots: RedisSnapshots;
  /** Presence in the sorted set `<prefix>:seen`, on the same connection as appends. */
  readonly presence: RedisPresence;
  readonly #epochKey: string;
  readonly #prefix: string;
  #epoch: string | undefined;
  #epochTimer: NodeJS.Timeout | undefined;
  /** The epoch is gone, and the new one not joined yet: nothing is appended meanwhile. */
  #changing = false;
  #checking = false;
  /** The newest entry this process read in this epoch: the log must still have it (or have trimmed it). */
  #highest = START;
  /** #highest came from a signed token (reached()), not a read: said in the reason. */
  #signed: string | undefined;
  /** Signed positions at or before #highest that the log was asked about (#checkHad). */
  readonly #had = new Set<string>();
  #onNewEpoch: ((reason: string) => void) | undefined;
  #onTrimmedPast: ((reason: string) => void) | undefined;
  /** What this process knows of Redis' clock: the deadlines of its appends. */
  readonly #clock = new StoreClock();
  #timeTimer: NodeJS.Timeout | undefined;
  readonly #writes: WriteHealth;

  constructor(url: string, prefix: string) {
    // A Redis that hangs or vanishes without a reset is taken for lost in seconds (posts 503, /healthz 503).
    this.#client = new RedisClient({ url, connectTimeoutMs: CONNECT_TIMEOUT_MS, replyTimeoutMs: REPLY_TIMEOUT_MS });
    // The blocking read waits up to its BLOCK time for a reply: its own, longer, timeout.
    this.#reader = new RedisClient({ url, connectTimeoutMs: CONNECT_TIMEOUT_MS, replyTimeoutMs: READ_REPLY_TIMEOUT_MS });
    this.#logKey = `${prefix}:log`;
    this.presence = new RedisPresence(this.#client, prefix);
    this.#epochKey = `${prefix}:epoch`;
    this.snapshots = new RedisSnapshots(this.#client, prefix, this.#logKey, { key: this.#epochKey, now: () => this.#epoch ?? "" });
    this.#prefix = prefix;
    // A write of its own while Redis refuses writes: a key of a few bytes that expires.
    this.#writes = new WriteHealth(async () => void (await this.#client.send(["SET", `${prefix}:probe`, "1", "PX", 60_000])));
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
      await this.#sampleTime();
    } catch (error) {
      this.close();
      throw new Error(`redis: cannot connect to ${this.#client.target.display}: ${(error as Error).message}`);
    }
    this.#epochTimer = setInterval(() => void this.#checkEpoch(), EPOCH_CHECK_MS).unref();
    this.#timeTimer = setInterval(() => void this.#sampleTime().catch(() => {}), TIME_SAMPLE_MS).unref();
    // Back from a loss: Redis may have restarted from older data; asked before anything else can be.
    this.#client.on("connected", () => void this.#checkEpoch());
  }

  get epoch(): string | undefined {
    return this.#epoch;
  }

  /** A position a token the cluster signed in this epoch names: checked as one this process read (a new epoch if the log lost it). */
  reached(position: string): void {
    if (this.#changing) return;
    if (compareIds(position, this.#highest) <= 0) return void this.#checkHad(position);
    this.#highest = position;
    this.#signed = position;
    void this.#checkEpoch();
  }

  /**
   * A signed position at or before the newest read (a poll's mark: replica.ts checkMark): the log must have it (or have
   * trimmed it). Asked once per position (a bounded memory of those found there); a loss starts a new epoch as above.
   */
  async #checkHad(position: string): Promise<void> {
    if (this.#had.has(position) || this.#client.state !== "connected" || this.#epoch === undefined) return;
    if (this.#had.size >= MAX_HAD) this.#had.clear();
    this.#had.add(position); // asked now: a second poll with it meanwhile asks nothing
    try {
      if ((await this.#check(this.#client, this.#epoch, position)) === 0) return;
    } catch {
      this.#had.delete(position); // not asked: the next one asks
      return;
    }
    this.#signed = position;
    void this.#checkEpoch();
  }

  /** Told each time the log is found to have lost its data, once this process has joined the new epoch: its state must start over. */
  onNewEpoch(listener: (reason: string) => void): void {
    this.#onNewEpoch = listener;
  }

  /** Told when a read finds the log trimmed past where it read after: what it read is thrown away, and this process must load the newest snapshot. */
  onTrimmedPast(listener: (reason: string) => void): void {
    this.#onTrimmedPast = listener;
  }

  /** The first process of a deployment (or of a new epoch) names it; the others read it. */
  async #nameEpoch(): Promise<string> {
    await this.#client.send(["SET", this.#epochKey, randomBytes(8).toString("hex"), "NX"]);
    return text((await this.#client.send(["GET", this.#epochKey]))!);
  }

  deadline(windowMs: number): number {
    return this.#clock.deadline(windowMs);
  }

  passed(deadline: number): boolean {
    return this.#clock.passed(deadline);
  }

  /** Why Redis refuses writes now (the last append, or the probe since), or undefined. */
  get writeFailure(): string | undefined {
    return this.#writes.failure;
  }

  async append(records: readonly string[], deadline: number): Promise<void> {
    const answered = this.#writes.sending();
    try {
      const args = [this.#epoch ?? "", this.#highest, deadline, ...records];
      const now = await this.#client.runScript(APPEND, [this.#logKey, this.#epochKey], args);
      this.#clock.sample(Number(now));
      this.#writes.ok();
    } catch (error) {
      // Refused whole by the script (or by Redis before it wrote: its only writes are the XADDs, after every check): nothing stored.
      if (error instanceof RedisReplyError) {
        if (error.code === "EPOCH" || error.code === "TAIL") this.#lost();
        else if (error.code !== "LATE") this.#writes.failed(`the shared store (redis) refuses writes: ${error.message}`);
        throw new NotStored(error.message);
      }
      if (error instanceof RedisConnectionError && !error.sent) throw new NotStored(error.message);
      throw error;
    } finally {
      answered();
    }
  }

  /** Redis' clock, as a bound this process can trust (store-clock.ts). */
  async #sampleTime(): Promise<void> {
    const reply = await this.#client.send(["TIME"]);
    if (!Array.isArray(reply) || reply.length !== 2) return;
    this.#clock.sample(Number(text(reply[0]!)) * 1000 + Math.floor(Number(text(reply[1]!)) / 1000));
  }

  /**
   * Whether the epoch is still this process's and the log still has what this process
   * read; if not (Redis lost its data, or the end of the log: then a new epoch is set), joins
   * the new one (named by the first process to notice, as open() does) and says so.
   * Tried again on the next tick while Redis cannot be asked.
   */
  async #checkEpoch(): Promise<void> {
    if (this.#client.state !== "connected" || this.#checking || this.#epoch === undefined) return;
    this.#checking = true;
    try {
      const highest = this.#highest;
      const reply = await this.#check(this.#client, this.#epoch, highest);
      if (reply === 0) {
        this.#changing = false; // an append refused for an epoch this process had already left
        if (highest === this.#highest) this.#signed = undefined; // the log has what a token said: nothing to tell
        return;
      }
      this.#changing = true;
      const old = this.#epoch;
      this.#epoch = await this.#nameEpoch();
      // (A read of this process may have found the loss first: it set the new epoch, and this check sees it changed.)
      const signed = this.#signed !== undefined;
      this.#highest = START;
      this.#signed = undefined;
      this.#had.clear();
      this.#changing = false;
      const gone = signed
        ? "a token the cluster signed (or a poll's mark) names a position the log no longer has"
        : "entries this process had read are gone";
      const what = reply === 2 || signed ? `lost its data (${gone}: Redis came back with older data)` : "lost its data";
      const reason = `redis: the shared log at ${this.#client.target.display} ${what} (its epoch ${old} is gone); this process starts over in epoch ${this.#epoch}`;
      this.#onNewEpoch?.(reason);
    } catch {
      // Redis cannot be asked now: the next tick asks again.
    } finally {
      this.#checking = false;
    }
  }

  /** 0 all well, 1 the epoch changed, 2 the end of the log was lost (a new epoch is set now), 3 trimmed past `after`: CHECK above. */
  async #check(client: RedisClient, epoch: string | undefined, highest: string, after = ""): Promise<number> {
    return Number(await client.runScript(CHECK, this.#checkKeys(), [epoch ?? "", highest, randomBytes(8).toString("hex"), after]));
  }

  #checkKeys(): string[] {
    return [this.#logKey, this.#epochKey, `${this.#prefix}:snapshot`];
  }

  /** A read that CHECK refused: nothing of it is applied. */
  #refuse(current: number, after: string): never {
    if (current === 3) {
      this.#onTrimmedPast?.(`redis: this process fell behind the shared log's trim (it read after ${after}, which is trimmed)`);
      throw new Error("redis: the shared log is trimmed past this process");
    }
    this.#lost();
    throw new Error("redis: the shared log is not this epoch's");
  }

  /** Found by an append or a read: appends stop until the new epoch is joined. */
  #lost(): void {
    this.#changing = true;
    void this.#checkEpoch();
  }

  async read(after: string, count: number, blockMs: number): Promise<LogEntry[]> {
    const epoch = this.#epoch;
    const highest = compareIds(after, this.#highest) > 0 ? after : this.#highest;
    // What is there now, checked (the epoch, the log's end, `after` not trimmed) and read in one step.
    const now = await this.#reader.runScript(CHECK, this.#checkKeys(), [epoch ?? "", highest, randomBytes(8).toString("hex"), after, count]);
    let entries = Array.isArray(now) && Array.isArray(now[1]) ? now[1].map(toEntry) : this.#refuse(Number(now), after);
    if (entries.length === 0) {
      // Nothing after it yet: wait for what comes, then check again right behind the wait on its connection
      // (entries read once Redis lost its data may be the new log's, never to be applied to this state).
      const [reply, current] = await Promise.all([
        this.#reader.send(["XREAD", "COUNT", count, "BLOCK", blockMs, "STREAMS", this.#logKey, after]),
        this.#check(this.#reader, epoch, highest, after),
      ]);
      if (current !== 0) this.#refuse(current, after);
      const stream = Array.isArray(reply) ? reply[0] : undefined;
      entries = Array.isArray(stream) && Array.isArray(stream[1]) ? stream[1].map(toEntry) : [];
    }
    const last = entries.at(-1)?.id;
    if (last !== undefined && epoch === this.#epoch && compareIds(last, this.#highest) > 0) this.#highest = last;
    return entries;
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

  close(): void {
    clearInterval(this.#epochTimer);
    clearInterval(this.#timeTimer);
    this.#writes.close();
    void this.#client.close();
    void this.#reader.close();
  }
}
