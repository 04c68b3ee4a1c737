import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HistoryBudget } from "../src/history-budget.js";
import { Rooms } from "../src/rooms.js";

/**
 * The room listing's order (README, room listings) is kept as rooms come and
 * go: a listing after a change finds its page by binary search, and nothing
 * sorts every room name again.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

function newRooms(): Rooms {
  const historyBudget = new HistoryBudget(1 << 20);
  return new Rooms({ history: 10, historyBudget, maxRooms: 1_000_000, maxRoomsPerSession: 50, retryAfterSeconds: 1 });
}

/** Every name of `rooms`, through pages of `limit`, following `next`. */
function listAll(rooms: Rooms, limit: number): string[] {
  const names: string[] = [];
  let after: string | undefined;
  for (let i = 0; i < 10_000; i++) {
    const page = rooms.page(after, limit);
    names.push(...page.rooms.map((r) => r.name));
    if (page.next === undefined) return names;
    after = page.next;
  }
  throw new Error("the pages never ended");
}

/** Code-unit order, as the listing promises; computed outside the spied section. */
function inOrder(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

describe("Rooms' listing order", () => {
  it("sorts nothing when a room comes or goes: the next listing finds its place without sorting all names", () => {
    const rooms = newRooms();
    const live = new Map<string, ReturnType<Rooms["create"]>>();
    // 2,000 rooms made in a scrambled order (a multiplicative step through 0..1999).
    for (let i = 0; i < 2000; i++) {
      const name = `r${String((i * 7919) % 2000).padStart(4, "0")}`;
      live.set(name, rooms.create(name));
    }
    expect(listAll(rooms, 1000)).toEqual(inOrder(live.keys()));
    const sort = vi.spyOn(Array.prototype, "sort");
    for (let i = 0; i < 100; i++) {
      // One room goes, another comes; each change is followed by a listing, as a busy server's GET /api/rooms.
      const gone = `r${String((i * 31) % 2000).padStart(4, "0")}`;
      if (live.has(gone)) {
        rooms.empty(live.get(gone)!);
        live.delete(gone);
      }
      expect(rooms.page(undefined, 100).rooms).toHaveLength(100);
      const made = `new${String(i * 13).padStart(5, "0")}`;
      live.set(made, rooms.create(made));
      expect(rooms.page("r1000", 100).rooms[0]!.name).toBe("r1001");
    }
    expect(sort).not.toHaveBeenCalled();
    sort.mockRestore();
    expect(listAll(rooms, 1000)).toEqual(inOrder(live.keys()));
  });

  it("stays exact through any sequence of rooms made and emptied, and pages see each room once", () => {
    const name = fc.stringMatching(/^[a-z0-9_.-]{1,4}$/);
    const change = fc.record({ made: fc.boolean(), name });
    fc.assert(
      fc.property(fc.array(change, { maxLength: 80 }), fc.integer({ min: 1, max: 7 }), (changes, limit) => {
        const rooms = newRooms();
        const live = new Map<string, ReturnType<Rooms["create"]>>();
        for (const { made, name: room } of changes) {
          if (made && !live.has(room)) live.set(room, rooms.create(room));
          if (!made && live.has(room)) {
            rooms.empty(live.get(room)!);
            live.delete(room);
          }
          expect(listAll(rooms, limit)).toEqual(inOrder(live.keys()));
          expect(rooms.size).toBe(live.size);
        }
      }),
      { numRuns: 200 },
    );
  });
});
