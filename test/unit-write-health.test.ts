import { afterEach, expect, it, vi } from "vitest";
import { WriteHealth } from "../src/cluster/write-health.js";

afterEach(() => {
  vi.useRealTimers();
});

it("once a write is refused it probes on a doubling backoff until one goes through, and stops at close", async () => {
  vi.useFakeTimers();
  const probes: number[] = [];
  let refusing = true;
  const health = new WriteHealth(async () => {
    probes.push(Date.now());
    if (refusing) throw new Error("OOM");
  });
  const start = Date.now();
  expect(health.failure).toBeUndefined();
  health.failed("the shared store (redis) refuses writes: OOM");
  health.failed("the shared store (redis) refuses writes: OOM"); // one probe timer, not two
  await vi.advanceTimersByTimeAsync(250 + 500 + 1000);
  expect(probes.map((at) => at - start)).toEqual([250, 750, 1750]);
  expect(health.failure).toMatch(/OOM/);
  refusing = false;
  await vi.advanceTimersByTimeAsync(2000);
  expect(health.failure).toBeUndefined();
  await vi.advanceTimersByTimeAsync(10_000);
  expect(probes.length).toBe(4);
  // Refused again, then closed: no probe after close.
  health.failed("again");
  health.close();
  await vi.advanceTimersByTimeAsync(10_000);
  expect(probes.length).toBe(4);
});

it("an append unanswered for 2 s counts as a failing write until it is answered, whatever came after it", () => {
  let now = 0;
  const health = new WriteHealth(async () => {}, () => now);
  const first = health.sending();
  now = 1500;
  const second = health.sending();
  expect(health.failure).toBeUndefined();
  now = 2100;
  expect(health.failure).toMatch(/has not answered an append for 2\.1 s/);
  // The later one answered first: the older one still hangs.
  second();
  expect(health.failure).toMatch(/2\.1 s/);
  first();
  expect(health.failure).toBeUndefined();
  // Settled twice (an answer and a finally): nothing else is forgotten.
  const third = health.sending();
  first();
  now = 5000;
  expect(health.failure).toMatch(/2\.9 s/);
  third();
  expect(health.failure).toBeUndefined();
  health.close();
});
