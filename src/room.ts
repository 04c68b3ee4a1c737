import type { Session } from "./session.js";
import { HistoryEntry, type HistoryBudget, type HistoryHolder } from "./history-budget.js";
import type { Envelope } from "./message.js";

/** One page of a room's members (GET /api/rooms/R, a join's answer). */
export interface MemberPage {
  members: string[];
  /** The name to list after for the next page; absent on the last one. */
  next?: string;
}

/** Members per page of GET /api/rooms/R: by default (and in a join's answer), and at most (`?limit=`). */
export const MEMBERS_PAGE = 100;
export const MAX_MEMBERS_PAGE = 1000;

/** A join's answer: the first page of the room's members, with `next` while more follow (README, the JSON API). */
export function joinedMembers(room: Room | undefined): MemberPage {
  return room?.membersPage(undefined, MEMBERS_PAGE) ?? { members: [] };
}

/**
 * A room: its members and the newest messages of its history (private
 * messages never enter it). History is capped twice: --history messages per
 * room, and one byte budget for all rooms (history-budget.ts), which takes the
 * oldest messages of all first.
 */
export class Room implements HistoryHolder {
  readonly name: string;
  readonly #members = new Set<Session>();
  /** The members' names in order of their keys (case-insensitive), kept so on every change: a page of them is a slice. */
  readonly #names: string[] = [];
  readonly #keys: string[] = [];
  /** In id order, oldest first. */
  #history: HistoryEntry[] = [];
  readonly #historyLimit: number;
  readonly #budget: HistoryBudget;

  constructor(name: string, historyLimit: number, budget: HistoryBudget) {
    this.name = name;
    this.#historyLimit = historyLimit;
    this.#budget = budget;
  }

  remember(envelope: Envelope): void {
    if (this.#historyLimit === 0) return;
    const entry = new HistoryEntry(envelope, this);
    this.#history.push(entry);
    if (this.#history.length > this.#historyLimit) this.#budget.release(this.#history.shift()!);
    this.#budget.add(entry);
  }

  /** Up to `limit` messages with ids below `before`, newest last. */
  history(before: number, limit: number): Envelope[] {
    let end = this.#history.length;
    while (end > 0 && this.#history[end - 1]!.id >= before) end--;
    return this.#history.slice(Math.max(0, end - limit), end).map((entry) => entry.envelope);
  }

  /** Takes over the history of `older`, a Room of the same name let go before this one was made: its entries are older than any here. */
  adopt(older: Room): void {
    for (const entry of older.#history) entry.holder = this;
    this.#history = older.#history.concat(this.#history);
    older.#history = [];
    const over = this.#history.length - this.#historyLimit;
    if (over > 0) for (const entry of this.#history.splice(0, over)) this.#budget.release(entry);
  }

  /** Lets the whole history go (a room no one keeps): it no longer counts in the budget. */
  forgetHistory(): void {
    for (const entry of this.#history) this.#budget.release(entry);
    this.#history = [];
  }

  /** The budget took `entry`, the oldest of all: almost always this room's first. */
  evicted(entry: HistoryEntry): void {
    if (this.#history[0] === entry) this.#history.shift();
    else {
      const at = this.#history.indexOf(entry);
      if (at !== -1) this.#history.splice(at, 1);
    }
  }

  /** Who is in the room; changed only through addMember/removeMember, which keep the names in order too. */
  get members(): ReadonlySet<Session> {
    return this.#members;
  }

  addMember(session: Session): void {
    if (this.#members.has(session)) return;
    this.#members.add(session);
    const at = this.#indexOf(session.key);
    this.#keys.splice(at, 0, session.key);
    this.#names.splice(at, 0, session.name);
  }

  removeMember(session: Session): void {
    if (!this.#members.delete(session)) return;
    const at = this.#indexOf(session.key);
    this.#keys.splice(at, 1);
    this.#names.splice(at, 1);
  }

  /** Every member name, case-insensitively in code-point order: for tests. Answers carry pages (membersPage). */
  memberNames(): string[] {
    return this.#names.slice();
  }

  /**
   * Up to `limit` member names, in the order of memberNames(), after the name
   * `after` (compared case-insensitively, as names are), and where the next page
   * starts. One answer never carries the whole list of a large room (README, limits).
   */
  membersPage(after: string | undefined, limit: number): MemberPage {
    // Past every key equal to `after`: a name is taken case-insensitively, so at most one.
    let start = 0;
    if (after !== undefined) {
      start = this.#indexOf(after.toLowerCase());
      if (this.#keys[start] === after.toLowerCase()) start++;
    }
    const members = this.#names.slice(start, start + limit);
    return start + limit < this.#names.length ? { members, next: members.at(-1)! } : { members };
  }

  /** Where `key` is or would go in #keys (binary search). */
  #indexOf(key: string): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
