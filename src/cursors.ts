import type { Session } from "./session.js";
import type { SessionRecord } from "./journal.js";
import type { Envelope } from "./message.js";

/**
 * Cursors (spec §5): where each session's queue stands, acknowledged by the
 * cursor a client sends or by an answer completely written, never past the
 * newest id delivered to queues (`deliveredUpTo`), so no cursor a client is
 * told or acknowledges swallows a message still on its way (held for its batch).
 */
export class Cursors {
  /**
   * The newest id delivered to queues. Messages are applied in id order (journal.ts),
   * so no message at or below it is still on its way. An id whose delivery was dropped is passed by the next one.
   */
  #deliveredUpTo: number;
  readonly #record: (record: SessionRecord) => void;

  /** `record`: how an acknowledgement that moved a queue is journaled (a store saves where it stands). */
  constructor(deliveredUpTo: number, record: (record: SessionRecord) => void) {
    this.#deliveredUpTo = deliveredUpTo;
    this.#record = record;
  }

  get deliveredUpTo(): number {
    return this.#deliveredUpTo;
  }

  /** A message was pushed to its queues: called synchronously with the pushes, so nobody sees the id raised before it is queued. */
  delivered(id: number): void {
    if (id > this.#deliveredUpTo) this.#deliveredUpTo = id;
  }

  /** Acknowledges by cursor and says where the client stands; a cursor above what has been delivered is clamped. */
  resume(client: Session, cursor: number): void {
    const since = client.queue.since;
    client.queue.resumeFrom(Math.min(cursor, this.#ackable(client)));
    if (client.queue.since !== since) this.#record({ kind: "ack", session: client });
  }

  /** The client has everything up to this id (its answer was completely written). */
  ack(client: Session, upTo: number): void {
    const since = client.queue.since;
    client.queue.ack(Math.min(upTo, this.#ackable(client)));
    if (client.queue.since !== since) this.#record({ kind: "ack", session: client });
  }

  /**
   * The cursor a client should send next after receiving `entries`: the last
   * id it got, or, with nothing queued, the newest id delivered (nothing at or
   * below it is owed; a newer one may still be on its way to this queue).
   */
  cursorAfter(client: Session, entries: readonly Envelope[]): number {
    if (entries.length > 0) return entries[entries.length - 1]!.id;
    return client.queue.length === 0 ? this.#ackable(client) : client.queue.since;
  }

  /** What the client may acknowledge: what is delivered, or its queue's start when higher (no message still on its way is for a newer queue). */
  #ackable(client: Session): number {
    return Math.max(client.queue.since, this.#deliveredUpTo);
  }
}
