import { describe, expect, it } from "vitest";
import { PollDeadlines, TICK_MS, type Deadlined } from "../src/http/poll-deadlines.js";

/** A held poll's stand-in: records when it expired. */
function item(name: string, log: string[]): Deadlined {
  return {
    deadline: 0,
    slot: -1,
    prev: undefined,
    next: undefined,
    expire: () => log.push(name),
  };
}

describe("PollDeadlines: one FIFO per rounded timeout instead of a timer per held poll", () => {
  it("expires an item once its timeout, rounded up to a tick, has passed, and not before", () => {
    let now = 1000;
    const deadlines = new PollDeadlines(() => now);
    const log: string[] = [];
    deadlines.add(item("a", log), 4500);
    deadlines.add(item("b", log), 10);
    expect(deadlines.size).toBe(2);
    now = 1000 + TICK_MS - 1;
    deadlines.sweep();
    expect(log).toEqual([]);
    now = 1000 + TICK_MS;
    deadlines.sweep();
    expect(log).toEqual(["b"]);
    now = 1000 + 4499;
    deadlines.sweep();
    expect(log).toEqual(["b"]);
    now = 1000 + 4500;
    deadlines.sweep();
    expect(log).toEqual(["b", "a"]);
    expect(deadlines.size).toBe(0);
  });

  it("expires items of one timeout in the order they were added, and several FIFOs in one sweep", () => {
    let now = 0;
    const deadlines = new PollDeadlines(() => now);
    const log: string[] = [];
    for (const name of ["a", "b", "c"]) {
      deadlines.add(item(name, log), 100);
      now += 1;
    }
    deadlines.add(item("x", log), 50);
    now = 500;
    deadlines.sweep();
    expect(log).toEqual(["a", "b", "c", "x"]);
  });

  it("takes out a removed item at once, from the head, the middle or the tail, and never expires it", () => {
    const now = 0;
    const deadlines = new PollDeadlines(() => now);
    const log: string[] = [];
    const items = ["a", "b", "c", "d"].map((name) => item(name, log));
    for (const i of items) deadlines.add(i, 100);
    deadlines.remove(items[1]!);
    deadlines.remove(items[0]!);
    deadlines.remove(items[3]!);
    deadlines.remove(items[3]!); // twice is harmless
    expect(deadlines.size).toBe(1);
    deadlines.sweep(1000);
    expect(log).toEqual(["c"]);
    // Removed items keep no links to the others (nothing dead is held on to).
    expect(items[1]!.prev).toBeUndefined();
    expect(items[1]!.next).toBeUndefined();
  });

  it("lets an expiring item remove others (a fifth poll answering the oldest), and finishAll expires everything once", () => {
    const now = 0;
    const deadlines = new PollDeadlines(() => now);
    const log: string[] = [];
    const b = item("b", log);
    const a: Deadlined = { ...item("a", log), expire: () => (log.push("a"), deadlines.remove(b)) };
    deadlines.add(a, 100);
    deadlines.add(b, 100);
    deadlines.sweep(1000);
    expect(log).toEqual(["a"]);
    const c = item("c", log);
    const d: Deadlined = { ...item("d", log), expire: () => (log.push("d"), deadlines.remove(c)) };
    deadlines.add(d, 300);
    deadlines.add(c, 200);
    deadlines.finishAll();
    expect(log).toEqual(["a", "d"]);
    expect(deadlines.size).toBe(0);
  });

  it("expires by the real clock on its own interval, and is empty after", async () => {
    const deadlines = new PollDeadlines();
    const log: string[] = [];
    const started = performance.now();
    deadlines.add(item("a", log), 30);
    // The real clock and interval: the item expires, then the interval stops (size 0, no handle left).
    for (let i = 0; i < 100 && log.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(["a"]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(30);
    expect(deadlines.size).toBe(0);
  });
});
