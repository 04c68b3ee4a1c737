import type { Envelope } from "./message.js";

/**
 * What one message of history counts besides its strings: the Envelope, the
 * message object, its id, ts and the entry that holds it (V8 objects of a few
 * dozen bytes each, rounded up).
 */
export const ENTRY_OVERHEAD_BYTES = 256;

/**
 * A message's size for the history budget: 2 bytes a UTF-16 unit of its
 * strings (the most V8 takes for a string) plus ENTRY_OVERHEAD_BYTES, so a
 * flood of tiny messages is bounded by the overhead. Counted from the message,
 * never by serialising it: its JSON and text line are made only when a client
 * asks, and when they are, they take about as much again each.
 */
export function historyBytes(envelope: Envelope): number {
  const m = envelope.message;
  return 2 * (m.text.length + m.from.length + m.room.length + (m.to?.length ?? 0)) + ENTRY_OVERHEAD_BYTES;
}

/** What holds an entry (a room's history): told to drop it when the budget needs the room. */
export interface HistoryHolder {
  /** Removes `entry`, its oldest, from the holder's history; the budget has let it go already. */
  evicted(entry: HistoryEntry): void;
}

/** One message of one room's history, counted in the budget while `holder` is set. */
export class HistoryEntry {
  readonly envelope: Envelope;
  readonly bytes: number;
  /** The history that holds it; undefined once it is gone (trimmed, evicted, forgotten). */
  holder: HistoryHolder | undefined;

  constructor(envelope: Envelope, holder: HistoryHolder) {
    this.envelope = envelope;
    this.bytes = historyBytes(envelope);
    this.holder = holder;
  }

  get id(): number {
    return this.envelope.id;
  }
}

/**
 * One byte budget for the history of all rooms (live rooms and the empty ones
 * a store keeps): past it, the oldest entries of all go first, whichever room
 * holds them. Per room, --history still caps the count.
 *
 * Entries sit in a min-heap by id: a room's entries are in id order, so the
 * smallest id of all is the oldest entry of its room. Messages arrive in id
 * order (a push is then O(1)); a restore adds room after room, which a heap
 * takes in any order. An entry its room dropped on its own (--history, a
 * forgotten room) stays in the heap, marked gone, until popped or until gone
 * ones outnumber live ones and the heap is rebuilt: O(1) amortised each.
 */
export class HistoryBudget {
  readonly maxBytes: number;
  #heap: HistoryEntry[] = [];
  #bytes = 0;
  #live = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Bytes the live entries count. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Live entries. */
  get size(): number {
    return this.#live;
  }

  /** Entries the heap holds, gone ones included: at most 2 × size + 1024. */
  get slots(): number {
    return this.#heap.length;
  }

  /** Counts an entry its holder has just taken in, then drops the oldest entries of all while over budget (this one too, if it alone is larger). */
  add(entry: HistoryEntry): void {
    this.#bytes += entry.bytes;
    this.#live++;
    this.#push(entry);
    while (this.#bytes > this.maxBytes && this.#heap.length > 0) {
      const oldest = this.#pop();
      const holder = oldest.holder;
      if (holder === undefined) continue; // gone already
      this.#forget(oldest);
      holder.evicted(oldest);
    }
    this.#bound();
  }

  /** The holder dropped `entry` on its own: it no longer counts. */
  release(entry: HistoryEntry): void {
    if (entry.holder === undefined) return;
    this.#forget(entry);
    this.#bound();
  }

  /** Gone entries past the live ones: rebuild, so the heap stays within twice what is live. */
  #bound(): void {
    if (this.#heap.length > 2 * this.#live + 1024) this.#rebuild();
  }

  #forget(entry: HistoryEntry): void {
    entry.holder = undefined;
    this.#bytes -= entry.bytes;
    this.#live--;
  }

  #rebuild(): void {
    this.#heap = this.#heap.filter((e) => e.holder !== undefined);
    for (let i = (this.#heap.length >>> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #push(entry: HistoryEntry): void {
    const heap = this.#heap;
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (heap[parent]!.id <= entry.id) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): HistoryEntry {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.#down(0);
    }
    return top;
  }

  #down(start: number): void {
    const heap = this.#heap;
    const entry = heap[start]!;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= heap.length) break;
      if (child + 1 < heap.length && heap[child + 1]!.id < heap[child]!.id) child++;
      if (heap[child]!.id >= entry.id) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = entry;
  }
}
