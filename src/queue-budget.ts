import { IndexedHeap, type HeapItem } from "./indexed-heap.js";
import type { Session } from "./session.js";

/** What the budget asks of a session's queue (session-queue.ts). */
export interface BudgetedQueue extends HeapItem {
  /** Bytes its messages count (history-budget.ts historyBytes); a gap entry counts none. */
  readonly bytes: number;
  /** The id of its oldest message (not a gap); Infinity when it holds none. */
  readonly oldestId: number;
  /** The account it counts in, set by attach() (undefined: none); it reports each change there (QueueBudget.changed). */
  account: QueueAccount | undefined;
  /** Its session's name key, set by attach(): unique among the queues, it settles a tie between two (see QueueBudget). */
  budgetKey: string;
  /** The session that reads it, if any: told of what it lost. */
  readonly holder: Session | undefined;
  /** Its oldest message goes into the gap at its head; returns the bytes freed (0: it held none). */
  dropOldest(): number;
}

/**
 * The queued bytes of the sessions one address created (or of one session that
 * has no address: one restored from a log that did not say). An address's
 * oldest message is the oldest head of its queues: they sit in a heap by it.
 */
export class QueueAccount implements HeapItem {
  heapSlot = -1;
  bytes = 0;
  readonly budget: QueueBudget;
  readonly address: string | undefined;
  /** Settles a tie in bytes: the address, or for an account of no address, its one session's key (never equal to each other). */
  readonly tieKey: string;
  /** Oldest message first; of two queues holding the same message (a room's), the lower session key first. */
  readonly queues = new IndexedHeap<BudgetedQueue>(
    (a, b) => a.oldestId < b.oldestId || (a.oldestId === b.oldestId && a.budgetKey < b.budgetKey),
  );

  constructor(budget: QueueBudget, address: string | undefined, queueKey: string) {
    this.budget = budget;
    this.address = address;
    this.tieKey = address === undefined ? `s ${queueKey}` : `a ${address}`;
  }
}

/**
 * The bytes all session queues hold together (spec §8), with a share per
 * address (the one that created the session, as --max-sessions-per-ip counts
 * it). A queue over its own cap drops its own oldest (session-queue.ts); then:
 * - an address past its share loses its own oldest message, from whichever of
 *   its sessions holds it: never another address's;
 * - past the total, the address that holds the most loses its oldest, so an
 *   address never loses a message to one that holds more than it does (a flood
 *   from one address is held to its share before it can come near the total).
 * A dropped message becomes part of its reader's `gap` (spec §5). Every choice
 * reads only the queues, so replicas that apply the same entries drop alike:
 * a tie (one room message sits in every member's queue with one id; two
 * addresses hold as many bytes) goes by the session's key or the address, never
 * by the order queues came in, which differs on a replica started from a snapshot.
 */
export class QueueBudget {
  readonly maxBytes: number;
  /** 0: no share per address (only the total). */
  readonly maxPerAddress: number;
  /** Told each message a queue lost to the budget (metrics, the log). */
  onDrop: ((queue: BudgetedQueue) => void) | undefined;
  #bytes = 0;
  readonly #accounts = new Map<string, QueueAccount>();
  /** Every account holding a queue, the one with the most bytes first (of equal ones, the lower tieKey). */
  readonly #byBytes = new IndexedHeap<QueueAccount>((a, b) => a.bytes > b.bytes || (a.bytes === b.bytes && a.tieKey < b.tieKey));

  constructor(opts: { maxBytes: number; maxPerAddress: number }) {
    this.maxBytes = opts.maxBytes;
    this.maxPerAddress = opts.maxPerAddress;
  }

  /** Bytes all queues hold. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes the queues of this address's sessions hold. */
  bytesOf(address: string): number {
    return this.#accounts.get(address)?.bytes ?? 0;
  }

  /**
   * A session's queue counts from now on (a new or restored session), held to the caps at once.
   * `key`: its session's name key, unique among the queues attached.
   */
  attach(queue: BudgetedQueue, address: string | undefined, key: string): void {
    if (queue.account !== undefined) queue.account.budget.detach(queue);
    queue.budgetKey = key;
    let account = address === undefined ? undefined : this.#accounts.get(address);
    if (account === undefined) {
      account = new QueueAccount(this, address, key);
      if (address !== undefined) this.#accounts.set(address, account);
      this.#byBytes.add(account);
    }
    queue.account = account;
    account.queues.add(queue);
    this.changed(account, queue, queue.bytes);
    this.enforce(account);
  }

  /** An ended session's queue counts no more. */
  detach(queue: BudgetedQueue): void {
    const account = queue.account;
    if (account?.budget !== this) return;
    queue.account = undefined;
    account.queues.remove(queue);
    this.changed(account, undefined, -queue.bytes);
    if (account.queues.size > 0) return;
    this.#byBytes.remove(account);
    if (account.address !== undefined) this.#accounts.delete(account.address);
  }

  /** A queue of `account` changed by `delta` bytes (and its oldest message, perhaps). */
  changed(account: QueueAccount, queue: BudgetedQueue | undefined, delta: number): void {
    if (queue !== undefined) account.queues.update(queue);
    if (delta === 0) return;
    account.bytes += delta;
    this.#bytes += delta;
    this.#byBytes.update(account);
  }

  /** After a push to a queue of `account`: its address's share, then the total. */
  enforce(account: QueueAccount): void {
    if (this.maxPerAddress > 0 && account.address !== undefined) {
      while (account.bytes > this.maxPerAddress) if (!this.#dropFrom(account)) break;
    }
    while (this.#bytes > this.maxBytes) if (!this.#dropFrom(this.#byBytes.peek())) break;
  }

  #dropFrom(account: QueueAccount | undefined): boolean {
    const queue = account?.queues.peek();
    if (queue === undefined || queue.dropOldest() === 0) return false;
    this.onDrop?.(queue);
    return true;
  }
}
