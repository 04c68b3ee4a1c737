import { MemorySnapshots } from "./snapshot-store.js";
import { MemoryPresence } from "./memory-presence.js";
import { compareIds, NotStored, START, type LogEntry, type SharedLog } from "./shared-log.js";

/**
 * A shared log in memory: hubs of one process (tests) share one, as processes
 * share a Redis stream. Ids are "ms-seq" as Redis makes them: milliseconds of
 * the clock, never going back. `down()`/`up()` play a lost link.
 */
export class MemoryLog {
  readonly #entries: LogEntry[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #now: () => number;
  #last: [number, number] = [0, 0];
  /** After loseTail(): the clock's time then. */
  #notBefore = 0;
  #up = true;
  /**
   * The next append breaks the link after it was sent: "stored" keeps its records, "lost" drops them,
   * "held" keeps them on their way until releaseHeld() (a dead connection whose bytes arrive late).
   */
  breakNextAppend: "stored" | "lost" | "held" | undefined;
  readonly #held: { records: readonly string[]; deadline: number }[] = [];
  readonly presence = new MemoryPresence(() => this.#up);
  readonly snapshots = new MemorySnapshots((below) => {
    while (this.#entries.length > 0 && compareIds(this.#entries[0]!.id, below) < 0) this.#entries.shift();
  });

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  get entries(): readonly LogEntry[] {
    return this.#entries;
  }

  down(): void {
    this.#up = false;
  }

  up(): void {
    this.#up = true;
    for (const wake of [...this.#waiters]) wake();
  }

  /** Redis restarted empty: every entry and agreed value gone (the clock goes on). Replicas are told by the test (cluster.ts does it with Redis). */
  loseData(): void {
    this.#entries.length = 0;
    this.agreed.clear();
  }

  readonly agreed = new Map<string, string>();

  /** The epoch, as `<prefix>:epoch` names it: changed only when a client finds the log lost its end (tailLost). */
  epoch = 1;

  /**
   * Redis restarted from an older RDB/AOF: the newest `n` entries are gone, the epoch is
   * kept, and last-generated-id went back to the newest entry left; the clock went on meanwhile
   * (a restart takes more than a millisecond), so new ids are above the lost ones, as with Redis.
   */
  loseTail(n: number): void {
    this.#notBefore = this.#last[0] + 1;
    this.#entries.splice(Math.max(0, this.#entries.length - n));
    const last = this.#entries.at(-1)?.id ?? START;
    const dash = last.indexOf("-");
    this.#last = [Number(last.slice(0, dash)), Number(last.slice(dash + 1))];
  }

  /** As the Lua of redis-log.ts: the log no longer has `highest`, which was read, and did not trim it. */
  tailLost(highest: string): boolean {
    if (highest === START || this.#entries.some((e) => e.id === highest)) return false;
    if (compareIds(`${this.#last[0]}-${this.#last[1]}`, highest) < 0) return true;
    const first = this.#entries[0];
    return first !== undefined && compareIds(first.id, highest) < 0;
  }

  /** A new epoch for a log that lost its end, if it is still `epoch` (compare-and-set), its entries dropped. */
  newEpoch(epoch: number): void {
    if (this.epoch !== epoch) return;
    this.epoch++;
    this.#entries.length = 0;
  }

  /** One client of the log, as each process holds its own connection. */
  client(): SharedLog {
    return new MemoryLogClient(this);
  }

  get isUp(): boolean {
    return this.#up;
  }

  /** The store's clock (ms), which append deadlines are in. */
  now(): number {
    return this.#now();
  }

  /** The appends held on their way ("held") arrive now: each is stored, or refused (dropped) past its deadline, as redis-log-scripts.ts does. */
  releaseHeld(): number {
    let stored = 0;
    for (const { records, deadline } of this.#held.splice(0)) {
      if (this.#now() > deadline) continue;
      this.#store(records);
      stored += records.length;
    }
    return stored;
  }

  /** Stored unless past `deadline` (the store's clock): then NotStored, nothing kept. */
  append(records: readonly string[], deadline = Infinity): void {
    if (!this.#up) throw new Error("the shared log is unreachable");
    const broken = this.breakNextAppend;
    this.breakNextAppend = undefined;
    if (broken === "lost") throw new Error("the link broke before the records arrived");
    if (broken === "held") {
      this.#held.push({ records, deadline });
      throw new Error("the link broke while the records were on their way");
    }
    if (this.#now() > deadline) throw new NotStored("the append came after its deadline");
    if (broken === "stored") {
      this.breakNextAppend = undefined;
      this.#store(records);
      throw new Error("the link broke before the answer came");
    }
    this.#store(records);
  }

  #store(records: readonly string[]): void {
    for (const data of records) {
      const ms = Math.max(this.#now(), this.#last[0], this.#notBefore);
      const seq = ms === this.#last[0] ? this.#last[1] + 1 : 0;
      this.#last = [ms, seq];
      this.#entries.push({ id: `${ms}-${seq}`, data });
    }
    for (const wake of [...this.#waiters]) wake();
  }

  after(id: string, count: number): LogEntry[] {
    if (!this.#up) throw new Error("the shared log is unreachable");
    let i = this.#entries.length;
    while (i > 0 && compareIds(this.#entries[i - 1]!.id, id) > 0) i--;
    return this.#entries.slice(i, i + count);
  }

  tip(): string {
    if (!this.#up) throw new Error("the shared log is unreachable");
    return this.#entries.at(-1)?.id ?? START;
  }

  wait(blockMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, blockMs);
      this.#waiters.add(wake);
    });
  }
}

class MemoryLogClient implements SharedLog {
  readonly #log: MemoryLog;
  #closed = false;
  #epoch: number;
  /** The newest entry read in this epoch (redis-log.ts). */
  #highest = START;
  #onNewEpoch: ((reason: string) => void) | undefined;
  #onTrimmedPast: ((reason: string) => void) | undefined;

  constructor(log: MemoryLog) {
    this.#log = log;
    this.#epoch = log.epoch;
  }

  onNewEpoch(listener: (reason: string) => void): void {
    this.#onNewEpoch = listener;
  }

  onTrimmedPast(listener: (reason: string) => void): void {
    this.#onTrimmedPast = listener;
  }

  /** Whether this client's epoch still holds; if not, joins the new one (setting it if the log lost its end) and says so. */
  #checkEpoch(): boolean {
    if (this.#log.epoch === this.#epoch && !this.#log.tailLost(this.#highest)) return true;
    this.#log.newEpoch(this.#epoch);
    this.#epoch = this.#log.epoch;
    this.#highest = START;
    this.#onNewEpoch?.("the shared log lost its data (entries this process had read are gone)");
    return false;
  }

  get connected(): boolean {
    return this.#log.isUp && !this.#closed;
  }

  get epoch(): string {
    return String(this.#epoch);
  }

  reached(position: string): void {
    // At or before the newest read (a poll's mark): only if the log lacks it (redis-log.ts #checkHad).
    if (compareIds(position, this.#highest) <= 0 && !(this.#log.epoch === this.#epoch && this.#log.tailLost(position))) return;
    this.#highest = position;
    this.#checkEpoch();
  }

  get presence(): MemoryPresence {
    return this.#log.presence;
  }

  get snapshots(): MemorySnapshots {
    return this.#log.snapshots;
  }

  async append(records: readonly string[], deadline: number): Promise<void> {
    await Promise.resolve();
    if (!this.#checkEpoch()) throw new NotStored("the shared log lost entries this process read");
    this.#log.append(records, deadline);
  }

  /** The memory log's clock is the store's: known exactly. */
  deadline(windowMs: number): number {
    return this.#log.now() + windowMs;
  }

  passed(deadline: number): boolean {
    return this.#log.now() > deadline;
  }

  async read(after: string, count: number, blockMs: number): Promise<LogEntry[]> {
    // As a closed Redis connection: a reader still running (its process lost, not closed) backs off, never spins.
    if (this.#closed) throw new Error("the shared log is closed");
    let now = this.#log.after(after, count);
    if (now.length === 0 && !this.#closed) {
      await this.#log.wait(blockMs);
      now = this.#closed ? [] : this.#log.after(after, count);
    }
    const epoch = this.#epoch;
    if (!this.#checkEpoch()) throw new Error("the shared log is not this epoch's");
    // As redis-log.ts: the entry read after is trimmed, so entries after it may be too.
    if (after !== START && !this.#log.entries.some((e) => e.id === after)) {
      this.#onTrimmedPast?.(`the shared log is trimmed past ${after}`);
      throw new Error("the shared log is trimmed past this process");
    }
    const last = now.at(-1)?.id;
    if (last !== undefined && epoch === this.#epoch && compareIds(last, this.#highest) > 0) this.#highest = last;
    return now;
  }

  async tip(): Promise<string> {
    await Promise.resolve();
    return this.#log.tip();
  }

  async agree(name: string, value: string): Promise<string> {
    if (!this.#log.agreed.has(name)) this.#log.agreed.set(name, value);
    return this.#log.agreed.get(name)!;
  }

  close(): void {
    this.#closed = true;
  }
}
