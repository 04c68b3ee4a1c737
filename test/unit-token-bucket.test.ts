import { describe, expect, it } from "vitest";
import { TokenBucket } from "../src/rate-limiter.js";

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("TokenBucket", () => {
  it("grants a full burst at once, then refuses with the seconds to wait", () => {
    const c = clock();
    const bucket = new TokenBucket(10, 20, c.now);
    for (let i = 0; i < 20; i++) expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBe(1);
  });

  it("refills at its rate", () => {
    const c = clock();
    const bucket = new TokenBucket(10, 20, c.now);
    for (let i = 0; i < 20; i++) bucket.take();
    c.advance(100); // one token at 10/s
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBeGreaterThan(0);
    c.advance(1000);
    for (let i = 0; i < 10; i++) expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBeGreaterThan(0);
  });

  it("never holds more than its burst, however long it idles", () => {
    const c = clock();
    const bucket = new TokenBucket(1, 2, c.now);
    c.advance(3_600_000);
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBe(1);
  });

  it("says how many whole seconds to wait at a slow rate", () => {
    const c = clock();
    const bucket = new TokenBucket(0.25, 1, c.now);
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBe(4);
    c.advance(2000);
    expect(bucket.take()).toBe(2);
    c.advance(2000);
    expect(bucket.take()).toBe(0);
  });

  it("does not let refused attempts cost tokens", () => {
    const c = clock();
    const bucket = new TokenBucket(1, 1, c.now);
    expect(bucket.take()).toBe(0);
    for (let i = 0; i < 50; i++) expect(bucket.take()).toBe(1);
    c.advance(1000);
    expect(bucket.take()).toBe(0);
  });
});
