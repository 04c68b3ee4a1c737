import type { PendingRequests } from "./pending-requests.js";
import { NotStored } from "./shared-log.js";

/** How soon, once a request is in doubt, the replica catches up with the log to tell its fate. */
const CHECK_DELAY_MS = 200;

/**
 * Once caught up with the log after a broken append (or a resync), what is still not applied here
 * was not stored (or was skipped): answered from the state if it tells (a join's token, a txn), else 503,
 * final only if the tip was read once the store's clock had passed the append's deadline (the store
 * refuses it from then on: a late arrival never takes effect after this 503). Until then, asked again.
 */
export class DoubtChecks {
  readonly #pending: PendingRequests;
  /** The replica's catchUp(): resolves once everything in the log when called is applied. */
  readonly #catchUp: () => Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(pending: PendingRequests, catchUp: () => Promise<void>) {
    this.#pending = pending;
    this.#catchUp = catchUp;
  }

  /** An append failed. */
  failed(seqs: readonly number[], error: unknown): void {
    // Never sent, or refused: refused now. Sent, but the link broke: stored or not is known once the log is read past its tip again.
    if (error instanceof NotStored) return void seqs.forEach((q) => this.#pending.refuse(q));
    this.#pending.doubt(seqs);
    this.check();
  }

  /** A resync: every request whose entry is stored by now is in doubt (replica.ts resync). */
  doubtStored(): void {
    this.#pending.doubtStored();
    this.check();
  }

  /** A check soon, unless one is due already. */
  check(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const doubtful = this.#pending.doubtful();
      if (doubtful.length === 0) return;
      const settled = new Set(doubtful.filter((q) => this.#pending.settled(q)));
      this.#catchUp().then(
        () => {
          const waiting = doubtful.filter((q) => !this.#pending.settleFromState(q, settled.has(q)));
          if (waiting.length > 0) this.check();
        },
        () => this.check(),
      );
    }, CHECK_DELAY_MS).unref();
  }

  /** The replica reloads (startOver, resync): a check due is dropped; the next one is asked for anew. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The replica closes: no check from here on. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
