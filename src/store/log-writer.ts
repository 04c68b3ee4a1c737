import { closeSync, fdatasyncSync, ftruncateSync, openSync } from "node:fs";
import { rename } from "node:fs/promises";
import type { Session } from "../session.js";
import type { MessageRecord } from "../journal.js";
import { appendAll, dataSync, removeSync, syncDir, writeSynced } from "./files.js";
import type { LineChunks } from "./line-chunks.js";
import { ackLine } from "./records.js";

export interface LogWriterOptions {
  /** The log: appended to through `fd`, replaced at compaction (written beside it as `<path>.tmp`). */
  path: string;
  dir: string;
  /** Open for appending, `size` bytes long, all of them durable. */
  fd: number;
  size: number;
  /** Appended bytes before a compaction is due (then at least as many as the last snapshot held). */
  compactMinBytes: number;
  warn: (line: string) => void;
  /** The state now as lines, `held` counted as delivered; synchronous, so one moment of the hub. */
  snapshot: (held: readonly MessageRecord[]) => LineChunks;
  /** Applies a message whose line is durable (the hub's: history, queues, wakes). */
  apply: (record: MessageRecord) => void;
  /** Counted here, shown by the log (batches: each one write and one fdatasync). */
  stats: { batches: number; lines: number; compactions: number };
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Writes the log's lines in batches, ahead of delivery. One write and one
 * fdatasync for everything appended while the previous batch was on its way
 * (group commit), so a thousand concurrent posters share a handful of syncs.
 * A message (hold()) is applied once the batch holding its line is
 * durable, and never if that write fails: then nothing more is written
 * (retrying a failed fsync cannot be trusted) and `failure` says why.
 *
 * Every failure is caught here: the loop never rejects, a failed compaction
 * leaves the old log in place and is reported in one line.
 */
export class LogWriter {
  readonly #o: LogWriterOptions;
  #fd: number;
  /** The file's length as last made durable: a failed batch is cut back to it. */
  #size: number;
  #pending: string[] = [];
  /** Deliveries of the lines in #pending, in order. */
  #held: MessageRecord[] = [];
  #waiters: Waiter[] = [];
  #compactWaiters: Waiter[] = [];
  /** Clients whose cursor moved since the last batch: one ack line each per batch, not one per delivery. */
  #acked = new Set<Session>();
  #scheduled = false;
  #running = false;
  #compactDue = false;
  #closed = false;
  #failure: string | undefined;
  #bytesSince = 0;
  #compactAt: number;

  constructor(options: LogWriterOptions) {
    this.#o = options;
    this.#fd = options.fd;
    this.#size = options.size;
    this.#compactAt = Math.max(options.compactMinBytes, options.size);
  }

  /** Why nothing can be written (it stays so until a restart); undefined while all is well. */
  get failure(): string | undefined {
    return this.#failure;
  }

  get closed(): boolean {
    return this.#closed;
  }

