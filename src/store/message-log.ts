import { openSync } from "node:fs";
import { join } from "node:path";
import { DEFAULTS } from "../config.js";
import { ChatError } from "../errors.js";
import type { Hub } from "../hub.js";
import type { ApplyMessage, Journal, JournalRecord, MessageRecord } from "../journal.js";
import { checkFiles, prepareDataDir } from "./data-dir.js";
import { DirLock, LOCK_FILE } from "./dir-lock.js";
import { replaceFileSync } from "./files.js";
import { LineChunks } from "./line-chunks.js";
import { LogWriter } from "./log-writer.js";
import { messageLine, sessionRecordLine } from "./records.js";
import type { ReplayResult } from "./replay.js";
import { maxLineBytes, restoreLog } from "./restore.js";
import { SetAsideFile } from "./set-aside.js";
import { writeSnapshot } from "./snapshot.js";
import { removeMadeDirs, startError } from "./start-errors.js";

export const LOG_FILE = "pollchat.log";
/** Appended bytes before a compaction is due (then at least as many as the last snapshot held). */
const COMPACT_MIN_BYTES = 8 * 1024 * 1024; // 8 MiB
/** What a refused writer is told to wait, in seconds: a failed log is written again only after a restart. */
const RETRY_AFTER_S = 30;

export interface MessageLogOptions {
  maxQueue: number;
  /** Bytes one queue holds, and all together (--max-queue-bytes, --max-queued-bytes), at restore too. @default the server's defaults */
  maxQueueBytes?: number;
  maxQueuedBytes?: number;
  /** Messages of history kept per room (--history). */
  history: number;
  /** Bytes of history in all rooms (--max-history-bytes), at restore too. @default the server's default */
  maxHistoryBytes?: number;
  /** These bound the length of a line at restore (a longer one is garbage). @default the server's defaults */
  maxMessage?: number;
  maxSessions?: number;
  maxRoomsPerSession?: number;
  /** @default 8 MiB */
  compactMinBytes?: number;
  now?: () => number;
  /** Where one-line reports go (lines set aside, failed writes). @default stderr */
  warn?: (line: string) => void;
}

/** What open() found and holds, for the constructor. */
interface StartState {
  lock: DirLock;
  /** The first directory mkdir made (removed again if the start fails). */
  made: string | undefined;
  setAside: SetAsideFile;
  restored: ReplayResult;
}

/**
 * --data-dir: an append-only log of what the hub accepted, restored at start.
 *
 * The hub's journal (journal.ts) on disk: each record becomes one line
 * (records.ts) for the writer (log-writer.ts: batches, group commit,
 * compaction). A message is applied only once the batch holding its line is
 * durable, and never if that write fails; from then on nothing that would
 * write is accepted (checkWritable(): 503). durable() resolves once all that
 * was accepted before the call is on disk.
 *
 * One server per directory (dir-lock.ts). Restore is synchronous and in
 * bounded memory: open() reads the file in chunks and replays it, attach()
 * hands the result to the hub and rewrites the file compacted. While serving,
 * the log is compacted again whenever it has grown by as much as its last
 * snapshot (and at least compactMinBytes).
 */
export class MessageLog implements Journal {
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
  readonly #lock: DirLock;
  readonly #made: string | undefined;
  readonly #setAside: SetAsideFile;
  #restored: ReplayResult | undefined;
  #hub: Hub | undefined;
  #writer: LogWriter | undefined;
  /** The hub's: puts a durable message into history and queues. */
  #apply: ApplyMessage | undefined;
  #closing: Promise<void> | undefined;

  private constructor(dir: string, options: MessageLogOptions, start: StartState) {
    this.dir = dir;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#warn = options.warn ?? ((line) => process.stderr.write(`${line}\n`));
    this.#lock = start.lock;
    this.#made = start.made;
    this.#setAside = start.setAside;
    this.#restored = start.restored;
    this.lastId = start.restored.lastId;
    const { lines } = start.setAside;
    this.loaded = { records: start.restored.records, setAside: lines, setAsideFile: lines > 0 ? start.setAside.path : undefined };
  }

  /**
   * Locks DIR, reads and replays its log (synchronously, in bounded memory);
   * bad lines go to a set-aside file, they never stop the start. Throws an
   * Error of one line when DIR cannot be used (another server holds it, a full
   * disk), leaving nothing behind.
   */
  static open(dir: string, options: MessageLogOptions): MessageLog {
    const now = options.now ?? Date.now;
    // Time and pid: two starts never pick the same name, and none replaces an earlier set-aside file.
    const setAside = new SetAsideFile(dir, `${LOG_FILE}.set-aside-${now()}-${process.pid}`);
    let made: string | undefined;
    let lock: DirLock | undefined;
    try {
      made = prepareDataDir(dir);
      checkFiles(dir, [LOCK_FILE, LOG_FILE, `${LOG_FILE}.tmp`]);
      lock = DirLock.acquire(dir, { warn: options.warn });
      const restored = restoreLog(join(dir, LOG_FILE), setAside, {
        maxQueue: options.maxQueue,
        maxQueueBytes: options.maxQueueBytes ?? DEFAULTS.maxQueueBytes,
        maxQueuedBytes: options.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes,
        history: options.history,
        maxHistoryBytes: options.maxHistoryBytes ?? DEFAULTS.maxHistoryBytes,
        now,
        tick: () => lock?.refreshIfDue(),
        maxLine: maxLineBytes({
          maxQueue: options.maxQueue,
          maxMessage: options.maxMessage ?? DEFAULTS.maxMessage,
          maxSessions: options.maxSessions ?? DEFAULTS.maxSessions,
          maxRoomsPerSession: options.maxRoomsPerSession ?? DEFAULTS.maxRoomsPerSession,
        }),
      });
      return new MessageLog(dir, options, { lock, made, setAside, restored });
    } catch (error) {
      lock?.release();
      removeMadeDirs(dir, made);
      throw startError(dir, error);
    }
  }

