import { describe, expect, it } from "vitest";
import { Session } from "../src/session.js";
import { SessionQueue } from "../src/session-queue.js";
import { Cursors } from "../src/cursors.js";
import type { SessionRecord } from "../src/journal.js";
import { Envelope } from "../src/message.js";
import { TokenBucket } from "../src/rate-limiter.js";

function session(start: number): Session {
  const now = () => 0;
  return new Session({ name: "bob", token: undefined, room: "lobby", queue: new SessionQueue(10, start, now), newBucket: () => new TokenBucket(1, 1, now), now: 0 });
}

const envelope = (id: number) => new Envelope({ id, type: "message", room: "lobby", from: "al", text: "hi", ts: 0 });

describe("Cursors", () => {
  it("never acknowledges past the newest id delivered, and journals only a move", () => {
    const records: SessionRecord[] = [];
    const cursors = new Cursors(100, (record) => records.push(record));
    const bob = session(100);
    bob.queue.push(envelope(101));
    cursors.delivered(101);
    cursors.ack(bob, 1_000);
    expect(bob.queue.since).toBe(101);
    expect(records.map((r) => r.kind)).toEqual(["ack"]);
    cursors.resume(bob, 101);
    expect(records).toHaveLength(1);
  });

  it("tells the last id handed out, or with nothing queued the newest delivered", () => {
    const cursors = new Cursors(100, () => {});
    const bob = session(100);
    expect(cursors.cursorAfter(bob, [envelope(99)])).toBe(99);
    cursors.delivered(105);
    cursors.delivered(103);
    expect(cursors.deliveredUpTo).toBe(105);
    expect(cursors.cursorAfter(bob, [])).toBe(105);
  });
});
