import type { Session } from "./session.js";
import type { Envelope } from "./message.js";
import type { Room } from "./room.js";

/** Why a session ended, for its transports and the log. */
export type EndReason = "left" | "expired" | "shutdown";

/**
 * What the hub writes ahead of applying it (journal.ts): every change it
 * makes, as a typed record. Records of a session that cannot come back after
 * a restart (a TCP connection: not resumable) are not journaled; observers
 * (hub-observer.ts) see them all.
 */
export type JournalRecord = MessageRecord | SessionRecord;

/** An accepted message, and who gets it as they were when it was posted. */
export interface MessageRecord {
  readonly kind: "message";
  readonly envelope: Envelope;
  /** The room whose history takes it (none for private messages and command answers). */
  readonly room: Room | undefined;
  /** Whose queues take it. */
  readonly recipients: readonly Session[];
  /**
   * For a message that is not the room's (private, a command answer): the keys
   * of its recipients that can come back after a restart (the hub knows them;
   * a store need not look them up). Undefined for a room's message: its members get it.
   */
  readonly keys: readonly string[] | undefined;
}

/** A change to a session: what a store needs to bring it back after a restart. */
export type SessionRecord =
  | { readonly kind: "session"; readonly session: Session }
  /** Joined a room (and made it current); "current": made a room it is in current; "leave": left one. */
  | { readonly kind: "join" | "current" | "leave"; readonly session: Session; readonly room: string }
  /** Its queue's `since` moved (read it when writing: a store writes where it stands once per batch). */
  | { readonly kind: "ack"; readonly session: Session }
  /** An idempotency key was used (spec §5). */
  | { readonly kind: "txn"; readonly session: Session; readonly txn: string; readonly id: number; readonly at: number }
  | { readonly kind: "end"; readonly session: Session; readonly reason: EndReason };

/** Puts a message into its room's history and every recipient's queue, and wakes them: the hub's, given to its journal. */
export type ApplyMessage = (record: MessageRecord) => void;

/**
 * Where the hub writes what it accepts, ahead of applying it (after centrifuge's
 * Broker: memory now, a file with --data-dir, a shared log later). A message
 * reaches no queue, no history and no poll before its record is durable, so a
 * post that fails (5xx) was delivered to no one and its retry cannot double it
 * (spec §8): applied at once in memory, after the batch's group commit with
 * --data-dir (store/message-log.ts).
 */
export interface Journal {
  /** The hub says how a durable message is applied (centrifuge's RegisterBrokerEventHandler). Called once, before any append. */
  register(apply: ApplyMessage): void;
  /** Throws ChatError store_unavailable (503) when records cannot be written now: the hub calls it before anything changes. */
  checkWritable(): void;
  /**
   * Writes a record. A message's is applied once durable, in the order appended
   * (id order), and never if that write fails, nor any appended after it. The
   * hub's cursors rely on that order: no id at or below the last one applied
   * is still on its way.
   */
  append(record: JournalRecord): void;
}

/** No store: everything is durable as it is appended, and applied at once. */
export class MemoryJournal implements Journal {
  #apply: ApplyMessage | undefined;

  register(apply: ApplyMessage): void {
    this.#apply = apply;
  }

  checkWritable(): void {}

  append(record: JournalRecord): void {
    if (record.kind === "message") this.#apply?.(record);
  }
}
