import { performance } from "node:perf_hooks";

/**
 * What this process can be sure of about the shared store's clock (Redis' TIME), from
 * its own monotonic clock: the fence of an append (README "Several processes", Faults).
 *
 * A reply that carried the store's time `r` and came back at local time `b` proves
 * that at any local time t after it the store's clock reads at least r + (t - b),
 * whatever the round trip took (r was read before b). Clocks drift apart, so the
 * store's is taken to run at least MIN_RATE as fast as this one: the bound grows a
 * little slower than local time, and a newer sample soon beats an older one.
 * Redis' TIME is its wall clock: the fence trusts it not to step back (README).
 */
const MIN_RATE = 0.999;

export class StoreClock {
  readonly #now: () => number;
  /** The best sample so far, as r - MIN_RATE * b (the bound at t is that + MIN_RATE * t). */
  #base: number | undefined;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Local monotonic time now (ms), to stamp a reply with. */
  now(): number {
    return this.#now();
  }

  /** The store said its clock read `storeMs`, in a reply that came at local time `receivedAt`. */
  sample(storeMs: number, receivedAt = this.#now()): void {
    if (!Number.isFinite(storeMs)) return;
    const base = storeMs - MIN_RATE * receivedAt;
    if (this.#base === undefined || base > this.#base) this.#base = base;
  }

  /** The store's clock reads at least this now; undefined before any sample. */
  lowerBound(): number | undefined {
    return this.#base === undefined ? undefined : this.#base + MIN_RATE * this.#now();
  }

  /**
   * A deadline for an append sent now, in the store's time: `windowMs` past the
   * least the store's clock can read now. The store refuses the append past it.
   * Before any sample (none is: a process samples as it connects) 0, which the store refuses.
   */
  deadline(windowMs: number): number {
    const low = this.lowerBound();
    return low === undefined ? 0 : Math.floor(low + windowMs);
  }

  /** Whether the store's clock is surely past `deadline`: nothing stamped with it can be stored any more. */
  passed(deadline: number): boolean {
    const low = this.lowerBound();
    return low !== undefined && low > deadline;
  }
}
