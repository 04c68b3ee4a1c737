import { expect, it } from "vitest";
import { ChatError } from "../src/errors.js";
import { PendingRequests, type Fate } from "../src/cluster/pending-requests.js";
import { StoreClock } from "../src/cluster/store-clock.js";

it("the store's clock is bounded from below by its replies, whatever their round trip, and a deadline passes only once that bound is past it", () => {
  let local = 1000;
  const clock = new StoreClock(() => local);
  expect(clock.lowerBound()).toBeUndefined();
  expect(clock.passed(0)).toBe(false);
  // The store read 50,000 when a reply came at local 1,000: at least 50,000 + (t - 1,000), a little less for drift.
  clock.sample(50_000, 1000);
  local = 2000;
  expect(clock.lowerBound()).toBeCloseTo(50_999, 0);
  // An older, slower reply (its time read earlier) changes nothing; a newer one that proves more wins.
  clock.sample(50_100, 1900);
  expect(clock.lowerBound()).toBeCloseTo(50_999, 0);
  clock.sample(51_500, 2000);
  expect(clock.lowerBound()).toBe(51_500);
  const deadline = clock.deadline(8000);
  expect(deadline).toBe(59_500);
  local = 2000 + 8000;
  expect(clock.passed(deadline)).toBe(false); // drift: not surely past yet
  local = 2000 + 8010;
  expect(clock.passed(deadline)).toBe(true);
});

it("a 503 is final only for a request whose append never left or can no longer be stored; else it says the fate is unknown", async () => {
  let now = 0;
  const pending = new PendingRequests(40, (fate: Fate) => new ChatError("store_unavailable", fate), (deadline) => now > deadline);
  const fate = (p: Promise<unknown>): Promise<string> => p.then(() => "ok", (error: unknown) => (error as Error).message);
  const neverSent = fate(pending.add(1, (o) => o, () => undefined));
  const inFlight = fate(pending.add(2, (o) => o, () => undefined));
  const doubted = fate(pending.add(3, (o) => o, () => undefined));
  pending.sent([2, 3], 100);
  pending.doubt([3]);
  // Caught up, but the store's clock is not past the deadline: it may still arrive, so it waits.
  expect(pending.settled(3)).toBe(false);
  expect(pending.settleFromState(3, pending.settled(3))).toBe(false);
  now = 101;
  expect(pending.settled(3)).toBe(true);
  expect(pending.settleFromState(3, true)).toBe(true);
  expect(await doubted).toBe("none");
  // At the fate deadline: never sent, final; sent and not heard of, unknown.
  expect(await neverSent).toBe("none");
  expect(await inFlight).toBe("unknown");
  // Closing, or a lost epoch: a stored one unapplied is unknown (another process may have applied it before the loss); one not sent is final.
  const stored = fate(pending.add(4, (o) => o, () => undefined));
  const waiting = fate(pending.add(5, (o) => o, () => undefined));
  pending.sent([4], 200);
  pending.stored([4]);
  pending.refuseAll();
  expect([await stored, await waiting]).toEqual(["unknown", "none"]);
  const lost = fate(pending.add(6, (o) => o, () => undefined));
  pending.sent([6], 300);
  pending.refuseAll();
  expect(await lost).toBe("unknown");
});
