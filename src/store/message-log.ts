import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import type { Client } from "../client.js";
import type { Hub } from "../hub.js";
import type { ChatMessage, Envelope } from "../message.js";
import { Room } from "../room.js";
import { appendAll, dataSync, replaceFileSync, syncDir, writeNewFileSync, writeSynced } from "./files.js";
import { ackLine, endLine, messageLine, roomLine, sessionStartLine, txnLine } from "./records.js";
import { replay, type ReplayResult } from "./replay.js";
import { snapshotLines } from "./snapshot.js";

export const LOG_FILE = "pollchat.log";
/** Appended bytes before a compaction is due (then at least as many as the last snapshot held). */
const COMPACT_MIN_BYTES = 8 * 1024 * 1024; // 8 MiB
/** Rooms without members whose history is kept; past this the one emptied longest ago is forgotten. */
export const MAX_KEPT_ROOMS = 1000;

export interface MessageLogOptions {
  maxQueue: number;
  /** Messages of history kept per room (--history). */
  history: number;
  /** @default 8 MiB */
  compactMinBytes?: number;
  now?: () => number;
  /** Where one-line reports go (lines set aside, failed writes). @default stderr */
  warn?: (line: string) => void;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * --data-dir: an append-only log of what the hub accepted, restored at start.
 *
 * The hub emits; this turns each event into one line and appends it. Lines
 * are written in batches: one write and one fdatasync for everything appended
 * while the previous batch was on its way (group commit), so a thousand
 * concurrent posters share a handful of syncs. durable() resolves once all
 * that was accepted before the call is on disk; posts are answered after it.
 *
 * Restore is synchronous, before the hub serves: open() reads and replays the
 * file, attach() hands the result to the hub and rewrites the file compacted.
 * While serving, the log is compacted again whenever it has grown by as much
 * as its last snapshot (and at least compactMinBytes): a new file from the
 * hub's state, synced, renamed over the old one, the directory synced.
 */
export class MessageLog {
  readonly dir: string;
  /** The newest id the log holds: the hub continues above it. */
  readonly lastId: number;
  /** Records loaded at start and lines set aside, for reports and tests. */
  readonly loaded: { records: number; setAside: number; setAsideFile: string | undefined };
  /** Batches written (each one write and one fdatasync), lines in them, compactions done while serving. */
  readonly stats = { batches: 0, lines: 0, compactions: 0 };
  readonly #options: MessageLogOptions;
  readonly #now: () => number;
  readonly #warn: (line: string) => void;
  #restored: ReplayResult | undefined;
  #hub: Hub | undefined;
  #detach: (() => void)[] = [];
  #fd = -1;
  #pending: string[] = [];
  #waiters: Waiter[] = [];
  /** Clients whose cursor moved since the last batch: one ack line each per batch, not one per delivery. */
  #acked = new Set<Client>();
  #scheduled = false;
  #running = false;
  #compactDue = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #failed: Error | undefined;
  #bytesSince = 0;
  #compactAt: number;
  /** History of rooms that lost their last member, oldest-emptied first. */
  readonly #kept = new Map<string, Room>();

