import { ChatError } from "../errors.js";
import type { Outcome } from "./apply-command.js";

interface Pending {
  capture: (outcome: Outcome) => unknown;
  /** Its outcome read from the state, when its entry was never applied here (apply-command.ts outcomeFromState). */
  recover: () => { outcome: Outcome } | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
  /** Stored or not is known once the log is read past its tip again (its append failed; or the replica resynced). */
  inDoubt: boolean;
  /** Its entry is in the log (no fate deadline any more: answered once applied here). */
  stored: boolean;
}

/**
 * The requests of this process whose entries are appended and not yet applied
 * here (replica.ts), by sequence number: each is answered with its entry's
 * outcome, or refused (`refusal()`: 503) when its fate is known to be "not stored"
 * or not known within the fate deadline while unstored.
 */
export class PendingRequests {
  readonly #pending = new Map<number, Pending>();

  constructor(
    readonly fateDeadlineMs: number,
    readonly refusal: () => ChatError,
  ) {}

  add<R>(q: number, capture: (outcome: Outcome) => R, recover: () => { outcome: Outcome } | undefined): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => this.refuse(q), this.fateDeadlineMs).unref();
      this.#pending.set(q, { capture, recover, resolve: resolve as (value: unknown) => void, reject, timer, inDoubt: false, stored: false });
    });
  }

  /**
   * In the log: answered once applied here however late (a 503 would disown a delivered post, spec §8),
   * or after a resync skipped it, from the state (settleFromState).
   */
  stored(seqs: readonly number[]): void {
    for (const q of seqs) {
      const pending = this.#pending.get(q);
      if (!pending) continue;
      pending.stored = true;
      clearTimeout(pending.timer);
    }
  }

  /** Their appends failed: stored or not is known once the log is read past its tip again. */
  doubt(seqs: readonly number[]): void {
    for (const q of seqs) {
      const pending = this.#pending.get(q);
      if (pending) pending.inDoubt = true;
    }
  }

  /** Every one stored by now: its entry may be below a snapshot this replica loaded, never applied here. */
  doubtStored(): void {
    for (const pending of this.#pending.values()) if (pending.stored) pending.inDoubt = true;
  }

  doubtful(): number[] {
    return [...this.#pending].filter(([, p]) => p.inDoubt).map(([q]) => q);
  }

  refuse(q: number): void {
    this.settle(q, undefined, this.refusal(), false);
  }

  /** Caught up and still not applied here: answered from the state when it can tell what the entry did, else refused. */
  settleFromState(q: number): void {
    const recovered = this.#pending.get(q)?.recover();
    if (recovered) this.settle(q, recovered.outcome, undefined, true);
    else this.refuse(q);
  }

  refuseAll(): void {
    for (const q of [...this.#pending.keys()]) this.refuse(q);
  }

  /** Answers request `q` (if it is still waiting) with `capture(outcome)`, or rejects it with `error`. */
  settle(q: number, outcome: Outcome, error: unknown, ok: boolean): void {
    const pending = this.#pending.get(q);
    if (!pending) return;
    this.#pending.delete(q);
    clearTimeout(pending.timer);
    if (!ok) return pending.reject(error instanceof ChatError ? error : error === undefined ? this.refusal() : new ChatError("internal"));
    try {
      pending.resolve(pending.capture(outcome));
    } catch (thrown) {
      pending.reject(thrown);
    }
  }
}
