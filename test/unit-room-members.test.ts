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
});
