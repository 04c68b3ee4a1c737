import type { Session } from "./session.js";
import { ChatError } from "./errors.js";
import type { HistoryBudget } from "./history-budget.js";
import type { Envelope } from "./message.js";
import { KeptRooms } from "./kept-rooms.js";
import { Room } from "./room.js";

/** Where a session without a room named is, and where it falls back to with none left. */
export const DEFAULT_ROOM = "lobby";

/**
 * A session's current room after it left that room: the last one it joined of
 * those it is still in. The one rule, for the hub and for a store's replay.
 */
export function fallbackRoom(rooms: ReadonlySet<string>): string {
  return [...rooms].at(-1) ?? DEFAULT_ROOM;
}

/** Where an identity goes when the request names no room: the first room its rooms claim lists (undefined: no claim, so lobby). */
export function defaultRoomOf(claim: ReadonlySet<string> | undefined): string | undefined {
  return claim?.values().next().value;
}

export interface RoomSummary {
  name: string;
  members: number;
}

export interface RoomPage {
  rooms: RoomSummary[];
  /** The name to list after for the next page; absent on the last one. */
  next?: string;
}

/**
 * Every room that has members, capped at --max-rooms (spec §8), and listed in
 * pages in name order (rooms are lower case ASCII: code-unit order is stable
 * and what `after=` compares with). A room that loses its last member is
 * forgotten here, its history kept (kept-rooms.ts) until the room is made again.
 */
export class Rooms {
  readonly #rooms = new Map<string, Room>();
  readonly #kept: KeptRooms;
  readonly #historyLimit: number;
  /** One byte budget for the history of every room (and of the empty ones a store keeps). */
  readonly historyBudget: HistoryBudget;
  readonly #max: number;
  readonly #maxPerSession: number;
  readonly #retryAfter: number;
  /**
   * The names of #rooms in code-unit order, kept so as rooms come and go (a
   * binary search and one splice each): a listing after a change never sorts
   * them all again (README, room listings).
   */
  readonly #sorted: string[] = [];

  constructor(opts: { history: number; historyBudget: HistoryBudget; maxRooms: number; maxRoomsPerSession: number; retryAfterSeconds: number }) {
    this.#historyLimit = opts.history;
    this.#kept = new KeptRooms(opts.history);
    this.historyBudget = opts.historyBudget;
    this.#max = opts.maxRooms;
    this.#maxPerSession = opts.maxRoomsPerSession;
    this.#retryAfter = opts.retryAfterSeconds;
  }

  get size(): number {
    return this.#rooms.size;
  }

  get(name: string): Room | undefined {
    return this.#rooms.get(name);
  }

  values(): IterableIterator<Room> {
    return this.#rooms.values();
  }

  /**
   * Refuses `client` joining these rooms, before anything changes: 403
   * too_many_rooms (--max-rooms-per-session), 503 server_full (--max-rooms),
   * 429 rate_limited (its join budget). Rooms it is in cost nothing;
   * `client` undefined is a session not made yet (no rooms, a full budget).
   * 403 room_not_allowed: a room outside the session's rooms claim, or outside
   * `claim`, the rooms claim of the identity this request proves (identity.ts).
   */
  checkJoins(client: Session | undefined, names: readonly string[], claim?: ReadonlySet<string>): void {
    const fresh = new Set(names.filter((name) => client?.rooms.has(name) !== true));
    if (fresh.size === 0) return;
    for (const name of fresh) {
      if (client?.allowedRooms?.has(name) === false || claim?.has(name) === false) {
        throw new ChatError("room_not_allowed", `Your identity does not allow the room ${name}.`);
      }
    }
    if ((client?.rooms.size ?? 0) + fresh.size > this.#maxPerSession) {
      throw new ChatError("too_many_rooms", `A session may be in at most ${this.#maxPerSession} rooms: leave one first.`);
    }
    let made = 0;
    for (const name of fresh) if (!this.#rooms.has(name)) made++;
    if (made > 0 && this.#rooms.size + made > this.#max) {
      throw new ChatError("server_full", "The server has as many rooms as it allows; join one that exists, or try later.", {
        retryAfter: this.#retryAfter,
      });
    }
    const wait = client?.joinBudget.wait(fresh.size) ?? 0;
    if (wait > 0) throw new ChatError("rate_limited", "Too many room joins; slow down.", { retryAfter: wait });
  }

  /** A room made (again): the history kept of it, if any, goes with it. */
  create(name: string): Room {
    const room = new Room(name, this.#historyLimit, this.historyBudget);
    this.#kept.unkeep(room);
    if (!this.#rooms.has(name)) this.#sorted.splice(placeOf(this.#sorted, name), 0, name);
    this.#rooms.set(name, room);
    return room;
  }

  /**
   * The room lost its last member: it is forgotten, its history kept. The Room
   * itself is kept, not copied: a message still on its way to it (write-ahead)
   * lands in the history kept.
   */
  empty(room: Room): void {
    if (this.#rooms.delete(room.name)) this.#sorted.splice(placeOf(this.#sorted, room.name), 1);
    this.#kept.keep(room);
  }

  /** History restored for a room that has no members. */
  keepHistory(name: string, envelopes: readonly Envelope[]): void {
    this.#kept.keepHistory(name, envelopes, this.historyBudget);
  }

  /** The room whose history pages under this name: one with members, or one emptied whose history is kept. */
  withHistory(name: string): Room | undefined {
    return this.#rooms.get(name) ?? this.#kept.withHistory(name);
  }

  /** Rooms without members whose history is kept: for a store's snapshot. */
  kept(): IterableIterator<Room> {
    return this.#kept.values();
  }

  /** Up to `limit` rooms whose names sort after `after`, with where the next page starts. */
  page(after: string | undefined, limit: number): RoomPage {
    const names = this.#sorted;
    // The first name above `after`: a listing costs log n, not n, to find its place.
    const start = after === undefined ? 0 : placeOf(names, after, true);
    const slice = names.slice(start, start + limit);
    const rooms = slice.map((name) => ({ name, members: this.#rooms.get(name)!.members.size }));
    return start + limit < names.length ? { rooms, next: slice.at(-1)! } : { rooms };
  }
}

/** Where `name` is or would go in `names`, sorted by code unit (binary search); `past`: the index after it instead. */
function placeOf(names: readonly string[], name: string, past = false): number {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const below = past ? names[mid]! <= name : names[mid]! < name;
    if (below) low = mid + 1;
    else high = mid;
  }
  return low;
}
