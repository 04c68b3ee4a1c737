/**
 * When each held poll's timeout ends, without a timer per poll (issue 14: a
 * Timeout object, its async id and its list links per held poll). Polls are
 * kept in one FIFO per timeout, rounded up to a TICK, so each FIFO is in
 * deadline order and one interval, running only while something is held,
 * ends the polls whose deadline has passed: a hold ends within its timeout
 * plus two ticks (spec §1's 4.5 s ends by 4.55 s; the seed's client waits 5).
 * The links live on the poll itself, so a poll answered early leaves its FIFO
 * at once: nothing dead is kept until its deadline.
 */
export interface Deadlined {
  /** performance.now() at which expire() is due. */
  deadline: number;
  /** Which FIFO it is in (its rounded timeout); -1 while in none. */
  slot: number;
  prev: Deadlined | undefined;
  next: Deadlined | undefined;
  /** The deadline passed: called once, after the item left its FIFO. */
  expire(): void;
}

/** The granularity of timeouts, in ms: a deadline is checked this often, and timeouts are rounded up to it. */
export const TICK_MS = 25;

interface Fifo {
  head: Deadlined | undefined;
  tail: Deadlined | undefined;
}

export class PollDeadlines {
  /** One FIFO per timeout in ticks: at most maxPollTimeout / TICK_MS + 1 of them, and only non-empty ones are kept. */
  readonly #fifos = new Map<number, Fifo>();
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => number;

  /** `now` is a monotonic clock in ms (tests pass their own). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  #finished = false;

  get size(): number {
    return this.#size;
  }

  /** finishAll() ran (shutdown): a poll that gets here later is answered, not held. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Ends `item` once `timeoutMs` (> 0) has passed, unless removed first. */
  add(item: Deadlined, timeoutMs: number): void {
    const slot = Math.ceil(timeoutMs / TICK_MS);
    item.deadline = this.#now() + slot * TICK_MS;
    item.slot = slot;
    item.next = undefined;
    let fifo = this.#fifos.get(slot);
    if (fifo === undefined) {
      this.#fifos.set(slot, { head: item, tail: item });
      item.prev = undefined;
    } else {
      item.prev = fifo.tail;
      fifo.tail!.next = item;
      fifo.tail = item;
    }
    if (this.#size++ === 0) this.#timer = setInterval(() => this.sweep(), TICK_MS).unref();
  }

  /** Takes `item` out (answered, or its connection closed). Does nothing for an item in no FIFO. */
  remove(item: Deadlined): void {
    if (item.slot < 0) return;
    const fifo = this.#fifos.get(item.slot)!;
    if (item.prev === undefined) fifo.head = item.next;
    else item.prev.next = item.next;
    if (item.next === undefined) fifo.tail = item.prev;
    else item.next.prev = item.prev;
    if (fifo.head === undefined) this.#fifos.delete(item.slot);
    item.slot = -1;
    item.prev = item.next = undefined;
    if (--this.#size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Expires every item whose deadline has passed, oldest first in each FIFO. */
  sweep(now = this.#now()): void {
    for (const fifo of this.#fifos.values()) {
      for (let item = fifo.head; item !== undefined && item.deadline <= now; item = fifo.head) {
        // remove() moves the FIFO's head on (and leaves an emptied FIFO's head undefined).
        this.remove(item);
        item.expire();
      }
    }
  }

  /** Expires every item now (shutdown answers every held poll). */
  finishAll(): void {
    this.#finished = true;
    const all: Deadlined[] = [];
    for (const fifo of this.#fifos.values()) for (let item = fifo.head; item !== undefined; item = item.next) all.push(item);
    for (const item of all) {
      if (item.slot < 0) continue; // expiring an earlier one ended it
      this.remove(item);
      item.expire();
    }
  }
}
