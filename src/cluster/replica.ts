import type { Session } from "../session.js";
import { ChatError } from "../errors.js";
import type { Hub } from "../hub.js";
import { applyCommand, outcomeFromState, type Outcome } from "./apply-command.js";
import { decodeRecord, encodeRecord, type Command } from "./commands.js";
import type { RecordClock } from "./record-clock.js";
import { AppendBatch } from "./append-batch.js";
import { CatchUpBarriers } from "./catch-up-barriers.js";
import { DoubtChecks } from "./doubt-checks.js";
import { PendingRequests } from "./pending-requests.js";
import { refusal, unavailable } from "./replica-refusals.js";
import { retryWhile } from "./retry-while.js";
import { TipReads } from "./tip-reads.js";
import { TokenMarks } from "./token-marks.js";
import { PollMarks } from "./poll-marks.js";
import { compareIds, msOf, START, type LogEntry, type SharedLog } from "./shared-log.js";

export { fateUnknown, RETRY_AFTER_S, unavailable } from "./replica-refusals.js";

/** A request whose record was appended and not yet applied is answered 503 after this long (spec §10). */
export const FATE_DEADLINE_MS = 10_000;
/**
 * The share of it an append has to reach the store: refused by the store past it, so that a tip
 * read in the rest tells a request's fate for good (pending-requests.ts), before the fate deadline.
 */
const APPEND_WINDOW = 0.8;
/** Entries read at once, and how long one read waits for the first. */
const READ_BATCH = 1000;
const READ_BLOCK_MS = 2000;

/**
 * This process's hub as a replica of the shared log (spec §10): it appends the
 * commands of its requests (one batch per turn of the event loop), reads the
 * log in order, its own entries included, applies each one to the hub at the
 * entry's time, and answers a request with the outcome its own entry had here.
 * Acknowledgements made here (polls) are appended too, batched (append-batch.ts), so the
 * other replicas trim their copies of the queues.
 */
export class Replica {
  /** Tells this process's entries from the others'. */
  readonly origin: string;
  readonly #hub: Hub;
  readonly #log: SharedLog;
  readonly #clock: RecordClock;
  readonly #warn: (line: string) => void;
  #position = START;
  /** The log position each session was made at: names one session among those a name has had. */
  readonly #madeAt = new WeakMap<Session, string>();
  #applying: string | undefined;
  #seq = 0;
  readonly #pending: PendingRequests;
  readonly #batch: AppendBatch;
  readonly #barriers = new CatchUpBarriers();
  #closed = false;
  #tailing: Promise<void> | undefined;
  /** Bumped by startOver() and resync(): a read or tip asked before it is of a log this replica no longer follows from there. */
  #generation = 0;
  /** After startOver() or resync(): the snapshot being loaded; reading waits for it. */
  #restoring: Promise<void> = Promise.resolve();
  #loading = false;
  /** Requests in doubt after a broken append (or a resync), answered once the log tells (doubt-checks.ts). */
  readonly #doubts: DoubtChecks;
  /** The newest position known in the log (read or asked), for the lag on /metrics. */
  #tipSeen = START;
  readonly #fateDeadlineMs: number;
  readonly #tips: TipReads;
  readonly #vouchedOnly: boolean;
  readonly stats = { applied: 0, appended: 0, skipped: 0 };
  /** New sessions' tokens, signed with where this replica stands; an unknown one checked against the log. */
  readonly tokens: TokenMarks;
  /** Poll answers' marks, and the positions applied lately to judge a presented one by (poll-marks.ts). */
  readonly marks: PollMarks;

