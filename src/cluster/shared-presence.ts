import type { Hub } from "../hub.js";
import type { Session } from "../session.js";
import { sweepEvery } from "../presence.js";
import type { Replica } from "./replica.js";
import { unseenFor, type Span } from "./unrecorded-time.js";

/** A session this process has not seen for the TTL: whether another did is asked. */
interface Candidate {
  client: Session;
  key: string;
  madeAt: string;
}

/** How long a process just started waits at most before it ends sessions (spans of an outage before it started come within seconds). */
const START_GRACE_MS = 10_000;

/** Where processes tell each other whom they saw: a Redis sorted set (name key → last seen, ms), or memory in tests. */
export interface PresenceStore {
  /** These sessions (name keys) were seen at these times; a later time never goes back. */
  mark(seen: readonly (readonly [string, number])[]): Promise<void>;
  /** When any process last saw each of these (undefined: never said). */
  lastSeen(keys: readonly string[]): Promise<(number | undefined)[]>;
  /** Forgets names not seen since `before`, and spans of unrecorded time that ended before it. */
  forget(before: number): Promise<void>;
  /** A process could not record presence from `span[0]` to `span[1]` (ms): that time counts against no session. */
  unrecorded(span: Span): Promise<void>;
  /** The spans said by unrecorded() that end after `after` (the newest ones, bounded). */
  unrecordedSince(after: number): Promise<Span[]>;
}

/**
 * Presence and --session-ttl across processes (spec §10): a client polling only
 * on B is alive for A. Each process says, once per sweep, which sessions it saw
 * (one call for all of them), and ends what nobody saw for the TTL by one
 * `expire` entry. Any process may append one for the same session: the entry
 * names the session by where it was made, so it ends once, with exactly one
 * leave, wherever it is applied, and never a session of the same name made since.
 *
 * Time during which presence could not be recorded counts against no session
 * (README, Several processes: Presence): a process whose sweep failed says, once
 * the store answers again, from when to when it could not record (since its last
 * sweep that worked), and every process leaves every such span out of the time a
 * session was unseen. So after Redis was down longer than the TTL, a client that
 * kept polling on B is not ended by A sweeping before B could say it saw it.
 */
export class SharedPresence {
  readonly #hub: Hub;
  readonly #replica: Replica;
  readonly #store: PresenceStore;
  readonly #ttlMs: number;
  readonly #timer: NodeJS.Timeout;
  #lastMark = 0;
  /** The last sweep whose every store call worked: presence was recorded up to then. */
  #lastRecorded: number;
  /** Since when presence could not be recorded (a sweep failed), until a span of it is stored. */
  #unrecordedFrom: number | undefined;
  readonly #startedAt: number;
  #running = false;
  #sweeps = 0;

  constructor(hub: Hub, replica: Replica, store: PresenceStore, opts: { sessionTtlMs: number; now?: number }) {
    this.#hub = hub;
    this.#replica = replica;
    this.#store = store;
    this.#ttlMs = opts.sessionTtlMs;
    this.#lastRecorded = opts.now ?? Date.now();
    this.#startedAt = this.#lastRecorded;
    this.#timer = setInterval(() => void this.sweep(), sweepEvery(opts.sessionTtlMs)).unref();
  }

  /** Says whom this process saw, then ends those nobody saw for the TTL. Never rejects (the store may be gone: next time). */
  async sweep(now = Date.now()): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#sweeps++;
    try {
      // Back after a failure: first the span nobody here could record, so no process counts it.
      if (this.#unrecordedFrom !== undefined) {
        await this.#store.unrecorded([this.#unrecordedFrom, now]);
        this.#unrecordedFrom = undefined;
      }
      const seen: [string, number][] = [];
      const candidates: Candidate[] = [];
      const cutoff = now - this.#ttlMs;
      for (const client of this.#hub.sessions()) {
        if (client.presenceHolds > 0) seen.push([client.key, now]);
        else if (client.lastSeen > this.#lastMark) seen.push([client.key, client.lastSeen]);
        else if (client.lastSeen <= cutoff) candidates.push({ client, key: client.key, madeAt: this.#replica.madeAt(client) });
      }
      if (seen.length > 0) await this.#store.mark(seen);
      const times = candidates.length > 0 ? await this.#store.lastSeen(candidates.map((c) => c.key)) : [];
      const lastSeen = candidates.map((c, i) => Math.max(times[i] ?? 0, c.client.lastSeen));
      // Read on every sweep, so that every sweep asks the store something: one that fails tells this process it cannot record.
      const spans = await this.#store.unrecordedSince(lastSeen.reduce((a, b) => Math.min(a, b), now - 2 * this.#ttlMs));
      this.#lastMark = now;
      this.#lastRecorded = now;
      // A process just started cannot tell whether presence could be recorded before: the others say so within seconds.
      const expired = now - this.#startedAt < Math.min(this.#ttlMs, START_GRACE_MS) ? [] : this.#expired(candidates, lastSeen, spans, now);
      if (expired.length > 0) await this.#replica.submit({ t: "expire", s: expired }, () => undefined).catch(() => {});
      // Now and then, names nobody saw for two TTLs: their sessions are gone or going.
      if (this.#sweeps % 64 === 0) await this.#store.forget(now - 2 * this.#ttlMs);
    } catch {
      // The store is unreachable: presence is said again on the next sweep, and the time since the last
      // sweep that worked is said to be unrecorded once it answers.
      this.#unrecordedFrom ??= this.#lastRecorded;
    } finally {
      this.#running = false;
    }
  }

  /**
   * Seen by no process for the TTL, not counting the time presence could not be recorded, as [name key, made at].
   * (Not one that ended meanwhile: a new epoch ended every session, and its log must not hear of them.)
   */
  #expired(candidates: readonly Candidate[], lastSeen: readonly number[], spans: readonly Span[], now: number): [string, string][] {
    return candidates.filter((c, i) => unseenFor(lastSeen[i]!, now, spans) >= this.#ttlMs && !c.client.ended).map((c) => [c.key, c.madeAt]);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