  append(line: string): void {
    if (this.#closed || this.#failure !== undefined) return;
    this.#pending.push(line);
    this.#schedule();
  }

  /** Applies the message once everything appended so far is durable; drops it if that fails or the log is closed. */
  hold(record: MessageRecord): void {
    if (this.#closed || this.#failure !== undefined) return;
    this.#held.push(record);
    this.#schedule();
  }

  /** The client's cursor moved: where it stands goes into the next batch. */
  ack(client: Session): void {
    if (this.#closed || this.#failure !== undefined) return;
    this.#acked.add(client);
    this.#schedule();
  }

  /** Resolves once everything appended so far is on disk and delivered; rejects if that write fails. */
  flushed(): Promise<void> {
    if (this.#pending.length === 0 && this.#held.length === 0 && !this.#running) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once a compaction has replaced the file; rejects if it could not (the old file stands). */
  compact(): Promise<void> {
    this.#compactDue = true;
    return new Promise<void>((resolve, reject) => {
      this.#compactWaiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** Writes what is pending, then closes the file; nothing is appended after. */
  async close(closedError: Error): Promise<void> {
    this.#closed = true;
    await this.flushed().catch(() => {});
    for (const waiter of this.#compactWaiters.splice(0)) waiter.reject(closedError);
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  /** On the next turn of the event loop, so every request handled in this one joins the batch. */
  #schedule(): void {
    if (this.#running || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  #hasWork(): boolean {
    const compact = this.#compactDue && !this.#closed;
    return compact || this.#pending.length > 0 || this.#held.length > 0 || this.#waiters.length > 0 || this.#acked.size > 0;
  }

  /** One batch (or compaction) at a time; whatever arrives meanwhile is the next batch. Never rejects. */
  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#failure === undefined && this.#hasWork()) {
        this.#takeAcks();
        if (this.#compactDue && !this.#closed) await this.#compact();
        else await this.#writeBatch();
      }
    } catch (error) {
      // A bug rather than the disk: logging stops as on a failed write, and the process goes on.
      this.#fail(error, []);
    } finally {
      this.#running = false;
    }
  }

  /** A fan-out to N pollers moves N cursors; the log records where each stands once per batch. */
  #takeAcks(): void {
    for (const client of this.#acked) if (!client.ended) this.#pending.push(ackLine(client));
    this.#acked.clear();
  }

  async #writeBatch(): Promise<void> {
    const lines = this.#pending;
    const held = this.#held;
    const waiters = this.#waiters;
    this.#pending = [];
    this.#held = [];
    this.#waiters = [];
    if (lines.length > 0) {
      const data = Buffer.from(lines.join("\n") + "\n");
      try {
        await appendAll(this.#fd, data);
        await dataSync(this.#fd);
      } catch (error) {
        return this.#fail(error, waiters);
      }
      this.#size += data.length;
      this.#bytesSince += data.length;
      this.#o.stats.batches++;
      this.#o.stats.lines += lines.length;
      if (this.#bytesSince > this.#compactAt) this.#compactDue = true;
    }
    this.#deliver(held);
    for (const waiter of waiters) waiter.resolve();
  }

  /**
   * The hub's state now replaces the log. Lines still pending describe changes
   * the snapshot already holds (their held messages as if delivered): they are
   * not written, and their messages are delivered and their waiters answered
   * once the snapshot is durable. Posts go on meanwhile; their lines wait for
   * the next batch, which goes to the new file.
   */
  async #compact(): Promise<void> {
    this.#compactDue = false;
    const covered = this.#pending;
    const held = this.#held;
    const waiters = this.#waiters;
    const asked = this.#compactWaiters;
    this.#pending = [];
    this.#held = [];
    this.#waiters = [];
    this.#compactWaiters = [];
    const { path, dir } = this.#o;
    let snapshot: LineChunks;
    try {
      snapshot = this.#o.snapshot(held);
      await writeSynced(`${path}.tmp`, snapshot.chunks);
    } catch (error) {
      // The old log stands: give it back what it lacks, and try again only after as much growth again.
      this.#pending = [...covered, ...this.#pending];
      // In order, ahead of what came since: deliveries run in id order (journal.ts).
      this.#held = [...held, ...this.#held];
      this.#waiters = [...waiters, ...this.#waiters];
      this.#compactAt = Math.max(this.#compactAt, this.#bytesSince) * 2;
      this.#o.warn(`pollchat: data-dir: compacting ${path} failed (${errorMessage(error)}); the old log stands and keeps growing meanwhile`);
      for (const waiter of asked) waiter.reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    try {
      await rename(`${path}.tmp`, path);
      await syncDir(dir);
      const old = this.#fd;
      this.#fd = openSync(path, "a");
      closeSync(old);
    } catch (error) {
      removeSync(`${path}.tmp`);
      return this.#fail(error, [...waiters, ...asked]);
    }
    this.#size = snapshot.bytes;
    this.#o.stats.compactions++;
    this.#bytesSince = 0;
    this.#compactAt = Math.max(this.#o.compactMinBytes, snapshot.bytes);
    this.#deliver(held);
    for (const waiter of [...waiters, ...asked]) waiter.resolve();
  }

  /**
   * Runs deliveries whose records are durable, in order (the hub's cursors rely
   * on id order: journal.ts); one that throws (a listener's bug) does not stop the rest.
   */
  #deliver(held: readonly MessageRecord[]): void {
    for (const record of held) {
      try {
        this.#o.apply(record);
      } catch (error) {
        this.#o.warn(`pollchat: data-dir: delivering message ${record.envelope.id} failed: ${errorMessage(error)}`);
      }
    }
  }

  /**
   * Logging stops: what was held is delivered to no one, waiters are refused,
   * and the reason stays for /healthz and for refusing writes. Reported once.
   */
  #fail(error: unknown, waiters: Waiter[]): void {
    if (this.#failure !== undefined) return;
    this.#failure = `the message log in ${this.#o.dir} cannot be written: ${errorMessage(error)}`;
    this.#o.warn(`pollchat: data-dir: ${this.#failure}; posts and joins are refused (503) until a restart`);
    this.#cutBack();
    const refused = new Error(this.#failure);
    for (const waiter of [...waiters, ...this.#waiters, ...this.#compactWaiters]) waiter.reject(refused);
    this.#waiters = [];
    this.#compactWaiters = [];
    this.#pending = [];
    this.#held = [];
    this.#acked.clear();
  }

  /** Cuts off what a failed batch may have left in the file, so a restart does not bring back what no one got. Best effort. */
  #cutBack(): void {
    if (this.#fd < 0) return;
    try {
      ftruncateSync(this.#fd, this.#size);
      fdatasyncSync(this.#fd);
    } catch {
      // The disk refuses this too: a restart sets a torn tail aside; whole lines of the batch may come back.
    }
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
