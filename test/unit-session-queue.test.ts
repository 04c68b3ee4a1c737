import { describe, expect, it } from "vitest";
import { SessionQueue } from "../src/session-queue.js";
import { Envelope, type ChatMessage } from "../src/message.js";

function msg(id: number, text = `m${id}`): Envelope {
  return new Envelope({ id, type: "message", room: "lobby", from: "alice", text, ts: 0 });
}

function view(q: SessionQueue): (string | number | null | undefined)[][] {
  return q.peek().map((e) => {
    const m: ChatMessage = e.message;
    return m.type === "gap" ? ["gap", m.id, m.missed] : [m.type, m.id];
  });
}

describe("SessionQueue", () => {
  it("keeps messages in order and reports its length, since and last id", () => {
    const q = new SessionQueue(10, 100, () => 5);
    expect(q.length).toBe(0);
    expect(q.since).toBe(100);
    expect(q.lastId).toBe(100);
    q.push(msg(101));
    q.push(msg(102));
    expect(q.length).toBe(2);
    expect(q.lastId).toBe(102);
    expect(view(q)).toEqual([
      ["message", 101],
      ["message", 102],
    ]);
  });

  it("acknowledges everything up to a cursor and moves since forward only", () => {
    const q = new SessionQueue(10, 100);
    for (const id of [101, 102, 103]) q.push(msg(id));
    q.ack(102);
    expect(view(q)).toEqual([["message", 103]]);
    expect(q.since).toBe(102);
    q.ack(50);
    expect(q.since).toBe(102);
    expect(q.length).toBe(1);
    q.ack(200);
    expect(q.length).toBe(0);
    expect(q.since).toBe(200);
  });

  it("hands out a copy: later pushes do not change an answer being written", () => {
    const q = new SessionQueue(10, 0);
    q.push(msg(1));
    const answer = q.peek();
    q.push(msg(2));
    expect(answer.map((e) => e.id)).toEqual([1]);
    expect(q.length).toBe(2);
  });

  it("drops the oldest past the bound into one gap entry that counts them", () => {
    const q = new SessionQueue(2, 0, () => 42);
    expect(q.push(msg(1))).toBe(0);
    expect(q.push(msg(2))).toBe(0);
    expect(q.push(msg(3))).toBe(1);
    expect(view(q)).toEqual([
      ["gap", 1, 1],
      ["message", 2],
      ["message", 3],
    ]);
    expect(q.push(msg(4))).toBe(1);
    expect(q.push(msg(5))).toBe(1);
    expect(view(q)).toEqual([
      ["gap", 3, 3],
      ["message", 4],
      ["message", 5],
    ]);
    const gap = q.peek()[0]!.message;
    expect(gap).toMatchObject({ type: "gap", text: "3 messages missed", ts: 42, room: "", from: "" });
  });

  it("lets a cursor acknowledge across a gap entry", () => {
    const q = new SessionQueue(1, 0);
    q.push(msg(1));
    q.push(msg(2));
    expect(view(q)).toEqual([
      ["gap", 1, 1],
      ["message", 2],
    ]);
    q.ack(1);
    expect(view(q)).toEqual([["message", 2]]);
  });

  it("resumes from a cursor it can honour without a gap, and from cursor 0 without one", () => {
    const q = new SessionQueue(10, 100);
    q.push(msg(101));
    q.push(msg(102));
    q.resumeFrom(101);
    expect(view(q)).toEqual([["message", 102]]);
    const fresh = new SessionQueue(10, 100);
    fresh.resumeFrom(0);
    expect(fresh.length).toBe(0);
  });

  it("answers a cursor older than what it keeps with a gap of unknown size first", () => {
    const q = new SessionQueue(10, 500, () => 7);
    q.push(msg(501));
    q.resumeFrom(300);
    expect(view(q)).toEqual([
      ["gap", 500, null],
      ["message", 501],
    ]);
    expect(q.peek()[0]!.message.text).toBe("some messages missed");
    // A second stale resume merges into the one gap entry.
    q.resumeFrom(300);
    expect(view(q)).toEqual([
      ["gap", 500, null],
      ["message", 501],
    ]);
  });

  it("turns a counted gap into an unknown one when a stale cursor adds to it", () => {
    const q = new SessionQueue(1, 10);
    q.push(msg(11));
    q.push(msg(12));
    expect(view(q)[0]).toEqual(["gap", 11, 1]);
    q.resumeFrom(5);
    expect(view(q)).toEqual([
      ["gap", 11, null],
      ["message", 12],
    ]);
  });
});
