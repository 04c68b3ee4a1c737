import { historyBytes } from "./history-budget.js";
import { Envelope, type ChatMessage } from "./message.js";
import type { BudgetedQueue, QueueAccount } from "./queue-budget.js";
import type { Session } from "./session.js";

/**
 * One client's undelivered messages, in id order (spec §5).
 *
 * Invariant: every message for this client with an id above `since` is in
 * `entries` (or counted in the gap entry at its head). A message leaves only
 * through ack(): a cursor from a later poll, or a completely written answer,
 * or into the gap: past --max-queue entries or --max-queue-bytes (the newest
 * always stays), or when the budget of all queues drops it (queue-budget.ts).
 */
export class SessionQueue implements BudgetedQueue {
  readonly #max: number;
  readonly #maxBytes: number;
  #entries: Envelope[] = [];
  /** What its messages count (historyBytes), gap entries aside. */
  #bytes = 0;
  heapSlot = -1;
  account: QueueAccount | undefined;
  budgetKey = "";
  /** The session that reads it: named when the budget drops one of its messages. */
  holder: Session | undefined;
  #since: number;
  #now: () => number;
  /** Set by a late entry (see #takeLate): the next ack that would pass it stops just below it. */
  #ackFloor: number | undefined;

  /** `maxBytes`: --max-queue-bytes (no bound when left out: a copy a snapshot makes). */
  constructor(max: number, since: number, now: () => number = Date.now, maxBytes = Infinity) {
    this.#max = max;
    this.#maxBytes = maxBytes;
    this.#since = since;
    this.#now = now;
  }

  /** Highest id this client has acknowledged or can no longer get. */
  get since(): number {
    return this.#since;
  }

