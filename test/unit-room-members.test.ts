import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULTS, Hub } from "../src/index.js";

/** Room member lists, kept in order as members come and go instead of sorted on every listing (issue 14). */

const hubs: Hub[] = [];
afterEach(() => {
  for (const hub of hubs.splice(0)) hub.close();
});

function newHub(): Hub {
  const hub = new Hub({ ...DEFAULTS, presenceLimit: 0, rate: 1_000_000, maxSessionsPerIp: 0 });
  hubs.push(hub);
  return hub;
}

/** What memberNames() must equal: every member once, case-insensitively in code-point order. */
function expected(names: Iterable<string>): string[] {
  const key = (name: string): string => name.toLowerCase();
  return [...names].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

describe("Room member names", () => {
  it("are listed case-insensitively, whatever order members joined in", () => {
    const hub = newHub();
    for (const name of ["Dave", "alice", "carol", "Bob"]) hub.sessionForName(name, {});
    expect(hub.room("lobby")!.memberNames()).toEqual(["alice", "Bob", "carol", "Dave"]);
  });

  it("stay in order and exact through any sequence of joins, leaves and ended sessions", () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_.-]{1,6}$/);
    const action = fc.record({ kind: fc.constantFrom("join", "leave", "end"), name });
    fc.assert(
      fc.property(fc.array(action, { maxLength: 60 }), (actions) => {
        const hub = newHub();
        const inRoom = new Map<string, string>(); // key -> name as the member wrote it
        for (const { kind, name: raw } of actions) {
          const key = raw.toLowerCase();
          const session = hub.session(raw);
          if (kind === "join") {
            const joined = session ?? hub.sessionForName(raw, {});
            hub.join(joined, "dev");
            inRoom.set(key, joined.name);
          } else if (kind === "leave" && session !== undefined && inRoom.has(key)) {
            hub.leave(session, "dev");
            inRoom.delete(key);
          } else if (kind === "end" && session !== undefined) {
            hub.endSession(session, "left");
            inRoom.delete(key);
          }
          const room = hub.room("dev");
          expect(room?.memberNames() ?? []).toEqual(expected(inRoom.values()));
          expect(room?.members.size ?? 0).toBe(inRoom.size);
        }
        hub.close();
      }),
      { numRuns: 200 },
    );
  });

  it("come in pages that list each member once, in order, whatever the page size and however `after` is written", () => {
    const names = fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_.-]{1,5}$/), { selector: (n) => n.toLowerCase(), maxLength: 40 });
    fc.assert(
      fc.property(names, fc.integer({ min: 1, max: 9 }), fc.boolean(), (joined, limit, upper) => {
        const hub = newHub();
        for (const name of joined) hub.join(hub.sessionForName(name, {}), "dev");
        const room = hub.room("dev");
        const all = room?.memberNames() ?? [];
        const paged: string[] = [];
        let after: string | undefined;
        for (let i = 0; room && i <= all.length; i++) {
          const page = room.membersPage(after === undefined ? undefined : upper ? after.toUpperCase() : after, limit);
          expect(page.members.length).toBeLessThanOrEqual(limit);
          paged.push(...page.members);
          if (page.next === undefined) break;
          after = page.next;
        }
        expect(paged).toEqual(expected(joined));
        hub.close();
      }),
      { numRuns: 200 },
    );
  });
});
