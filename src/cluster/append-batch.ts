import type { Session } from "../session.js";
import { encodeRecord } from "./commands.js";
import type { SharedLog } from "./shared-log.js";

/**
 * Acknowledgements reach the other replicas at most this often: a poll with a
 * cursor carries its own (any replica trims by it), so the others need them only
 * to bound their copies and for clients without a cursor, who may get a message
 * twice when they hop between processes (never lose one). One entry per process
 * per turn cost every replica a read and an apply per poll answered anywhere.
 */
const ACK_EVERY_MS = 200;
/** A floor not known to be stored is appended again after this long. */
const FLOOR_RETRY_MS = 500;

/** What became of one append: `seqs` are the request numbers of its commands, in order. */
export interface AppendOutcome {
  /** On its way, refused by the store past `deadline` (store's clock: shared-log.ts append). */
  sent(seqs: readonly number[], deadline: number): void;
  stored(seqs: readonly number[], records: number): void;
  failed(seqs: readonly number[], error: unknown): void;
}

/**
 * What this process appends to the shared log (replica.ts), one append per turn
 * of the event loop: the commands of its requests in the order they came, then
 * where the queues acknowledged here stand (batched: ACK_EVERY_MS), and in a new
 * epoch this process's floor before anything else (commands.ts floor).
 */
export class AppendBatch {
  readonly #log: SharedLog;
  readonly #outcome: AppendOutcome;
  readonly #windowMs: number;
  #pending: string[] = [];
  #seqs: number[] = [];
  readonly #acked = new Set<Session>();
  #ackTimer: NodeJS.Timeout | undefined;
  #scheduled = false;
  /** Appended first, with every batch until one is stored (applying it twice changes nothing). */
  #floor: number | undefined;
  #floorRetry: NodeJS.Timeout | undefined;
  #closed = false;

  /** `windowMs`: how long an append may take to reach the store; past it the store refuses it. */
  constructor(log: SharedLog, outcome: AppendOutcome, windowMs: number) {
    this.#log = log;
    this.#outcome = outcome;
    this.#windowMs = windowMs;
  }

  /** A request's command, numbered `q`, in this turn's append. */
  add(record: string, q: number): void {
    this.#pending.push(record);
    this.#seqs.push(q);
    this.#schedule();
  }

  /** A poll here moved this session's queue: the others hear it within ACK_EVERY_MS. */
  acked(client: Session): void {
    this.#acked.add(client);
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = undefined;
      this.#schedule();
    }, ACK_EVERY_MS).unref();
  }

  /** Where the queues acknowledged here stand, into this turn's append now, while their sessions are still the hub's (a resync replaces them). */
  ackNow(): void {
    const acks = this.#takeAcks();
    if (acks === undefined) return;
    this.#pending.push(acks);
    this.#schedule();
  }

  /** The first thing appended from now on, until stored. */
  floor(id: number): void {
    // Two resets before one was stored: the higher floor goes (cluster.ts keeps the max too).
    this.#floor = Math.max(this.#floor ?? 0, id);
    this.#schedule();
  }

  /** Forgets what is not appended yet (the epoch it was for is gone); a floor stays. */
  clear(): void {
    this.#pending = [];
    this.#seqs = [];
    this.#acked.clear();
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  close(): void {
    this.#closed = true;
    this.clear();
    clearTimeout(this.#floorRetry);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /** One append for everything this turn made: its commands, then where the queues acknowledged here stand. */
  #flush(): void {
    const records = this.#pending;
    const seqs = this.#seqs;
    this.#pending = [];
    this.#seqs = [];
    const acks = this.#takeAcks();
    if (acks !== undefined) records.push(acks);
    const floor = this.#floor;
    if (floor !== undefined) records.unshift(encodeRecord({ c: { t: "floor", f: floor } }));
    if (records.length === 0 || this.#closed) return;
    const deadline = this.#log.deadline(this.#windowMs);
    this.#outcome.sent(seqs, deadline);
    this.#log.append(records, deadline).then(
      () => {
        if (this.#floor === floor) this.#floor = undefined;
        this.#outcome.stored(seqs, records.length);
      },
      (error: unknown) => {
        if (floor !== undefined) this.#retryFloor();
        this.#outcome.failed(seqs, error);
      },
    );
  }

  /** One record of where the queues acknowledged here stand (none for sessions ended meanwhile: a new epoch's reset). */
  #takeAcks(): string | undefined {
    const acks: [string, number][] = [];
    for (const client of this.#acked) if (!client.ended) acks.push([client.key, client.queue.since]);
    this.#acked.clear();
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    return acks.length > 0 ? encodeRecord({ c: { t: "acks", a: acks } }) : undefined;
  }

  /** Again soon, with or without requests to carry it, once the store answers. */
  #retryFloor(): void {
    clearTimeout(this.#floorRetry);
    this.#floorRetry = setTimeout(() => {
      if (this.#floor === undefined || this.#closed) return;
      if (this.#log.connected) this.#schedule();
      else this.#retryFloor();
    }, FLOOR_RETRY_MS).unref();
  }
}