  /**
   * Restores the hub (made with `{ lastId: log.lastId }`), rewrites the log
   * compacted, then is the hub's journal: what it accepts is applied once durable.
   */
  attach(hub: Hub): void {
    const restored = this.#restored;
    if (this.#hub || !restored) throw new Error("MessageLog.attach: already attached");
    this.#hub = hub;
    this.#restored = undefined;
    hub.restore(restored.sessions, restored.history, restored.txns);
    const path = join(this.dir, LOG_FILE);
    try {
      // Start from a compacted file: bounded by --history, and no torn tail for new lines to follow.
      const snapshot = this.#snapshot([]);
      replaceFileSync(this.dir, LOG_FILE, snapshot.chunks);
      this.#writer = new LogWriter({
        path,
        dir: this.dir,
        fd: openSync(path, "a"),
        size: snapshot.bytes,
        compactMinBytes: this.#options.compactMinBytes ?? COMPACT_MIN_BYTES,
        warn: this.#warn,
        snapshot: (held) => this.#snapshot(held),
        apply: (record) => this.#apply?.(record),
        stats: this.stats,
      });
    } catch (error) {
      this.#setAside.discard();
      this.#lock.release();
      removeMadeDirs(this.dir, this.#made);
      throw startError(this.dir, error);
    }
    this.#reportRestore(restored);
    hub.useJournal(this);
  }

  /** Why nothing can be written now (the log failed), or undefined when all is well: /healthz says it. */
  get failure(): string | undefined {
    return this.#writer?.failure;
  }

  checkWritable(): void {
    if (this.failure !== undefined) throw unavailable();
  }

  register(apply: ApplyMessage): void {
    this.#apply = apply;
  }

  /** One line a record; a message is held for its batch (dropped by a failed or closed writer, which writes its line neither: it reaches no one). */
  append(record: JournalRecord): void {
    const writer = this.#writer;
    if (!writer) return;
    switch (record.kind) {
      case "message":
        // Not the room's and for no one who can come back (a command answer to a TCP session): nothing to restore, no line.
        if (record.keys === undefined || record.keys.length > 0) writer.append(messageLine(record.envelope, record.keys));
        writer.hold(record);
        return;
      case "ack":
        // Where the session's queue stands is written once per batch, however often it moved.
        writer.ack(record.session);
        return;
      default:
        writer.append(sessionRecordLine(record));
    }
  }

  /** Resolves once everything accepted so far is on disk (and delivered); rejects (503) when the log cannot be written. */
  durable(): Promise<void> {
    const writer = this.#writer;
    if (!writer) return Promise.resolve();
    if (writer.failure !== undefined) return Promise.reject(unavailable());
    // Lines are no longer appended once closed: confirming would be a lie.
    if (writer.closed) return Promise.reject(this.#closedError());
    return writer.flushed().catch((error: unknown) => {
      throw writer.failure !== undefined ? unavailable() : error;
    });
  }

  /** Compacts now (tests, operators); resolves once the new file is in place, rejects if it could not be written (the old one stands). */
  compact(): Promise<void> {
    const writer = this.#writer;
    if (!writer) return Promise.reject(new Error("MessageLog.compact: not attached"));
    if (writer.failure !== undefined) return Promise.reject(unavailable());
    if (writer.closed) return Promise.reject(this.#closedError());
    return writer.compact();
  }

  /** Writes what is pending, stops logging, closes the file, gives DIR up. Sessions stay in the log for the next start. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#writer?.close(this.#closedError());
      this.#lock.release();
    })();
    return this.#closing;
  }

  #closedError(): Error {
    return new Error(`the message log in ${this.dir} is closed`);
  }

  /** The state as lines, in Buffers of at most 1 MiB, built synchronously: one consistent moment of the hub. */
  #snapshot(held: readonly MessageRecord[]): LineChunks {
    const chunks = new LineChunks();
    writeSnapshot(chunks, this.#hub!, this.#now(), held);
    chunks.end();
    return chunks;
  }

  #reportRestore(restored: ReplayResult): void {
    const path = join(this.dir, LOG_FILE);
    const { lines, bytes } = this.#setAside;
    if (lines > 0) {
      this.#warn(
        `pollchat: data-dir: set aside ${lines} bad line${lines === 1 ? "" : "s"} (${bytes} bytes) of ${path} ` +
          `into ${this.#setAside.path}; loaded ${restored.records} records`,
      );
    }
    if (restored.unmatched > 0) {
      this.#warn(`pollchat: data-dir: skipped ${restored.unmatched} records of ${path} naming a session or message it does not hold`);
    }
  }
}

function unavailable(): ChatError {
  return new ChatError("store_unavailable", undefined, { retryAfter: RETRY_AFTER_S });
}
