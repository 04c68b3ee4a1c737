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

  it("refuses a new key at the cap with 503 and the seconds until the oldest leaves its window, evicting nothing", () => {
    const keys = new TxnKeys({ max: 3, windowMs: 10_000 });
    for (let i = 0; i < 3; i++) {
      keys.checkRoom(i * 1000);
      keys.remember("alice", `k${i}`, i + 1, i * 1000);
    }
    const full = refusal(() => keys.checkRoom(2500));
    expect(full?.code).toBe("server_full");
    expect(full?.status).toBe(503);
    expect(full?.retryAfter).toBe(8); // k0 (at 0) leaves at 10000
    // Every key is still answered.
    for (let i = 0; i < 3; i++) expect(keys.get("alice", `k${i}`, 2500)).toBe(i + 1);
    // Once the oldest left its window there is room again.
    expect(refusal(() => keys.checkRoom(10_000))).toBeUndefined();
    expect(keys.size).toBe(2);
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
    expect(keys.refusal(500, "c")?.code).toBe("server_full");
    // At 1050 the first key is out of its window: room for "a" and for the total, and nothing was forgotten.
    expect(keys.refusal(1050, "a")).toBeUndefined();
    expect(keys.refusal(1050, "c")).toBeUndefined();
    expect(keys.size).toBe(3);
    expect(keys.countOf("a")).toBe(2);
  });
});
