/**
 * A token bucket: `rate` tokens a second, holding at most `burst`.
 * The clock is injected so tests need not sleep.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #updated: number;

  constructor(rate: number, burst: number, now: () => number = Date.now) {
    this.#rate = rate;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#updated = now();
  }

  /**
   * Seconds until `count` tokens are there (0: now), taking none: a request
   * that needs tokens from two buckets asks both before it takes from either.
   */
  wait(count = 1): number {
    const tokens = this.#refill();
    if (tokens >= count) return 0;
    return Math.max(1, Math.ceil((count - tokens) / this.#rate));
  }

  /**
   * Seconds until one token is there at `now` (0: now), changing nothing: a --redis pre-check reads a
   * bucket at its own clock, while the bucket moves only by entries, at their times (cluster/pre-checks.ts).
   */
  waitAt(now: number): number {
    const tokens = Math.min(this.#burst, this.#tokens + (Math.max(0, now - this.#updated) / 1000) * this.#rate);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.#rate));
  }

  /** Full again: as a bucket made now would be, so one may be forgotten and made anew with nothing changed. */
  get full(): boolean {
    return this.#refill() >= this.#burst;
  }

  /** Takes `count` tokens; returns 0 when granted, else the seconds until they are there (and takes none). */
  take(count = 1): number {
    const wait = this.wait(count);
    if (wait === 0) this.#tokens -= count;
    return wait;
  }

  /** Where it stands, [tokens, at ms]: what a snapshot saves so a replica started from it decides as the others do (--redis). */
  get state(): [number, number] {
    return [this.#tokens, this.#updated];
  }

  /** Puts back a saved state (see `state`). */
  set state([tokens, updated]: readonly [number, number]) {
    this.#tokens = Math.min(this.#burst, tokens);
    this.#updated = updated;
  }

  #refill(): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#updated) / 1000) * this.#rate);
    this.#updated = now;
    return this.#tokens;
  }
}
