import { Envelope, type ChatMessage } from "./message.js";
import type { HubHooks, HubTables } from "./hub-tables.js";
import type { HubObserver } from "./hub-observer.js";
import { MemoryJournal, type Journal, type MessageRecord, type SessionRecord } from "./journal.js";
import type { Room } from "./room.js";
import type { Session } from "./session.js";

/**
 * How a hub's changes are made (hub.ts): ids, and typed records (journal.ts) written to
 * the journal ahead, a message applied (history, queues, wakes) once its record is durable.
 * Observers (metrics, the log: hub-observer.ts) are told each record as it is made.
 */
export class HubRecords {
  /** The newest id issued: a store writes it so ids never repeat. Never told to a client: see Hub.deliveredUpTo. */
  lastId = 0;
  readonly #now: () => number;
  /** The hub's tables now (Hub.startOver makes them again): where a durable message is applied. */
  readonly #tables: () => HubTables;
  /** Where records go ahead of being applied: memory, or with --data-dir the log (nothing is accepted when it cannot be written). */
  #journal: Journal = new MemoryJournal();
  readonly #observers: HubObserver[] = [];

  constructor(now: () => number, tables: () => HubTables) {
    this.#now = now;
    this.#tables = tables;
    this.#journal.register(this.#apply);
  }

  /** What the tables write through (hub-tables.ts): the journal, the ids, the observers. */
  readonly hooks: Pick<HubHooks, "checkWritable" | "publish" | "record" | "nextId" | "dropped"> = {
    checkWritable: () => this.#journal.checkWritable(),
    publish: (fields, recipients, room, keys) => this.#publish(fields, recipients, room, keys),
    record: (record) => this.#record(record),
    nextId: (now) => this.#nextId(now),
    dropped: (client, count) => this.#dropped(client, count),
  };

  #nextId(now: number): number {
    return (this.lastId = Math.max(this.lastId + 1, now * 1000));
  }

  /**
   * Assigns the next id and journals the message; it is applied (history,
   * queues, wakes) once its record is durable: at once in memory, after the
   * batch with --data-dir, never if that write fails. `keys`: the recipients
   * that can come back after a restart, for a message that is not the room's.
   */
  #publish(fields: Omit<ChatMessage, "id" | "ts">, recipients: Iterable<Session>, room?: Room, keys?: readonly string[]): Envelope {
    const now = this.#now();
    const id = this.#nextId(now);
    const envelope = new Envelope({ id, ...fields, ts: now });
    // Who gets it is decided now, whenever it is applied.
    const record: MessageRecord = { kind: "message", envelope, room, recipients: [...recipients], keys };
    for (const observer of this.#observers) observer.record?.(record);
    this.#journal.append(record);
    return envelope;
  }

  /** Tells observers, and journals what a store needs: a session that cannot come back after a restart (TCP) is not journaled. */
  #record(record: SessionRecord): void {
    for (const observer of this.#observers) observer.record?.(record);
    if (record.session.resumable) this.#journal.append(record);
  }

  /** A durable message into its room's history and every recipient's queue, with a wake each: what journals call. */
  readonly #apply = ({ envelope, room, recipients }: MessageRecord): void => {
    const tables = this.#tables();
    // Synchronous with the pushes below: nobody sees it raised before the message is queued.
    tables.cursors.delivered(envelope.id);
    // A room forgotten since (its last member left) is the Room kept with its history; one made again since takes it.
    if (room) (tables.rooms.get(room.name) ?? room).remember(envelope);
    for (const client of recipients) {
      this.#dropped(client, client.queue.push(envelope));
      client.wake();
    }
  };

  #dropped(client: Session, count: number): void {
    if (count > 0) for (const observer of this.#observers) observer.dropped?.(client, "queue_full", count);
  }

  /** Records go to this journal from here on (a store that writes ahead: --data-dir), which refuses what it cannot write. */
  useJournal(journal: Journal): void {
    journal.register(this.#apply);
    this.#journal = journal;
  }

  /** Metrics and the log: told every record as it is made, and every drop. */
  observe(observer: HubObserver): void {
    this.#observers.push(observer);
  }
}
