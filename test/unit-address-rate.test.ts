import { describe, expect, it } from "vitest";
import { TokenBucket } from "../src/rate-limiter.js";
import { SessionLimits } from "../src/session-limits.js";

/** The post bucket of a creating address (--rate-per-ip, spec §8) and the bound on the table that holds them. */

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function limits(now: () => number, maxSessions = 10): SessionLimits {
  return new SessionLimits({ maxSessions, maxSessionsPerIp: 0, retryAfterSeconds: 30, ratePerIp: 2, now });
}

describe("the post bucket of an address", () => {
  it("is shared by every session of the address: bursts of twice the rate, then the rate; another address has its own", () => {
    const c = clock();
    const l = limits(c.now);
    for (let i = 0; i < 3; i++) l.added("203.0.113.7");
    l.added("198.51.100.9");
    for (let i = 0; i < 4; i++) {
      expect(l.postWait("203.0.113.7")).toBe(0);
      l.posted("203.0.113.7");
    }
    expect(l.postWait("203.0.113.7")).toBe(1);
    expect(l.postWait("198.51.100.9")).toBe(0);
    c.advance(500);
    expect(l.postWait("203.0.113.7")).toBe(0);
    // No address (a session of an older log, or made by the library without one): no bucket.
    expect(l.postWait(undefined)).toBe(0);
  });

  it("outlives the address's last session until it is full again, so ending every session refills nothing", () => {
    const c = clock();
    const l = limits(c.now);
    l.added("203.0.113.7");
    for (let i = 0; i < 4; i++) l.posted("203.0.113.7");
    l.ended("203.0.113.7");
    l.added("203.0.113.7");
    expect(l.postWait("203.0.113.7")).toBe(1);
    expect([...l.buckets()].map(([address]) => address)).toEqual(["203.0.113.7"]);
    l.ended("203.0.113.7");
    c.advance(2000);
    l.added("198.51.100.9");
    l.ended("198.51.100.9"); // no bucket: gone at once
    expect([...l.buckets()].map(([address]) => address)).toEqual(["203.0.113.7"]);
  });

  it("keeps at most --max-sessions idle addresses, whatever the churn", () => {
    const c = clock();
    const l = limits(c.now, 10);
    for (let i = 0; i < 1000; i++) {
      const address = `10.0.${i >> 8}.${i & 255}`;
      l.added(address);
      l.posted(address);
      l.posted(address);
      l.ended(address);
      c.advance(1); // far from refilled
    }
    expect([...l.buckets()].length).toBeLessThanOrEqual(10);
  });

  it("0 turns it off", () => {
    const l = new SessionLimits({ maxSessions: 10, maxSessionsPerIp: 0, retryAfterSeconds: 30, ratePerIp: 0 });
    l.added("203.0.113.7");
    for (let i = 0; i < 100; i++) l.posted("203.0.113.7");
    expect(l.postWait("203.0.113.7")).toBe(0);
    expect([...l.buckets()]).toEqual([]);
  });

  it("a bucket read at a time (waitAt) moves nothing", () => {
    const c = clock();
    const bucket = new TokenBucket(2, 4, c.now);
    for (let i = 0; i < 4; i++) bucket.take();
    const state = bucket.state;
    expect(bucket.waitAt(c.now())).toBe(1);
    expect(bucket.waitAt(c.now() + 500)).toBe(0);
    expect(bucket.waitAt(c.now() - 5000)).toBe(1);
    expect(bucket.state).toEqual(state);
  });
});
