import type { Session } from "./session.js";

/** How often expiry is checked: a few times per TTL, at most once a second. */
export function sweepEvery(sessionTtlMs: number): number {
  return Math.max(10, Math.min(1000, Math.floor(sessionTtlMs / 4)));
}

/**
 * Presence (spec §1): a session is present while a poll, stream or connection
 * is open on it (its `presenceHolds`, counted by Subscriptions) and for
 * --session-ttl after the last one; then the sweep ends it. The sweep runs a
 * few times per TTL, at most once a second.
 */
export class Presence {
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #sweeper: NodeJS.Timeout | undefined;

  /**
   * `sweep` runs on the timer: it calls expired() and ends what that yields.
   * Without one there is no timer: expiry is decided elsewhere (--redis: cluster/shared-presence.ts).
   */
  constructor(opts: { sessionTtlMs: number; now: () => number; sweep: (() => void) | undefined }) {
    this.#now = opts.now;
    this.#ttlMs = opts.sessionTtlMs;
    if (opts.sweep !== undefined) this.#sweeper = setInterval(opts.sweep, sweepEvery(opts.sessionTtlMs)).unref();
  }

  /** A poll, stream or connection opens: it holds the session present (counted in `presenceHolds`), which does not expire while any does. */
  hold(client: Session): void {
    client.presenceHolds++;
    client.lastSeen = this.#now();
  }

  /** That poll, stream or connection ended: --session-ttl counts from now once none is left. */
  release(client: Session): void {
    client.presenceHolds--;
    client.lastSeen = this.#now();
  }

  /** A request of the session counts as presence: its --session-ttl starts again. */
  seen(client: Session): void {
    client.lastSeen = this.#now();
  }

  /** The sessions among `clients` with no poll, stream or connection for --session-ttl (a copy: the caller ends them). */
  expired(clients: Iterable<Session>): Session[] {
    const cutoff = this.#now() - this.#ttlMs;
    const gone: Session[] = [];
    for (const client of clients) if (client.presenceHolds === 0 && client.lastSeen <= cutoff) gone.push(client);
    return gone;
  }

  /** Stops the sweep. */
  close(): void {
    clearInterval(this.#sweeper);
  }
}
