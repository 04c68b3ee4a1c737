import { AppliedWindow } from "./applied-window.js";
import { compareIds, type SharedLog } from "./shared-log.js";
import type { TokenMarks } from "./token-marks.js";

/** What a poll's mark is judged against: the replica that answers (replica.ts). */
export interface MarkedReplica {
  /** The last position applied. */
  readonly position: string;
  /** Starting over or resyncing: the snapshot not loaded yet. */
  readonly restoring: boolean;
  catchUp(): Promise<void>;
}

/**
 * Poll answers' marks (README, Several processes: Faults, Redis and every process lost together):
 * each answer carries the newest position applied here, signed as tokens are (token-marks.ts);
 * a client sends the newest one it got back, and a mark of a position the log no longer has
 * starts a new epoch (shared-log.ts reached()).
 */
export class PollMarks {
  readonly #tokens: TokenMarks;
  readonly #log: SharedLog;
  readonly #replica: MarkedReplica;
  /** The positions applied lately (applied-window.ts). */
  readonly window = new AppliedWindow();

  constructor(tokens: TokenMarks, log: SharedLog, replica: MarkedReplica) {
    this.#tokens = tokens;
    this.#log = log;
    this.#replica = replica;
  }

  /** A poll answer's mark: the newest position applied here, signed; undefined before there is one. */
  mark(): string | undefined {
    return this.#replica.restoring ? undefined : this.#tokens.markAt(this.#replica.position);
  }

  /**
   * A mark a poll presents. Signed by the cluster in this epoch, its position was in the log: past what this
   * replica applied, it catches up first; still past it, or inside the span read here but never applied, the
   * log lost it (the tail-loss check confirms it and starts a new epoch); older than that span, the log is
   * asked. Made up, altered, of another epoch, malformed: ignored. Never fails the poll.
   */
  async check(mark: string | undefined): Promise<void> {
    const replica = this.#replica;
    let position = mark === undefined || replica.restoring ? undefined : this.#tokens.markedPosition(mark);
    if (position === undefined) return;
    if (compareIds(position, replica.position) > 0) {
      const caughtUp = await replica.catchUp().then(
        () => true,
        () => false,
      );
      // Checked again: the epoch may have changed meanwhile (the mark is then of a log that is gone).
      position = caughtUp ? this.#tokens.markedPosition(mark) : undefined;
      if (position === undefined || replica.restoring) return;
    }
    if (compareIds(position, replica.position) > 0 || this.window.judge(position) !== "seen") this.#log.reached?.(position);
  }
}
