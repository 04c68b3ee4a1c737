/** What an IndexedHeap holds: each item knows its slot, so it can be moved or removed in O(log n). */
export interface HeapItem {
  /** The item's place in the one heap that holds it; -1 while in none. */
  heapSlot: number;
}

/**
 * A binary heap whose items can change their key and leave from anywhere
 * (queue-budget.ts: queues by their oldest entry, addresses by their bytes).
 * `before(a, b)`: a comes out first. An item is in at most one heap at a time.
 */
export class IndexedHeap<T extends HeapItem> {
  readonly #items: T[] = [];
  readonly #before: (a: T, b: T) => boolean;

  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  get size(): number {
    return this.#items.length;
  }

  /** The item that comes out first, or undefined when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  has(item: T): boolean {
    return item.heapSlot >= 0 && this.#items[item.heapSlot] === item;
  }

  add(item: T): void {
    if (this.has(item)) return this.update(item);
    item.heapSlot = this.#items.push(item) - 1;
    this.#up(item.heapSlot);
  }

  remove(item: T): void {
    if (!this.has(item)) return;
    const slot = item.heapSlot;
    const last = this.#items.pop()!;
    item.heapSlot = -1;
    if (last === item) return;
    this.#place(last, slot);
    this.update(last);
  }

  /** The item's key changed: it moves to its place. */
  update(item: T): void {
    if (!this.has(item)) return;
    this.#down(this.#up(item.heapSlot));
  }

  #place(item: T, slot: number): void {
    this.#items[slot] = item;
    item.heapSlot = slot;
  }

  #up(slot: number): number {
    const items = this.#items;
    const item = items[slot]!;
    while (slot > 0) {
      const parent = (slot - 1) >>> 1;
      if (!this.#before(item, items[parent]!)) break;
      this.#place(items[parent]!, slot);
      slot = parent;
    }
    this.#place(item, slot);
    return slot;
  }

  #down(slot: number): void {
    const items = this.#items;
    const item = items[slot]!;
    for (;;) {
      let child = 2 * slot + 1;
      if (child >= items.length) break;
      if (child + 1 < items.length && this.#before(items[child + 1]!, items[child]!)) child++;
      if (!this.#before(items[child]!, item)) break;
      this.#place(items[child]!, slot);
      slot = child;
    }
    this.#place(item, slot);
  }
}
