/** The probe while writes fail: after this long, doubling up to the last (README "Several processes", Faults). */
const PROBE_MIN_MS = 250;
const PROBE_MAX_MS = 4000;
/** An append unanswered this long counts as a failing write: Redis answers one in about a millisecond. */
const STALL_MS = 2000;

/**
 * Whether the shared store takes writes (spec §8 /healthz): Redis may answer
 * every command and still refuse each write (`maxmemory` with noeviction, a
 * read-only replica, a failed save with stop-writes-on-bgsave-error). Once an
 * append is refused so, a small write of its own (`probe`) is tried on a backoff
 * until one goes through, so /healthz turns 200 again without a client posting
 * (a balancer that trusts it sends none meanwhile). An append that goes through
 * says so too. An append that hangs (writes paused, Redis stopped) fails as
 * surely, only later: past STALL_MS unanswered it counts as failing until it settles.
 */
export class WriteHealth {
  readonly #probe: () => Promise<void>;
  #failure: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #delay = PROBE_MIN_MS;
  #closed = false;
  /** When each append still unanswered was sent (monotonic ms), by its number, in sending order. */
  readonly #inFlight = new Map<number, number>();
  #sent = 0;
  readonly #now: () => number;

  constructor(probe: () => Promise<void>, now: () => number = () => performance.now()) {
    this.#probe = probe;
    this.#now = now;
  }

  /** Why writes fail now, or undefined. */
  get failure(): string | undefined {
    if (this.#failure !== undefined) return this.#failure;
    const oldest = this.#inFlight.values().next();
    if (oldest.done === true) return undefined;
    const waited = this.#now() - oldest.value;
    if (waited < STALL_MS) return undefined;
    return `the shared store (redis) has not answered an append for ${(waited / 1000).toFixed(1)} s`;
  }

  /** An append is on its way; call the function returned once it is answered, whatever the answer. */
  sending(): () => void {
    const n = this.#sent++;
    this.#inFlight.set(n, this.#now());
    return () => void this.#inFlight.delete(n);
  }

  /** A write was refused: /healthz says why until one goes through. */
  failed(reason: string): void {
    if (this.#closed) return;
    this.#failure = reason;
    if (this.#timer === undefined) this.#schedule();
  }

  /** A write went through. */
  ok(): void {
    this.#failure = undefined;
    this.#delay = PROBE_MIN_MS;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#probe().then(
        () => this.ok(),
        () => {
          // Refused again, or Redis out of reach (its own 503 on /healthz meanwhile): the next try later.
          this.#timer = undefined;
          if (this.#closed || this.#failure === undefined) return;
          this.#delay = Math.min(this.#delay * 2, PROBE_MAX_MS);
          this.#schedule();
        },
      );
    }, this.#delay).unref();
  }
}