  get length(): number {
    return this.#entries.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The id of its oldest message (not a gap); Infinity when it holds none. */
  get oldestId(): number {
    const entries = this.#entries;
    const first = entries[0]?.message.type === "gap" ? entries[1] : entries[0];
    return first?.id ?? Infinity;
  }

  get lastId(): number {
    return this.#entries.length > 0 ? this.#entries[this.#entries.length - 1]!.id : this.#since;
  }

  /**
   * Adds a message; past --max-queue or --max-queue-bytes the oldest go into the
   * gap entry (the newest stays, however long), then the budget of all queues
   * has its say. Returns how many of this queue's went into the gap here.
   */
  push(envelope: Envelope): number {
    const entries = this.#entries;
    const before = this.#bytes;
    // A gap's id only marks its place: a rebuilt queue (restore, snapshot) puts one back at `since`.
    if (envelope.id <= this.#since && envelope.message.type !== "gap") this.#takeLate(envelope);
    else entries.push(envelope);
    if (envelope.message.type !== "gap") this.#bytes += historyBytes(envelope);
    let dropped = 0;
    while (this.#messages > this.#max || (this.#bytes > this.#maxBytes && this.#messages > 1)) {
      this.#dropHead();
      dropped++;
    }
    const account = this.account;
    if (account !== undefined) {
      account.budget.changed(account, this, this.#bytes - before);
      account.budget.enforce(account);
    }
    return dropped;
  }

  /** Its oldest message goes into the gap (the budget of all queues asks); returns the bytes freed. */
  dropOldest(): number {
    if (this.#messages === 0) return 0;
    const freed = this.#dropHead();
    const account = this.account;
    if (account !== undefined) account.budget.changed(account, this, -freed);
    return freed;
  }

  /** Messages queued, the gap entry aside. */
  get #messages(): number {
    return this.#entries.length - (this.#entries[0]?.message.type === "gap" ? 1 : 0);
  }

  /** The oldest message into the gap entry; returns its bytes. */
  #dropHead(): number {
    const entries = this.#entries;
    const head = entries[0]!;
    const gapAtHead = head.message.type === "gap";
    // The gap entry takes the dropped message's slot, so nothing moves: a splice
    // from index 1 copied the whole queue on every message to a full one.
    // (shift() is cheap: V8 trims a long array at its start instead of copying it.)
    if (gapAtHead) entries.shift();
    const bytes = historyBytes(entries[0]!);
    this.#bytes -= bytes;
    entries[0] = this.#gap(entries[0]!.id, 1, gapAtHead ? head : undefined);
    return bytes;
  }

  /** Drops everything with id <= upTo: the client has it. */
  ack(upTo: number): void {
    if (this.#ackFloor !== undefined && upTo > this.#ackFloor) {
      upTo = this.#ackFloor;
      this.#ackFloor = undefined;
    }
    let n = 0;
    let freed = 0;
    while (n < this.#entries.length && this.#entries[n]!.id <= upTo) {
      const entry = this.#entries[n++]!;
      if (entry.message.type !== "gap") freed += historyBytes(entry);
    }
    if (n > 0) this.#entries.splice(0, n);
    if (upTo > this.#since) this.#since = upTo;
    this.#bytes -= freed;
    const account = this.account;
    if (account !== undefined && n > 0) account.budget.changed(account, this, -freed);
  }

  /**
   * A client asks to resume after `cursor`. What it missed below `since` is
   * gone; it gets a gap entry first instead of silence (spec §5). Cursor 0
   * means "nothing seen yet" and asks for nothing old.
   */
  resumeFrom(cursor: number): void {
    if (cursor > 0 && cursor < this.#since) {
      this.#addGap(this.#since, null);
    }
    this.ack(cursor);
  }

  /** The id `back` entries before the entry `id` (`id` itself for 0); `since` when there are not that many. */
  idBefore(id: number, back: number): number {
    if (back === 0) return id;
    let i = this.#entries.length - 1;
    while (i >= 0 && this.#entries[i]!.id > id) i--;
    return i - back >= 0 ? this.#entries[i - back]!.id : this.#since;
  }

  /** The entries newer than `id`, oldest first (a copy, found from the newest end: a stream asks for what it has not written). */
  after(id: number): Envelope[] {
    let i = this.#entries.length;
    while (i > 0 && this.#entries[i - 1]!.id > id) i--;
    return this.#entries.slice(i);
  }

  /** The entries to send now, oldest first (a copy: later pushes do not change an answer being written). */
  peek(): Envelope[] {
    return this.#entries.slice();
  }

  /**
   * A message at or below `since`: the client acknowledged past it before it
   * arrived. The hub tells no cursor and takes no acknowledgement past what it
   * has delivered, so only a bug elsewhere does this; then the message must not
   * be swallowed unseen by the next ack, which would carry the cursor the client
   * was told before it arrived. So it goes in at its place by id, `since` falls
   * back below it, and the next ack that would pass it stops just below it: the
   * next poll's answer carries it (out of order, perhaps twice: never lost silently).
   */
  #takeLate(envelope: Envelope): void {
    const entries = this.#entries;
    let i = 0;
    while (i < entries.length && entries[i]!.id <= envelope.id) i++;
    entries.splice(i, 0, envelope);
    this.#since = envelope.id - 1;
    this.#ackFloor = Math.min(this.#ackFloor ?? Infinity, this.#since);
  }

  #addGap(id: number, missed: number | null): void {
    const head = this.#entries[0];
    if (head?.message.type === "gap") this.#entries[0] = this.#gap(id, missed, head);
    else this.#entries.unshift(this.#gap(id, missed, undefined));
  }

  /** A gap entry for `missed` more messages (null: unknown), taking over the count of the one before it. */
  #gap(id: number, missed: number | null, before: Envelope | undefined): Envelope {
    const previous = before === undefined ? 0 : before.message.missed;
    const total = previous === null || missed === null ? null : (previous ?? 0) + missed;
    const gap: ChatMessage = {
      id: Math.max(id, before === undefined ? 0 : before.id),
      type: "gap",
      room: "",
      from: "",
      text: total === null ? "some messages missed" : `${total} messages missed`,
      ts: this.#now(),
      missed: total,
    };
    return new Envelope(gap);
  }
}