  constructor(hub: Hub, log: SharedLog, clock: RecordClock, opts: { origin: string; warn: (line: string) => void; position?: string; fateDeadlineMs?: number; vouchedOnly?: boolean }) {
    this.#hub = hub;
    this.#log = log;
    this.#clock = clock;
    this.origin = opts.origin;
    this.#warn = opts.warn;
    this.#position = opts.position ?? START;
    this.#fateDeadlineMs = opts.fateDeadlineMs ?? FATE_DEADLINE_MS;
    this.#vouchedOnly = opts.vouchedOnly ?? false;
    this.#tips = new TipReads(() => log.tip());
    // A session's token is signed with the position it was made at: the same on every replica and at every join.
    this.tokens = new TokenMarks(log, (token) => this.madeAt(hub.sessionByToken(token)));
    this.marks = new PollMarks(this.tokens, log, this);
    this.#pending = new PendingRequests(this.#fateDeadlineMs, refusal, (deadline) => log.passed(deadline));
    this.#doubts = new DoubtChecks(this.#pending, () => this.catchUp());
    this.#batch = new AppendBatch(
      log,
      {
        sent: (seqs, deadline) => this.#pending.sent(seqs, deadline),
        stored: (seqs, records) => {
          this.stats.appended += records;
          this.#pending.stored(seqs);
        },
        failed: (seqs, error) => this.#doubts.failed(seqs, error),
      },
      Math.floor(this.#fateDeadlineMs * APPEND_WINDOW),
    );
    hub.observe({
      record: (record) => {
        if (this.#applying !== undefined) {
          if (record.kind === "session") this.#madeAt.set(record.session, this.#applying);
          return;
        }
        // Made here, outside any entry: a poll moved a queue.
        if (record.kind === "ack") this.#batch.acked(record.session);
      },
    });
  }

  /** The last position applied. */
  get position(): string {
    return this.#position;
  }

