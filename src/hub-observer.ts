import type { Session } from "./session.js";
import type { JournalRecord } from "./journal.js";

/**
 * Who watches the hub without changing it: metrics and the log (ops/). Typed,
 * and told synchronously as the hub makes each record; unlike a journal, an
 * observer sees the records of every session, resumable or not.
 */
export interface HubObserver {
  /** A record as the hub makes it (a message's before it is durable and applied). */
  record?(record: JournalRecord): void;
  /** Queued messages a session lost: queue_full (past --max-queue, or the queued bytes' caps: queue-budget.ts). */
  dropped?(session: Session, reason: "queue_full", count: number): void;
}
