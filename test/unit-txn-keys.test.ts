import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChatError } from "../src/errors.js";
import { TxnKeys } from "../src/txn-keys.js";

/** The idempotency-key table (spec §5): by name and key, bounded by time and a total cap, never evicting a live key. */

function refusal(fn: () => void): ChatError | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof ChatError) return error;
    throw error;
  }
  return undefined;
}

describe("TxnKeys", () => {
  it("answers a key within its window, per name, and forgets it after", () => {
    const keys = new TxnKeys({ windowMs: 1000 });
    keys.remember("alice", "k1", 17, 5000);
    expect(keys.get("alice", "k1", 5999)).toBe(17);
    expect(keys.get("bob", "k1", 5999)).toBeUndefined();
    expect(keys.get("alice", "k2", 5999)).toBeUndefined();
    expect(keys.get("alice", "k1", 6000)).toBeUndefined();
  });

  it("keeps name and key apart: no pair can be spelled as another", () => {
    const keys = new TxnKeys();
    keys.remember("a", "b.c", 1, 0);
    keys.remember("a.b", "c", 2, 0);
    expect(keys.get("a", "b.c", 0)).toBe(1);
    expect(keys.get("a.b", "c", 0)).toBe(2);
    expect([...keys.live(0)]).toEqual([
      ["a", "b.c", 1, 0, undefined],
      ["a.b", "c", 2, 0, undefined],
    ]);
  });

  it("past the total the holder of the keys is refused (429) with the seconds until the oldest leaves its window, evicting nothing", () => {
    const keys = new TxnKeys({ max: 3, windowMs: 10_000 });
    for (let i = 0; i < 3; i++) {
      keys.checkRoom(i * 1000);
      keys.remember("alice", `k${i}`, i + 1, i * 1000);
    }
    const full = refusal(() => keys.checkRoom(2500));
    expect(full?.code).toBe("rate_limited");
    expect(full?.status).toBe(429);
    expect(full?.retryAfter).toBe(8); // k0 (at 0) leaves at 10000
    // Every key is still answered.
    for (let i = 0; i < 3; i++) expect(keys.get("alice", `k${i}`, 2500)).toBe(i + 1);
    // Once the oldest left its window there is room again.
    expect(refusal(() => keys.checkRoom(10_000))).toBeUndefined();
    expect(keys.size).toBe(2);
  });

  it("past the total only addresses holding their part of the room left are refused (429); an address holding none gets its key; 503 only at the hard cap", () => {
    // Total 20, hard cap 25: two addresses at their share of 10 fill the total.
    const keys = new TxnKeys({ max: 20, windowMs: 10_000, perAddress: 10 });
    let id = 0;
    const add = (address: string): ChatError | undefined => {
      const refused = refusal(() => keys.checkRoom(100, address));
      if (refused === undefined) keys.remember(`n${id}`, "k", ++id, 100, 100, address);
      return refused;
    };
    for (let i = 0; i < 10; i++) for (const a of ["a", "b"]) expect(add(a)).toBeUndefined();
    expect(keys.size).toBe(20);
    for (const a of ["a", "b"]) expect(add(a)?.code).toBe("rate_limited");
    // A newcomer gets its key; past the total the flooders stay refused, whatever their share says.
    expect(add("c")).toBeUndefined();
    const flooder = new TxnKeys({ max: 20, windowMs: 10_000, perAddress: 0 });
    for (let i = 0; i < 20; i++) flooder.remember(`f${i}`, "k", i + 1, 100, 100, "big");
    expect(refusal(() => flooder.checkRoom(100, "big"))?.code).toBe("rate_limited");
    expect(refusal(() => flooder.checkRoom(100, "small"))).toBeUndefined();
    flooder.remember("s", "k", 99, 100, 100, "small");
    // "small" holds 1, its part of the room left (25 - 21 over 2 holders) is 2: one more.
    expect(refusal(() => flooder.checkRoom(100, "small"))).toBeUndefined();
    flooder.remember("s", "k2", 100, 100, 100, "small");
    expect(refusal(() => flooder.checkRoom(100, "small"))?.code).toBe("rate_limited");
    expect(refusal(() => flooder.checkRoom(100, "big"))?.code).toBe("rate_limited");
    // Newcomers fill the quarter over the total; at the hard cap everyone is refused, 503.
    for (const n of ["n1", "n2", "n3"]) {
      expect(refusal(() => flooder.checkRoom(100, n))).toBeUndefined();
      flooder.remember(n, "k", 200, 100, 100, n);
    }
    expect(flooder.size).toBe(25);
    const hard = refusal(() => flooder.checkRoom(100, "n4"));
    expect(hard?.code).toBe("server_full");
    expect(hard?.status).toBe(503);
  });

  it("past the total the choice depends on the keys held, never on the order they came in", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("a", "b", "c", "d"), { minLength: 20, maxLength: 30 }),
        fc.constantFrom("a", "b", "c", "d", "e"),
        (owners, asker) => {
          const judge = (order: readonly string[]): string | undefined => {
            const keys = new TxnKeys({ max: 20, windowMs: 10_000 });
            order.forEach((owner, i) => keys.remember(`n${i}`, "k", i + 1, 100, 100, owner));
            return keys.refusal(100, asker)?.code;
          };
          expect(judge([...owners].reverse())).toBe(judge(owners));
          expect(judge([...owners].sort())).toBe(judge(owners));
        },
      ),
      { numRuns: 200, seed: 19 },
    );
  });

  it("forgets expired keys on a sweep, and a restore brings back only live ones", () => {
    const keys = new TxnKeys({ windowMs: 1000 });
    keys.remember("a", "old", 1, 0, 2000); // restored after its window: not kept
    keys.remember("a", "x", 2, 1500, 2000);
    keys.remember("a", "y", 3, 1800, 2000);
    expect(keys.size).toBe(2);
    keys.forgetExpired(2600);
    expect([...keys.live(2600)]).toEqual([["a", "y", 3, 1800, undefined]]);
    expect(keys.size).toBe(1);
  });

  it("an address past its share gets 429, alone; its keys count until their window ends, whichever name made them", () => {
    const keys = new TxnKeys({ max: 100, windowMs: 10_000, perAddress: 3 });
    for (let i = 0; i < 3; i++) {
      keys.checkRoom(i, "a");
      keys.remember(`name${i}`, "k", i + 1, i, i, "a");
    }
    const past = refusal(() => keys.checkRoom(5, "a"));
    expect(past?.code).toBe("rate_limited");
    expect(past?.status).toBe(429);
    expect(past?.retryAfter).toBeGreaterThan(0);
    expect(refusal(() => keys.checkRoom(5, "b"))).toBeUndefined();
    expect(refusal(() => keys.checkRoom(5, undefined))).toBeUndefined();
    expect(keys.countOf("a")).toBe(3);
    // The oldest leaves its window: room for one more.
    expect(refusal(() => keys.checkRoom(10_000, "a"))).toBeUndefined();
    expect(keys.countOf("a")).toBe(2);
  });

  it("refusal() judges as checkRoom() does without forgetting anything (a replica's pre-check): expired keys count for nobody", () => {
    const keys = new TxnKeys({ max: 3, windowMs: 1000, perAddress: 2 });
    keys.remember("x", "1", 1, 0, 0, "a");
    keys.remember("x", "2", 2, 100, 100, "a");
    keys.remember("y", "3", 3, 200, 200, "b");
    expect(refusal(() => keys.checkRoom(500, "a"))?.code).toBe("rate_limited");
    expect(keys.refusal(500, "a")?.code).toBe("rate_limited");
    // Past the total: "b" holds its part of the room left (4 - 3 over 2 holders is 0), "c" holds none.
    expect(keys.refusal(500, "b")?.code).toBe("rate_limited");
    expect(keys.refusal(500, "c")).toBeUndefined();
    // At 1050 the first key is out of its window: room for "a" and for the total, and nothing was forgotten.
    expect(keys.refusal(1050, "a")).toBeUndefined();
    expect(keys.refusal(1050, "b")).toBeUndefined();
    expect(keys.size).toBe(3);
    expect(keys.countOf("a")).toBe(2);
  });
});
