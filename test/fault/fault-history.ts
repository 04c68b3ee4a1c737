/**
 * What the fault test records, in memory, for the checker to judge at the end.
 * Every time is `now()`: milliseconds on one monotonic clock since the run began.
 */
const T0 = performance.now();
export const now = (): number => performance.now() - T0;
/** A time for a report: seconds since the run began. */
export const at = (t: number): string => `t=${(t / 1000).toFixed(3)}s`;

/** One try of a request: which process, when, and what came back (`none`: no answer, the fetch failed or timed out). */
export interface Attempt {
  proc: number;
  sentAt: number;
  answeredAt: number;
  status: number | "none";
  id?: number;
  error?: string;
}

/** One post (one `txn`), however many times it was sent. */
export interface PostRecord {
  client: string;
  session: number;
  txn: string;
  firstSentAt: number;
  attempts: Attempt[];
  /** ok: answered 201; refused: every try answered, the last one a refusal; unknown: some try got no answer. */
  fate: "ok" | "refused" | "unknown" | "pending";
  id?: number;
  answeredAt?: number;
}

/** What one reader got: a message (by id and text), or a gap. */
export interface Received {
  type: "message" | "gap" | "own-join";
  id: number | undefined;
  text?: string;
  missed?: number | null;
  at: number;
  proc: number;
}

export type ReaderKind = "json" | "sse" | "seed";

/** One session of one reader: from its join until its end (a 401) or the end of the run. */
export interface SessionRecord {
  reader: string;
  name: string;
  kind: ReaderKind;
  index: number;
  joinSentAt: number;
  /** The join answer's cursor (json, sse); undefined for a seed (it has no join answer). */
  joinCursor: number | undefined;
  joinedAt: number;
  received: Received[];
  /** The highest cursor a 200 answer gave it. */
  maxCursor: number;
  /** The 401 that ended it. */
  ended?: { at: number; proc: number; what: string };
}

/** One join request (or retry) of a reader, for the "a refused join took effect" check. */
export interface JoinAttempt extends Attempt {
  reader: string;
  name: string;
}

/** An answer the checker must see: every status outside 2xx, with where and when. */
export interface StatusRecord {
  what: string;
  reader: string;
  proc: number;
  status: number;
  at: number;
  body: string;
}

export interface FaultRecord {
  kind: string;
  detail: string;
  /** FLUSHALL or an older RDB: Redis lost data, so a new epoch (and its 401s and gaps) is expected. */
  losesData: boolean;
  startedAt: number;
  healedAt?: number;
  /** When every process answered /healthz 200 again. */
  healthyAt?: number;
  /** Why it did not heal: the last /healthz answers. */
  unhealthy?: string;
}

export interface HealthSample {
  proc: number;
  at: number;
  status: number | "none";
}

export class History {
  readonly posts: PostRecord[] = [];
  readonly sessions: SessionRecord[] = [];
  readonly joins: JoinAttempt[] = [];
  readonly statuses: StatusRecord[] = [];
  readonly faults: FaultRecord[] = [];
  readonly health: HealthSample[] = [];
  /** Errors of the run itself (a process that would not restart, a crash): reported as violations. */
  readonly harness: string[] = [];
  /** Each process's room history at the end: [proc][i] = "id type from text" (a string: why it could not be read). */
  finalHistories: (string[] | string)[] = [];
  /** The room history of every process after each fault healed, read when traffic flowed again. */
  readonly snapshots: { after: string; at: number; proc: number; lines: string[] | string }[] = [];

  status(record: StatusRecord): void {
    this.statuses.push(record);
  }

  /** The highest id any answered post got. */
  maxAnsweredId(): number {
    let max = 0;
    for (const p of this.posts) if (p.fate === "ok" && p.id! > max) max = p.id!;
    return max;
  }

  answeredCount(): number {
    return this.posts.filter((p) => p.fate === "ok").length;
  }
}

/** mulberry32: a small seeded generator, so a seed replays the same choices. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A whole number in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}
