/** The probe while writes fail: after this long, doubling up to the last (README "Several processes", Faults). */
const PROBE_MIN_MS = 250;
const PROBE_MAX_MS = 4000;

/**
 * Whether the shared store takes writes (spec §8 /healthz): Redis may answer
 * every command and still refuse each write (`maxmemory` with noeviction, a
 * read-only replica, a failed save with stop-writes-on-bgsave-error). Once an
 * append is refused so, a small write of its own (`probe`) is tried on a backoff
 * until one goes through, so /healthz turns 200 again without a client posting
 * (a balancer that trusts it sends none meanwhile). An append that goes through
 * says so too.
 */
export class WriteHealth {
  readonly #probe: () => Promise<void>;
  #failure: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #delay = PROBE_MIN_MS;
  #closed = false;

  constructor(probe: () => Promise<void>) {
    this.#probe = probe;
  }

  /** Why writes fail now, or undefined. */
  get failure(): string | undefined {
    return this.#failure;
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
