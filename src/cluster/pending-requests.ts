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
  /** Once its append is on its way: the store refuses it past this (shared-log.ts append). Unset: nothing of it left this process. */
  deadline: number | undefined;
}

/** What a refused request is told: "none", it never takes effect (spec §8); "unknown", it may have (spec §10). */
export type Fate = "none" | "unknown";

/**
 * The requests of this process whose entries are appended and not yet applied
 * here (replica.ts), by sequence number: each is answered with its entry's
 * outcome, or refused (`refusal()`: 503). A plain 503 is final: given only when
 * the entry is known never to be stored: its append never left, the store refused
 * it, or the log was read past its tip after the store's clock passed the append's
 * deadline (`passed`), after which the store refuses it (README "Several processes",
 * Faults). A request still unsettled at the fate deadline gets the 503 that says its
 * fate is unknown.
 */
export class PendingRequests {
  readonly #pending = new Map<number, Pending>();

  constructor(
    readonly fateDeadlineMs: number,
    readonly refusal: (fate: Fate) => ChatError,
    readonly passed: (deadline: number) => boolean = () => true,
  ) {}

  add<R>(q: number, capture: (outcome: Outcome) => R, recover: () => { outcome: Outcome } | undefined): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => this.#expire(q), this.fateDeadlineMs).unref();
      const settle = resolve as (value: unknown) => void;
      this.#pending.set(q, { capture, recover, resolve: settle, reject, timer, inDoubt: false, stored: false, deadline: undefined });
    });
  }

  /** Their append is on its way, refused by the store past `deadline`. */
  sent(seqs: readonly number[], deadline: number): void {
    for (const q of seqs) {
      const pending = this.#pending.get(q);
      if (pending) pending.deadline = deadline;
    }
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

  /** Whether request `q`'s entry can no longer be stored (so a read of the log's tip from now on tells its fate). */
  settled(q: number): boolean {
    const pending = this.#pending.get(q);
    return pending === undefined || pending.stored || pending.deadline === undefined || this.passed(pending.deadline);
  }

  /** Known never to be stored: the final 503. */
  refuse(q: number): void {
    this.settle(q, undefined, this.refusal("none"), false);
  }

  /**
   * Caught up with the log, and still not applied here: answered from the state when it can tell what the
   * entry did; else refused, finally if `final` (settled() held before the tip was read) and it was not stored,
   * as "may have taken effect" if it was stored (below a snapshot a resync loaded). False: still waiting.
   */
  settleFromState(q: number, final: boolean): boolean {
    const pending = this.#pending.get(q);
    if (pending === undefined) return true;
    const recovered = pending.recover();
    if (recovered) this.settle(q, recovered.outcome, undefined, true);
    else if (pending.stored) this.settle(q, undefined, this.refusal("unknown"), false);
    else if (final) this.refuse(q);
    else return false;
    return true;
  }

  /** Every one refused: finally for what never left this process, else as "may have taken effect". */
  refuseAll(): void {
    for (const [q, pending] of [...this.#pending]) {
      this.settle(q, undefined, this.refusal(pending.stored || pending.deadline !== undefined ? "unknown" : "none"), false);
    }
  }

  /** Answers request `q` (if it is still waiting) with `capture(outcome)`, or rejects it with `error`. */
  settle(q: number, outcome: Outcome, error: unknown, ok: boolean): void {
    const pending = this.#pending.get(q);
    if (!pending) return;
    this.#pending.delete(q);
    clearTimeout(pending.timer);
    if (!ok) return pending.reject(error instanceof ChatError ? error : error === undefined ? this.refusal("none") : new ChatError("internal"));
    try {
      pending.resolve(pending.capture(outcome));
    } catch (thrown) {
      pending.reject(thrown);
    }
  }

  /** The fate deadline: never sent, so never stored (final); else what became of it is not known here. */
  #expire(q: number): void {
    const pending = this.#pending.get(q);
    if (pending === undefined || pending.stored) return;
    this.settle(q, undefined, this.refusal(pending.deadline === undefined ? "none" : "unknown"), false);
  }
}
