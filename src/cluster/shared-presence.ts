import type { Hub } from "../hub.js";
import type { Session } from "../session.js";
import { sweepEvery } from "../presence.js";
import type { Replica } from "./replica.js";

/** Where processes tell each other whom they saw: a Redis sorted set (name key → last seen, ms), or memory in tests. */
export interface PresenceStore {
  /** These sessions (name keys) were seen at these times; a later time never goes back. */
  mark(seen: readonly (readonly [string, number])[]): Promise<void>;
  /** When any process last saw each of these (undefined: never said). */
  lastSeen(keys: readonly string[]): Promise<(number | undefined)[]>;
  /** Forgets names not seen since `before`. */
  forget(before: number): Promise<void>;
}

/**
 * Presence and --session-ttl across processes (spec §10): a client polling only
 * on B is alive for A. Each process says, once per sweep, which sessions it saw
 * (one call for all of them), and ends what nobody saw for the TTL by one
 * `expire` entry. Any process may append one for the same session; the entry
 * names the session by where it was made, so it ends once, with exactly one
 * leave, wherever it is applied, and never a session of the same name made since.
 */
export class SharedPresence {
  readonly #hub: Hub;
  readonly #replica: Replica;
  readonly #store: PresenceStore;
  readonly #ttlMs: number;
  readonly #timer: NodeJS.Timeout;
  #lastMark = 0;
  #running = false;
  #sweeps = 0;

  constructor(hub: Hub, replica: Replica, store: PresenceStore, opts: { sessionTtlMs: number }) {
    this.#hub = hub;
    this.#replica = replica;
    this.#store = store;
    this.#ttlMs = opts.sessionTtlMs;
    this.#timer = setInterval(() => void this.sweep(), sweepEvery(opts.sessionTtlMs)).unref();
  }

  /** Says whom this process saw, then ends those nobody saw for the TTL. Never rejects (the store may be gone: next time). */
  async sweep(now = Date.now()): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      const seen: [string, number][] = [];
      const candidates: { client: Session; key: string; madeAt: string }[] = [];
      const cutoff = now - this.#ttlMs;
      for (const client of this.#hub.sessions()) {
        if (client.presenceHolds > 0) seen.push([client.key, now]);
        else if (client.lastSeen > this.#lastMark) seen.push([client.key, client.lastSeen]);
        else if (client.lastSeen <= cutoff) candidates.push({ client, key: client.key, madeAt: this.#replica.madeAt(client) });
      }
      if (seen.length > 0) await this.#store.mark(seen);
      this.#lastMark = now;
      if (candidates.length > 0) {
        const times = await this.#store.lastSeen(candidates.map((c) => c.key));
        // (Not one that ended meanwhile: a new epoch ended every session, and its log must not hear of them.)
        const expired = candidates.filter((c, i) => (times[i] ?? 0) <= cutoff && !c.client.ended).map((c): [string, string] => [c.key, c.madeAt]);
        if (expired.length > 0) await this.#replica.submit({ t: "expire", s: expired }, () => undefined).catch(() => {});
      }
      // Now and then, names nobody saw for two TTLs: their sessions are gone or going.
      if (++this.#sweeps % 64 === 0) await this.#store.forget(now - 2 * this.#ttlMs);
    } catch {
      // The store is unreachable: presence is said again on the next sweep.
    } finally {
      this.#running = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
