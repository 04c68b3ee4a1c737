import type { Hub } from "../hub.js";
import type { Replica } from "./replica.js";
import { snapshotChunks } from "./snapshot-lines.js";
import { compareIds, msOf } from "./shared-log.js";
import type { SnapshotStore } from "./snapshot-store.js";

/** How often a process looks whether a snapshot is due. */
const CHECK_MS = 2000;

/**
 * Keeps the shared log bounded (spec §10): once this process has applied
 * `every` entries since the last snapshot it saved or saw, it saves the state at
 * its position (one process at a time: the store's lock), and the log is trimmed
 * below the snapshot before it. So a process starting reads one snapshot and the
 * entries after it, never the history of the world.
 */
export class SnapshotSaver {
  readonly #timer: NodeJS.Timeout;
  #appliedAt: number;
  #running = false;
  /** The newest snapshot's position when last looked at. */
  #seen: string | undefined;
  readonly saved = { count: 0 };

  constructor(
    readonly hub: Hub,
    readonly replica: Replica,
    readonly store: SnapshotStore,
    readonly opts: { every: number; warn: (line: string) => void },
  ) {
    this.#appliedAt = replica.stats.applied;
    this.#timer = setInterval(() => void this.check(), CHECK_MS).unref();
  }

  /** Saves one when due; never rejects (a failed save is tried again on a later check). */
  async check(force = false): Promise<boolean> {
    // Starting over (a new epoch, or a resync): this replica is at no position yet (replica.ts).
    if (this.#running || this.replica.restoring) return false;
    if (!force && this.replica.stats.applied - this.#appliedAt < this.opts.every) return false;
    this.#running = true;
    try {
      const latest = await this.store.latestPosition();
      // Another process saved one since this one last looked: its interval starts again from there.
      if (!force && latest !== this.#seen) {
        this.#seen = latest;
        this.#appliedAt = this.replica.stats.applied;
        return false;
      }
      // At the time of the last entry applied: what a replica restoring it counts idempotency windows from.
      const { pos, chunks } = snapshotChunks(this.hub, this.replica, msOf(this.replica.position));
      // Another process saved one at least as new since: none is due here.
      if (!force && latest !== undefined && compareIds(latest, pos) >= 0) {
        this.#appliedAt = this.replica.stats.applied;
        return false;
      }
      const saved = await this.store.save(pos, chunks);
      if (saved) {
        this.#seen = pos;
        this.#appliedAt = this.replica.stats.applied;
        this.saved.count++;
      }
      return saved;
    } catch (error) {
      this.opts.warn(`pollchat: redis: saving a snapshot failed (${(error as Error).message}); the log grows until the next one`);
      return false;
    } finally {
      this.#running = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
