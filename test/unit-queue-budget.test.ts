import { describe, expect, it } from "vitest";
import { historyBytes } from "../src/history-budget.js";
import { IndexedHeap } from "../src/indexed-heap.js";
import { Envelope } from "../src/message.js";
import { QueueBudget } from "../src/queue-budget.js";
import { SessionQueue } from "../src/session-queue.js";

/** The byte caps of queues as units: one queue's, an address's share, the total (queue-budget.ts). */

let nextId = 1000;
/** Every message counts the same (ONE). */
function message(): Envelope {
  return new Envelope({ id: nextId++, type: "private", room: "r", from: "f", to: "t", text: "x".repeat(100), ts: 0 });
}
const ONE = historyBytes(message());

function queue(maxBytes = Infinity): SessionQueue {
  return new SessionQueue(1000, nextId++, () => 0, maxBytes);
}

function gapOf(q: SessionQueue): number {
  const head = q.peek()[0];
  return head?.message.type === "gap" ? (head.message.missed ?? 0) : 0;
}

describe("IndexedHeap", () => {
  it("gives items in order as their keys change and items leave from anywhere", () => {
    const items = Array.from({ length: 50 }, (_, i) => ({ key: (i * 37) % 50, heapSlot: -1 }));
    const heap = new IndexedHeap<(typeof items)[number]>((a, b) => a.key < b.key);
    for (const item of items) heap.add(item);
    for (const item of items.slice(0, 10)) heap.remove(item);
    items[20]!.key = -1;
    heap.update(items[20]!);
    items[30]!.key = 99;
    heap.update(items[30]!);
    const out: number[] = [];
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      out.push(top.key);
      heap.remove(top);
    }
    expect(out).toHaveLength(40);
    expect(out).toEqual([...out].sort((a, b) => a - b));
    expect(out[0]).toBe(-1);
    expect(out.at(-1)).toBe(99);
  });
});

describe("SessionQueue bytes", () => {
  it("past maxBytes the oldest go into the gap, the newest always stays, acks free bytes", () => {
    const q = queue(3 * ONE);
    for (let i = 0; i < 5; i++) q.push(message());
    expect(q.bytes).toBe(3 * ONE);
    expect(gapOf(q)).toBe(2);
    q.ack(q.lastId);
    expect(q.bytes).toBe(0);
    const huge = new SessionQueue(1000, nextId++, () => 0, 10);
    huge.push(message());
    expect(huge.length).toBe(1); // one message longer than the cap alone is kept
  });
});

describe("QueueBudget", () => {
  it("an address past its share loses its own oldest, from whichever of its queues holds it; another address keeps all", () => {
    const budget = new QueueBudget({ maxBytes: 100 * ONE, maxPerAddress: 4 * ONE });
    const [a1, a2, b1] = [queue(), queue(), queue()];
    budget.attach(a1, "a");
    budget.attach(a2, "a");
    budget.attach(b1, "b");
    b1.push(message());
    a1.push(message());
    a2.push(message());
    a1.push(message());
    a1.push(message());
    expect(budget.bytesOf("a")).toBe(4 * ONE);
    a2.push(message()); // the share is passed: a1's oldest (the oldest of a) goes
    expect(budget.bytesOf("a")).toBe(4 * ONE);
    expect(gapOf(a1)).toBe(1);
    expect(gapOf(a2)).toBe(0);
    expect(b1.bytes).toBe(ONE);
    expect(budget.bytes).toBe(5 * ONE);
  });

  it("past the total the address holding the most gives its oldest, even when another pushes; a session without an address is its own account", () => {
    const budget = new QueueBudget({ maxBytes: 6 * ONE, maxPerAddress: 0 });
    const [big, small, lone] = [queue(), queue(), queue()];
    budget.attach(big, "big");
    budget.attach(small, "small");
    for (let i = 0; i < 5; i++) big.push(message());
    small.push(message());
    small.push(message()); // 7 in all: big holds the most and gives one
    expect(gapOf(big)).toBe(1);
    expect(small.bytes).toBe(2 * ONE);
    lone.push(message());
    budget.attach(lone, undefined); // counted at once, and held to the total
    expect(budget.bytes).toBe(6 * ONE);
    expect(gapOf(big)).toBe(2);
    budget.detach(big);
    expect(budget.bytes).toBe(3 * ONE);
    expect(budget.bytesOf("big")).toBe(0);
  });
});