  private constructor(dir: string, options: MessageLogOptions) {
    this.dir = dir;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#warn = options.warn ?? ((line) => process.stderr.write(`${line}\n`));
    this.#compactAt = options.compactMinBytes ?? COMPACT_MIN_BYTES;
    mkdirSync(dir, { recursive: true });
    const restored = replay(readIfThere(join(dir, LOG_FILE)), { maxQueue: options.maxQueue, history: options.history, now: this.#now });
    this.#restored = restored;
    this.lastId = restored.lastId;
    this.loaded = { records: restored.records, setAside: restored.badLines.length, setAsideFile: undefined };
  }

  /** Reads and replays DIR's log (synchronously). A bad line is set aside later, in attach(); it never stops the start. */
  static open(dir: string, options: MessageLogOptions): MessageLog {
    return new MessageLog(dir, options);
  }

  /**
   * Restores the hub (made with `{ lastId: log.lastId }`), sets aside bad
   * lines, rewrites the log compacted, then logs what the hub does.
   */
  attach(hub: Hub): void {
    const restored = this.#restored;
    if (this.#hub || !restored) throw new Error("MessageLog.attach: already attached");
    this.#hub = hub;
    this.#restored = undefined;
    hub.restore(restored.sessions, restored.history);
    const live = new Set(hub.rooms().map((r) => r.name));
    for (const [name, envelopes] of restored.history) if (!live.has(name)) this.#keep(name, envelopes);
    this.#setAside(restored);
    // Start from a compacted file: bounded by --history, and no torn tail for new lines to follow.
    const snapshot = this.#snapshot();
    replaceFileSync(this.dir, LOG_FILE, snapshot);
    this.#fd = openSync(join(this.dir, LOG_FILE), "a");
    this.#compactAt = Math.max(this.#options.compactMinBytes ?? COMPACT_MIN_BYTES, snapshot.length);
    this.#listen(hub);
  }

  /** Resolves once everything accepted so far is on disk; rejects when the log cannot be written. */
  durable(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    // Lines are no longer appended once closed: confirming would be a lie.
    if (this.#closed) return Promise.reject(new Error(`the message log in ${this.dir} is closed`));
    return this.#flushed();
  }

  /** Resolves once everything appended so far is on disk. */
  #flushed(): Promise<void> {
    if (this.#pending.length === 0 && !this.#running) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** Compacts now (tests, operators); resolves once the new file is in place. */
  compact(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    this.#compactDue = true;
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** Kept history of a room that has no members now (the hub forgot it): up to `limit` ids below `before`, newest last. */
  history(room: string, before: number, limit: number): Envelope[] | undefined {
    return this.#kept.get(room)?.history(before, limit);
  }

  /** Writes what is pending, stops logging, closes the file. Sessions stay in the log for the next start. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      for (const off of this.#detach) off();
      await this.#flushed().catch(() => {});
      if (this.#fd >= 0) closeSync(this.#fd);
      this.#fd = -1;
    })();
    return this.#closing;
  }

  #listen(hub: Hub): void {
    const on = (event: string, listener: (...args: any[]) => void): void => {
      // A session that is one connection (TCP) cannot come back after a restart: nothing of it is logged.
      const logged = (...args: any[]): void => {
        if ((args[0] as Partial<Client> | undefined)?.resumable === false) return;
        listener(...args);
      };
      hub.on(event, logged);
      this.#detach.push(() => hub.off(event, logged));
    };
    on("session", (client: Client) => this.#append(sessionStartLine(client)));
    on("session-end", (client: Client) => this.#append(endLine(client)));
    on("room-join", (client: Client, room: string) => this.#append(roomLine("join", client, room)));
    on("room-current", (client: Client, room: string) => this.#append(roomLine("cur", client, room)));
    on("room-leave", (client: Client, room: string) => this.#append(roomLine("left", client, room)));
    on("room", (room: Room) => this.#unkeep(room));
    on("room-end", (room: Room) => this.#keep(room.name, room.history(Number.MAX_SAFE_INTEGER, Infinity)));
    on("message", (envelope: Envelope) => {
      const m = envelope.message;
      // A system answer is logged on "system", which names its one recipient.
      if (m.type === "system") return;
      this.#append(m.type === "private" ? messageLine(envelope, this.#privateRecipients(m)) : messageLine(envelope));
    });
    on("system", (client: Client, envelope: Envelope) => this.#append(messageLine(envelope, [client.key])));
    on("ack", (client: Client) => {
      if (this.#closed || this.#failed) return;
      this.#acked.add(client);
      this.#schedule();
    });
    on("txn", (client: Client, txn: string, id: number, at: number) => this.#append(txnLine(client.key, txn, id, at)));
  }

  /** The two ends of a private message whose sessions are logged (a TCP end is not: it cannot come back). */
  #privateRecipients(m: ChatMessage): string[] {
    const ends = new Set([m.to!.toLowerCase(), m.from.toLowerCase()]);
    return [...ends].filter((key) => this.#hub?.client(key)?.resumable !== false);
  }

  #append(line: string): void {
    if (this.#closed || this.#failed) return;
    this.#pending.push(line);
    this.#schedule();
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

  /** One batch (or compaction) at a time; whatever arrives meanwhile is the next batch. */
  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (!this.#failed && (this.#pending.length > 0 || this.#waiters.length > 0 || this.#acked.size > 0)) {
        this.#takeAcks();
        if (this.#compactDue && !this.#closed) await this.#compact();
        else await this.#writeBatch();
      }
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
    const waiters = this.#waiters;
    this.#pending = [];
    this.#waiters = [];
    if (lines.length > 0) {
      const data = Buffer.from(lines.join("\n") + "\n");
      try {
        await appendAll(this.#fd, data);
        await dataSync(this.#fd);
      } catch (error) {
        return this.#fail(error as Error, waiters);
      }
      this.#bytesSince += data.length;
      this.stats.batches++;
      this.stats.lines += lines.length;
      if (this.#bytesSince > this.#compactAt) this.#compactDue = true;
    }
    for (const waiter of waiters) waiter.resolve();
  }

  /**
   * The hub's state now replaces the log. Lines still pending describe changes
   * the snapshot already holds: they are dropped, and their waiters are
   * answered once the snapshot is durable. Posts go on meanwhile; their lines
   * wait for the next batch, which goes to the new file.
   */
  async #compact(): Promise<void> {
    this.#compactDue = false;
    const data = this.#snapshot();
    const covered = this.#pending;
    const waiters = this.#waiters;
    this.#pending = [];
    this.#waiters = [];
    const path = join(this.dir, LOG_FILE);
    try {
      await writeSynced(`${path}.tmp`, data);
    } catch (error) {
      // The old log stands: give it back what it lacks, and try again only after as much growth again.
      this.#pending = [...covered, ...this.#pending];
      this.#waiters = [...waiters, ...this.#waiters];
      this.#compactAt = Math.max(this.#compactAt, this.#bytesSince) * 2;
      this.#warn(`pollchat: data-dir: compacting ${path} failed (${(error as Error).message}); the log keeps growing meanwhile`);
      return;
    }
    try {
      await rename(`${path}.tmp`, path);
      await syncDir(this.dir);
      const old = this.#fd;
      this.#fd = openSync(path, "a");
      closeSync(old);
    } catch (error) {
      return this.#fail(error as Error, waiters);
    }
    this.stats.compactions++;
    this.#bytesSince = 0;
    this.#compactAt = Math.max(this.#options.compactMinBytes ?? COMPACT_MIN_BYTES, data.length);
    for (const waiter of waiters) waiter.resolve();
  }

  #snapshot(): Buffer {
    const kept = [...this.#kept.values()].map((room) => room.history(Number.MAX_SAFE_INTEGER, Infinity));
    return Buffer.from(snapshotLines(this.#hub!, kept, this.#now()).join("\n") + "\n");
  }

  /** A failed write or sync cannot be trusted to be retried (the kernel may have dropped the pages): stop logging, refuse posts. */
  #fail(error: Error, waiters: Waiter[]): void {
    this.#failed = new Error(`the message log in ${this.dir} cannot be written: ${error.message}`);
    this.#warn(`pollchat: data-dir: ${this.#failed.message}; posts are refused until a restart`);
    for (const waiter of [...waiters, ...this.#waiters]) waiter.reject(this.#failed);
    this.#waiters = [];
    this.#pending = [];
  }

  #keep(name: string, envelopes: readonly Envelope[]): void {
    if (envelopes.length === 0) return;
    const room = new Room(name, this.#options.history);
    for (const envelope of envelopes) room.remember(envelope);
    this.#kept.delete(name);
    this.#kept.set(name, room);
    if (this.#kept.size > MAX_KEPT_ROOMS) this.#kept.delete(this.#kept.keys().next().value!);
  }

  /** A room with kept history comes back: its history goes with it. */
  #unkeep(room: Room): void {
    const kept = this.#kept.get(room.name);
    if (!kept) return;
    for (const envelope of kept.history(Number.MAX_SAFE_INTEGER, Infinity)) room.remember(envelope);
    this.#kept.delete(room.name);
  }

  /** Lines that were no record are copied, byte for byte, to a file of their own before the log is rewritten. */
  #setAside(restored: ReplayResult): void {
    const path = join(this.dir, LOG_FILE);
    if (restored.badLines.length > 0) {
      // Time and pid: two starts never pick the same name, and none replaces an earlier set-aside file.
      const name = `${LOG_FILE}.set-aside-${this.#now()}-${process.pid}`;
      const data = Buffer.concat(restored.badLines.flatMap((line) => [line, Buffer.from("\n")]));
      writeNewFileSync(this.dir, name, data);
      this.loaded.setAsideFile = join(this.dir, name);
      const lines = restored.badLines.length;
      this.#warn(
        `pollchat: data-dir: set aside ${lines} bad line${lines === 1 ? "" : "s"} (${data.length} bytes) of ${path} ` +
          `into ${this.loaded.setAsideFile}; loaded ${restored.records} records`,
      );
    }
    if (restored.unmatched > 0) {
      this.#warn(`pollchat: data-dir: skipped ${restored.unmatched} records of ${path} naming a session or message it does not hold`);
    }
  }
}


function readIfThere(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
    throw error;
  }
}
