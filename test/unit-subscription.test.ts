import { afterEach, describe, expect, it } from "vitest";
import { DEFAULTS, Hub } from "../src/index.js";

/** Issue 11, item 1: the one seam every transport reads a session's queue through. */

const hubs: Hub[] = [];
afterEach(() => {
  for (const hub of hubs.splice(0)) hub.close();
});

function newHub(): Hub {
  const hub = new Hub({ ...DEFAULTS, presenceLimit: 0 });
  hubs.push(hub);
  return hub;
}

const turn = (): Promise<void> => Promise.resolve();
const texts = (entries: readonly { message: { text: string } }[]): string[] => entries.map((e) => e.message.text);

describe("Subscription", () => {
  it("pending() is what is queued, in order; pending(after) only what is newer", () => {
    const hub = newHub();
    const alice = hub.sessionForName("alice", {});
    const bob = hub.sessionForName("bob", {});
    const first = hub.post(alice, { text: "one" });
    hub.post(alice, { text: "two" });
    const sub = hub.open(bob);
    expect(sub.queued).toBe(2);
    expect(texts(sub.pending())).toEqual(["one", "two"]);
    expect(texts(sub.pending(first))).toEqual(["two"]);
  });

  it("opening with a cursor acknowledges what is at or below it", () => {
    const hub = newHub();
    const alice = hub.sessionForName("alice", {});
    const bob = hub.sessionForName("bob", {});
    const first = hub.post(alice, { text: "one" });
    hub.post(alice, { text: "two" });
    expect(texts(hub.open(bob, { cursor: first }).pending())).toEqual(["two"]);
  });

  it("a cursor past what was delivered is clamped to it", () => {
    const hub = newHub();
    const alice = hub.sessionForName("alice", {});
    const bob = hub.sessionForName("bob", {});
    const one = hub.post(alice, { text: "one" });
    const sub = hub.open(bob, { cursor: Number.MAX_SAFE_INTEGER });
    expect(sub.pending()).toEqual([]);
    expect(sub.cursorAfter([])).toBe(one);
    expect(bob.queue.since).toBe(one);
  });

  it("ack(id) takes entries out; ack(id, keep) keeps the newest `keep` of them queued", () => {
    const hub = newHub();
    const alice = hub.sessionForName("alice", {});
    const bob = hub.sessionForName("bob", {});
    hub.post(alice, { text: "one" });
    hub.post(alice, { text: "two" });
    const three = hub.post(alice, { text: "three" });
    const sub = hub.open(bob);
    sub.ack(three, 2);
    expect(texts(sub.pending())).toEqual(["two", "three"]);
    sub.ack(three, 1);
    expect(texts(sub.pending())).toEqual(["three"]);
    sub.ack(three);
    expect(sub.pending()).toEqual([]);
    expect(sub.cursorAfter([])).toBe(three);
  });

  it("onWake runs once per turn, after the turn's publishes are queued, for recipients only, and counts presence until close()", async () => {
    const hub = newHub();
    const alice = hub.sessionForName("alice", { room: "den" });
    const bob = hub.sessionForName("bob", { room: "den" });
    const carol = hub.sessionForName("carol", { room: "hall" });
    const seen: string[][] = [];
    const bobs = hub.open(bob);
    bobs.onWake(() => seen.push(texts(bobs.pending())));
    let carolWoken = 0;
    hub.open(carol).onWake(() => carolWoken++);
    expect(bob.presenceHolds).toBe(1);
    hub.post(alice, { text: "one" });
    hub.post(alice, { text: "two" });
    expect(seen).toEqual([]); // not in the middle of the turn
    await turn();
    expect(seen).toEqual([["one", "two"]]); // once for the turn, not once per message
    expect(carolWoken).toBe(0);
    bobs.close();
    bobs.close(); // idempotent
    expect(bob.presenceHolds).toBe(0);
    expect(bob.wakerCount).toBe(0);
    const before = seen.length;
    hub.post(alice, { text: "three" });
    await turn();
    expect(seen.length).toBe(before);
  });

  it("wakes its subscribers when the session ends, and says so", async () => {
    const hub = newHub();
    const bob = hub.sessionForName("bob", {});
    const sub = hub.open(bob);
    let woken = 0;
    sub.onWake(() => woken++);
    hub.endSession(bob, "left");
    await turn();
    expect(woken).toBe(1);
    expect(sub.ended).toBe(true);
    sub.close();
  });

  it("a session keeps several subscribers and wakes each (a post to a room of 5 wakes 5)", async () => {
    const hub = newHub();
    const alice = hub.sessionForName("alice", {});
    const bob = hub.sessionForName("bob", {});
    const subs = [hub.open(bob), hub.open(bob), hub.open(bob)];
    let woken = 0;
    for (const sub of subs) sub.onWake(() => woken++);
    expect(bob.wakerCount).toBe(3);
    expect(bob.presenceHolds).toBe(3);
    subs[1]!.close();
    hub.post(alice, { text: "hi" });
    await turn();
    expect(woken).toBe(2);
    for (const sub of subs) sub.close();
    expect(bob.wakerCount).toBe(0);
    expect(bob.presenceHolds).toBe(0);
  });

  it("a subscription that never waited closes without touching presence", () => {
    const hub = newHub();
    const bob = hub.sessionForName("bob", {});
    hub.open(bob).close();
    expect(bob.presenceHolds).toBe(0);
  });
});
