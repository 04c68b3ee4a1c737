import { describe, expect, it } from "vitest";
import { Hub } from "../src/hub.js";
import { resolveOptions } from "../src/index.js";
import { SessionQueue } from "../src/session-queue.js";
import { parseRecord, sessionLine, sessionStartLine } from "../src/store/records.js";
import { replay } from "../src/store/replay.js";
import { codeOf } from "./helpers.js";

/*
 * What a session records of its making (spec §4, §8): whether a proof made it, and the address
 * that did; read back by a store, read as unproven and of no address from an older log.
 */

const identity = { name: "ceo", rooms: undefined };

describe("a session's proof and address", () => {
  it("a proof never joins a session no proof made; it joins the one a proof made", () => {
    const hub = new Hub(resolveOptions({ rate: 100_000 }));
    try {
      hub.restore([{ name: "ceo", token: "squatter", rooms: ["lobby"], currentRoom: "lobby", queue: new SessionQueue(10, 1) }], new Map());
      expect(codeOf(() => hub.sessionForName("ceo", { identity, requireToken: true }))).toBe("name_taken");
      expect(codeOf(() => hub.postAs("ceo", { text: "hi" }, { identity, requireToken: true }))).toBe("name_taken");
      expect(hub.session("ceo")?.token).toBe("squatter");
      hub.endUnproven();
      expect(hub.session("ceo")).toBeUndefined();
      const proven = hub.sessionForName("ceo", { identity, requireToken: true, address: "203.0.113.5" });
      expect(proven.proven).toBe(true);
      expect(hub.sessionForName("ceo", { identity, requireToken: true })).toBe(proven);
      expect(hub.hasUnproven).toBe(false);
    } finally {
      hub.close();
    }
  });

  it("the log's session lines carry both and read them back; a line without them is unproven and of no address", () => {
    const hub = new Hub(resolveOptions({ rate: 100_000 }));
    try {
      const proven = hub.sessionForName("ceo", { identity, requireToken: true, address: "203.0.113.5" });
      const plain = hub.joinWithToken("ann", "lobby", { address: "2001:db8:1:2::/64" });
      const anonymous = hub.joinWithToken("bob", "lobby");
      const lines = [sessionStartLine(proven), sessionLine(plain), sessionLine(anonymous)];
      expect(lines.map((l) => parseRecord(l))).toMatchObject([
        { k: "sess", p: 1, ip: "203.0.113.5" },
        { k: "sess", ip: "2001:db8:1:2::/64" },
        { k: "sess" },
      ]);
      const back = replay(Buffer.from(lines.join("\n")), { maxQueue: 10, history: 10, now: Date.now });
      expect(back.sessions.map((s) => [s.name, s.proven, s.address])).toEqual([
        ["ceo", true, "203.0.113.5"],
        ["ann", false, "2001:db8:1:2::/64"],
        ["bob", false, undefined],
      ]);
      for (const bad of [{ p: 2 }, { p: true }, { ip: 5 }, { ip: "" }, { ip: "x".repeat(101) }]) {
        expect(parseRecord(JSON.stringify({ k: "sess", n: "ceo", s: 1, ...bad }))).toBeUndefined();
      }
    } finally {
      hub.close();
    }
  });
});
