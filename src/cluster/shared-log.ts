import type { PresenceStore } from "./shared-presence.js";
import type { SnapshotStore } from "./snapshot-store.js";

/**
 * The shared log of --redis (spec §10): one ordered sequence of records that
 * every process appends to and every process applies, in order (replica.ts).
 * Redis streams are the real one (redis-log.ts); memory-log.ts lets several hubs
 * of one test process share one.
 */

/** One entry: its position ("ms-seq", as a Redis stream id) and its record. */
export interface LogEntry {
  readonly id: string;
  readonly data: string;
}

export interface SharedLog {
  /** True while the store answers; appends fail fast (503) while it is false. */
  readonly connected: boolean;
  /**
   * Appends records in this order; resolves once the store has them (durable as
   * it is). Rejects with NotStored when nothing was stored; else (the link broke)
   * whether they were stored is unknown until the log is read past the tip again
   * once `deadline` has passed: the store refuses them after it (a late arrival,
   * from a dead connection, never takes effect after its request was answered 503).
   */
  append(records: readonly string[], deadline: number): Promise<void>;
  /** A deadline `windowMs` from now in the store's clock, for append(). */
  deadline(windowMs: number): number;
  /** Whether the store's clock is surely past `deadline` (an append stamped with it can no longer be stored). */
  passed(deadline: number): boolean;
  /** Why the store refuses writes while it answers (Redis out of memory, read-only), or undefined: /healthz says it. */
  readonly writeFailure?: string | undefined;
  /** Up to `count` entries after `after`, oldest first; waits up to `blockMs` for the first. [] when none came. */
  read(after: string, count: number, blockMs: number): Promise<LogEntry[]>;
  /** The newest entry's id, "0-0" for an empty log: what a process must have applied to be caught up. */
  tip(): Promise<string>;
  /** Where the state at one position is kept, so a process starting reads the log after it only. */
  readonly snapshots: SnapshotStore;
  /** Where processes share whom they saw (presence and --session-ttl across processes). */
  readonly presence: PresenceStore;
  /** The value every process of the deployment agrees on under `name`: the first one set wins, and is returned. */
  agree(name: string, value: string): Promise<string>;
  /** Connects (Redis); rejects with a one-line reason when it cannot. */
  open?(): Promise<void>;
  /**
   * Told each time the log is found to have lost its data (Redis restarted empty, flushed),
   * once this process has joined the new epoch: its state is of one that is gone and must start over (cluster.ts).
   */
  onNewEpoch?(listener: (reason: string) => void): void;
  /**
   * Told when a read finds the log trimmed past the entry it read after (this process was cut off
   * while the others trimmed it): that read rejects, and this process must load the newest snapshot (cluster.ts).
   */
  onTrimmedPast?(listener: (reason: string) => void): void;
  /** The epoch this process is in (what tokens are signed for: token-marks.ts); undefined before it is known. */
  readonly epoch?: string;
  /**
   * The cluster proved it had this position of this epoch's log (a token it signed: token-marks.ts): the log
   * must still have it, as it must have what this process read; if it does not, it lost its end (a new epoch, onNewEpoch).
   */
  reached?(position: string): void;
  /** Times the link came back after a loss (/metrics). */
  readonly reconnects?: number;
  /** Stops everything; pending calls reject. */
  close(): void;
}

export const START = "0-0";

/** An append that was not stored and never will be (it never left this process, or the store refused it): its requests are refused at once. */
export class NotStored extends Error {}

/** Stream ids in order: by milliseconds, then sequence. */
export function compareIds(a: string, b: string): number {
  const [am, as] = split(a);
  const [bm, bs] = split(b);
  return am !== bm ? am - bm : as - bs;
}

/** The milliseconds an entry was appended at (the store's clock): the time its record is applied at, on every replica. */
export function msOf(id: string): number {
  return split(id)[0];
}

function split(id: string): [number, number] {
  const dash = id.indexOf("-");
  return dash < 0 ? [Number(id), 0] : [Number(id.slice(0, dash)), Number(id.slice(dash + 1))];
}
