import fc from "fast-check";
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
    budget.attach(a1, "a", "a1");
    budget.attach(a2, "a", "a2");
    budget.attach(b1, "b", "b1");
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
    budget.attach(big, "big", "big");
    budget.attach(small, "small", "small");
    for (let i = 0; i < 5; i++) big.push(message());
    small.push(message());
    small.push(message()); // 7 in all: big holds the most and gives one
    expect(gapOf(big)).toBe(1);
    expect(small.bytes).toBe(2 * ONE);
    lone.push(message());
    budget.attach(lone, undefined, "lone"); // counted at once, and held to the total
    expect(budget.bytes).toBe(6 * ONE);
    expect(gapOf(big)).toBe(2);
    budget.detach(big);
    expect(budget.bytes).toBe(3 * ONE);
    expect(budget.bytesOf("big")).toBe(0);
  });
});

describe("QueueBudget ties", () => {
  /** A room message with this id, the same size at every id (a tie in bytes is a tie in messages). */
  function roomMessage(id: number): Envelope {
    return new Envelope({ id, type: "message", room: "lobby", from: "bob", text: "x".repeat(100), ts: 0 });
  }
  const PER = historyBytes(roomMessage(100));

  /**
   * Queues restored in `order` (as a snapshot brings them back, or as a replica applied
   * their history), each holding the room messages it was given, then `pushes` room
   * messages reach every queue in id order. What each queue holds after, by session key.
   */
  function run(
    queues: readonly { key: string; address: string | undefined; held: readonly number[] }[],
    order: readonly number[],
    pushes: number,
    caps: { maxBytes: number; maxPerAddress: number },
  ): Record<string, string> {
    const budget = new QueueBudget(caps);
    const made = new Map<string, SessionQueue>();
    for (const i of order) {
      const spec = queues[i]!;
      const q = new SessionQueue(1000, 0, () => 0);
      for (const id of spec.held) q.push(roomMessage(id));
      budget.attach(q, spec.address, spec.key);
      made.set(spec.key, q);
    }
    for (let p = 0; p < pushes; p++) for (const key of [...made.keys()].sort()) made.get(key)!.push(roomMessage(100 + p));
    const out: Record<string, string> = {};
    for (const [key, q] of made) out[key] = q.peek().map((e) => (e.message.type === "gap" ? `gap${e.message.missed}` : e.id)).join(",");
    return out;
  }

  it("the same queues restored in any order drop the same messages: ties go by session key and address, never by arrival", () => {
    const spec = fc
      .array(fc.record({ address: fc.constantFrom("10.0.0.1", "10.0.0.2", undefined), held: fc.subarray([1, 2, 3, 4, 5, 6]) }), {
        minLength: 2,
        maxLength: 6,
      })
      .map((qs) => qs.map((q, i) => ({ ...q, key: `s${i}` })));
    fc.assert(
      fc.property(
        spec.chain((qs) => {
          const indices = qs.map((_, i) => i);
          const perm = fc.shuffledSubarray(indices, { minLength: qs.length, maxLength: qs.length });
          return fc.tuple(fc.constant(qs), perm, perm, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 8 }), fc.boolean());
        }),
        ([qs, first, second, pushes, cap, share]) => {
          const caps = share ? { maxBytes: 1000 * PER, maxPerAddress: cap * PER } : { maxBytes: cap * PER, maxPerAddress: 0 };
          expect(run(qs, second, pushes, caps)).toEqual(run(qs, first, pushes, caps));
        },
      ),
      { numRuns: 300, seed: 19 },
    );
  });

  it("two sessions of one address holding one room message: a replica from a snapshot drops the same one as one that applied every entry", () => {
    const budget = new QueueBudget({ maxBytes: 1000 * PER, maxPerAddress: 3 * PER });
    const [a, b] = [new SessionQueue(1000, 0, () => 0), new SessionQueue(1000, 0, () => 0)];
    budget.attach(a, "10.0.0.1", "a");
    budget.attach(b, "10.0.0.1", "b");
    a.push(roomMessage(1));
    b.push(roomMessage(1));
    a.ack(1);
    a.push(roomMessage(2));
    b.push(roomMessage(2));
    b.ack(1);
    a.push(roomMessage(3));
    b.push(roomMessage(3));
    const fromSnapshot = new QueueBudget({ maxBytes: 1000 * PER, maxPerAddress: 3 * PER });
    const [a2, b2] = [new SessionQueue(1000, 1, () => 0), new SessionQueue(1000, 1, () => 0)];
    for (const q of [a2, b2]) q.push(roomMessage(2));
    fromSnapshot.attach(a2, "10.0.0.1", "a");
    fromSnapshot.attach(b2, "10.0.0.1", "b");
    a2.push(roomMessage(3));
    b2.push(roomMessage(3));
    const ids = (q: SessionQueue): string => q.peek().map((e) => (e.message.type === "gap" ? "gap" : e.id)).join(",");
    expect([ids(a2), ids(b2)]).toEqual([ids(a), ids(b)]);
    // The lower session key loses its oldest.
    expect([ids(a), ids(b)]).toEqual(["gap,3", "2,3"]);
  });
});
