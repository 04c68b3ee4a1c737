import type { HistoryBudget } from "./history-budget.js";
import type { Envelope } from "./message.js";
import { Room } from "./room.js";

/** Rooms without members whose history is kept; past this the one emptied longest ago is forgotten. */
export const MAX_KEPT_ROOMS = 1000;

const ALL = Number.MAX_SAFE_INTEGER;

/**
 * A room that lost its last member keeps its history (rooms.ts forgets the
 * room itself), with or without --data-dir: history belongs to the core, a
 * store only makes it durable. Oldest-emptied first, at most MAX_KEPT_ROOMS.
 * Their history counts in the hub's byte budget (--max-history-bytes) like
 * that of live rooms: a room forgotten here lets its history go from it.
 *
 * The Room the hub let go is kept as it is, not copied: a message held for
 * its batch (write-ahead) is remembered into that Room when it is delivered,
 * and so still lands in the history kept.
 */
export class KeptRooms {
  readonly #rooms = new Map<string, Room>();
  readonly #history: number;
  readonly #max: number;

  constructor(history: number, max = MAX_KEPT_ROOMS) {
    this.#history = history;
    this.#max = max;
  }

  /** A room the hub forgot. */
  keep(room: Room): void {
    const before = this.#rooms.get(room.name);
    if (before !== undefined && before !== room) before.forgetHistory();
    this.#rooms.delete(room.name);
    this.#rooms.set(room.name, room);
    if (this.#rooms.size > this.#max) {
      const oldest = this.#rooms.keys().next().value!;
      this.#rooms.get(oldest)!.forgetHistory();
      this.#rooms.delete(oldest);
    }
  }

  /** History restored for a room that has no members, counted in `budget` (the hub's). */
  keepHistory(name: string, envelopes: readonly Envelope[], budget: HistoryBudget): void {
    if (envelopes.length === 0) return;
    const room = new Room(name, this.#history, budget);
    for (const envelope of envelopes) room.remember(envelope);
    this.keep(room);
  }

  /** A room with kept history is made again: its history goes with it. */
  unkeep(room: Room): void {
    const kept = this.#rooms.get(room.name);
    if (!kept || kept === room) return;
    room.adopt(kept);
    this.#rooms.delete(room.name);
  }

  /** The kept room, when it has history to show: one kept only for a message still on its way to it has none yet. */
  withHistory(name: string): Room | undefined {
    const room = this.#rooms.get(name);
    return room && room.history(ALL, 1).length > 0 ? room : undefined;
  }

  values(): IterableIterator<Room> {
    return this.#rooms.values();
  }
}
