import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ReplyWatchdog } from "../src/redis/reply-watchdog.js";

/** The Redis connection's reply timeout: silence while commands wait, and only that. */

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function watchdog(waiting: { now: boolean }): { dog: ReplyWatchdog; silent: () => number } {
  let fired = 0;
  const dog = new ReplyWatchdog(1000, () => waiting.now, () => fired++);
  return { dog, silent: () => fired };
}

describe("ReplyWatchdog", () => {
  it("fires once a waiting command has had no byte for the timeout", () => {
    const waiting = { now: true };
    const { dog, silent } = watchdog(waiting);
    dog.queued(true);
    vi.advanceTimersByTime(999);
    expect(silent()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(silent()).toBe(1);
  });

  it("counts the silence from the last byte", () => {
    const waiting = { now: true };
    const { dog, silent } = watchdog(waiting);
    dog.queued(true);
    vi.advanceTimersByTime(900);
    dog.progress();
    vi.advanceTimersByTime(999);
    expect(silent()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(silent()).toBe(1);
  });

  it("never fires while nothing waits, and counts from the first command after an idle spell", () => {
    const waiting = { now: true };
    const { dog, silent } = watchdog(waiting);
    dog.queued(true);
    dog.progress();
    waiting.now = false;
    vi.advanceTimersByTime(5000);
    expect(silent()).toBe(0);
    waiting.now = true;
    dog.queued(true);
    vi.advanceTimersByTime(999);
    expect(silent()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(silent()).toBe(1);
  });

  it("leaves no timer after stop()", () => {
    const { dog, silent } = watchdog({ now: true });
    dog.queued(true);
    dog.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(silent()).toBe(0);
  });
});