  /** How far behind the newest entry known, in ms of the store's clock. */
  get lagMs(): number {
    return Math.max(0, msOf(this.#tipSeen) - msOf(this.#position));
  }

  madeAt(client: Session | undefined): string {
    return (client && this.#madeAt.get(client)) ?? START;
  }

  /** A session's position, as a snapshot brings it back. */
  setMadeAt(client: Session, position: string): void {
    this.#madeAt.set(client, position);
  }

  /** Starts reading the log after `from` (a snapshot's position); resolves once caught up with it (before the process listens). */
  async start(from?: string): Promise<void> {
    if (from !== undefined && this.#tailing === undefined) this.#position = from;
    if (this.#tailing === undefined) this.marks.window.reset(this.#position);
    this.#tailing ??= this.#tail();
    const generation = this.#generation;
    // Redis lost its data meanwhile: this replica started over in the new epoch, which it reads from here on.
    await this.catchUp().catch((error: unknown) => {
      if (generation === this.#generation) throw error;
    });
  }

  /**
   * Appends a command and resolves with `capture` of its outcome here, run the
   * moment it is applied (the hub as that entry left it). Rejects with what the
   * apply threw, or 503 when the store cannot be reached (at once) or the fate
   * of the entry is not known within FATE_DEADLINE_MS. One the store has is
   * answered once applied here, however late: a 503 would disown a delivered post.
   */
  submit<R>(command: Command, capture: (outcome: Outcome) => R): Promise<R> {
    if (this.#closed || !this.#log.connected) return Promise.reject(unavailable());
    const q = ++this.#seq;
    const answered = this.#pending.add(q, capture, () => outcomeFromState(this.#hub, command));
    this.#batch.add(encodeRecord({ c: command, o: this.origin, q }), q);
    return answered;
  }

  /**
   * The store lost its data and this process joined its new epoch, its hub made empty
   * (cluster.ts). Requests waiting for an entry of the old log get 503 (never an id for
   * what Redis does not have): final for what never left this process, else "may have taken
   * effect", since another process may have applied and delivered it before the loss; reading starts again at the new log's start, or after the
   * snapshot `restore` loads; this process's first append is `floor`, its last id.
   */
  startOver(floor: number, restore: () => Promise<string | undefined>): void {
    this.#pending.refuseAll();
    this.#batch.clear();
    this.#reload(restore);
    this.#batch.floor(floor);
  }

  /**
   * This replica fell behind the log's trim (cluster.ts), its hub made empty: it reads on after
   * the newest snapshot `restore` loads. Same epoch: what is being appended stays. A request
   * whose entry is below that snapshot will never have its outcome here: once caught up, it is
   * answered from the state where that tells (outcomeFromState), else 503; one above it is answered as ever.
   */
  resync(restore: () => Promise<string | undefined>): void {
    this.#reload(restore, () => {
      // Stored by now: below the snapshot (never applied here) or above it (applied before the catch-up ends).
      // Stored later: above it.
      this.#doubts.doubtStored();
    });
  }

  /** Where the queues acknowledged here stand, appended now (cluster.ts, before a resync replaces the sessions). */
  ackNow(): void {
    this.#batch.ackNow();
  }

  /** Reading starts again after the snapshot `restore` loads (at the log's start if there is none). */
  #reload(restore: () => Promise<string | undefined>, loaded?: () => void): void {
    this.#generation++;
    this.#doubts.cancel();
    this.#position = START;
    this.#tipSeen = START;
    this.marks.window.reset(START);
    const generation = this.#generation;
    // Not read (Redis gone again): tried again, never the log from its start over an empty hub (it may be trimmed).
    this.#loading = true;
    this.#restoring = retryWhile(restore, () => generation === this.#generation && !this.#closed).then((from) => {
      if (generation !== this.#generation) return;
      if (from !== undefined) this.#position = from;
      this.marks.window.reset(this.#position);
      this.#loading = false;
      loaded?.();
    });
    // Waiting for a tip of the log read before: 503, to be asked again. Not done: what the request presents
    // (a token, a cursor) may be of a new epoch, from a process that reset first, and this one has not read it yet.
    this.#barriers.failAll(unavailable);
  }

  /** While starting over or resyncing: the snapshot not loaded yet (the saver saves none meanwhile, cluster.ts resyncs no second time). */
  get restoring(): boolean {
    return this.#loading;
  }

  /** Resolves once everything in the log when called is applied here: a process behind what a request presents catches up first (callers share reads of the tip: tip-reads.ts). */
  async catchUp(timeoutMs = this.#fateDeadlineMs): Promise<void> {
    const generation = this.#generation;
    const tip = await this.#tips.tip().catch(() => {
      throw unavailable();
    });
    // The old log's tip: that log is gone, and this replica has not read the new one yet (as above: 503).
    if (generation !== this.#generation) throw unavailable();
    this.#sawTip(tip);
    if (compareIds(this.#position, tip) >= 0) return;
    await this.#barriers.wait(tip, timeoutMs, unavailable);
  }

  /** Stops reading and appending; requests still waiting get 503 (saying their fate is unknown once their append left). */
  close(): void {
    this.#closed = true;
    this.#doubts.close();
    this.#batch.close();
    this.#pending.refuseAll();
  }

  async #tail(): Promise<void> {
    let backoff = 50;
    while (!this.#closed) {
      let entries: LogEntry[];
      const restoring = this.#restoring;
      await restoring; // after startOver() or resync(), the snapshot is loaded before anything is read
      if (restoring !== this.#restoring) continue; // another one meanwhile
      const generation = this.#generation;
      try {
        entries = await this.#log.read(this.#position, READ_BATCH, READ_BLOCK_MS);
        backoff = 50;
      } catch {
        if (this.#closed) return;
        await new Promise((resolve) => setTimeout(resolve, backoff).unref());
        backoff = Math.min(backoff * 2, 1000);
        continue;
      }
      if (this.#closed) return;
      // Read after a position of the old epoch's log: read the new one from its start.
      if (generation !== this.#generation) continue;
      this.#applyAll(entries);
    }
  }

  #applyAll(entries: readonly LogEntry[]): void {
    for (const entry of entries) {
      if (compareIds(entry.id, this.#position) <= 0) continue;
      this.#apply(entry);
    }
    if (entries.length > 0) this.#sawTip(entries.at(-1)!.id);
    this.#barriers.release(this.#position);
  }

  #apply(entry: LogEntry): void {
    const record = decodeRecord(entry.data);
    let outcome: Outcome;
    let error: unknown;
    this.#clock.at = msOf(entry.id);
    this.#applying = entry.id;
    try {
      if (record) outcome = applyCommand({ hub: this.#hub, madeAt: (client) => this.madeAt(client), vouchedOnly: this.#vouchedOnly }, record.c);
      else this.stats.skipped++;
    } catch (thrown) {
      error = thrown;
      if (!(thrown instanceof ChatError)) this.#warn(`pollchat: redis: applying entry ${entry.id} failed: ${String(thrown)}`);
    } finally {
      this.#clock.at = undefined;
      this.#applying = undefined;
    }
    this.#position = entry.id;
    this.marks.window.applied(entry.id);
    this.stats.applied++;
    if (record?.o === this.origin && record.q !== undefined) this.#pending.settle(record.q, outcome, error, error === undefined);
  }

  #sawTip(tip: string): void {
    if (compareIds(tip, this.#tipSeen) > 0) this.#tipSeen = tip;
  }
}
