import { afterEach, describe, expect, it } from "vitest";
import type { Session } from "../src/session.js";
import type { HubObserver } from "../src/hub-observer.js";
import { Hub } from "../src/hub.js";
import { resolveOptions } from "../src/index.js";
import { MemoryJournal, type ApplyMessage, type Journal, type JournalRecord, type MessageRecord } from "../src/journal.js";

/** The hub's journal (issue 11 item 2): typed records, written ahead, applied once durable. */

const hubs: Hub[] = [];
afterEach(() => {
  for (const hub of hubs.splice(0)) hub.close();
});

function newHub(): Hub {
  const hub = new Hub(resolveOptions({ rate: 100_000 }));
  hubs.push(hub);
  return hub;
}

/** A journal that keeps what it is given and applies messages only when told: a batch on its way. */
class HeldJournal implements Journal {
  readonly records: JournalRecord[] = [];
  readonly held: MessageRecord[] = [];
  writable = true;
  #apply: ApplyMessage = () => {};

  register(apply: ApplyMessage): void {
    this.#apply = apply;
  }

  checkWritable(): void {
    if (!this.writable) throw new Error("not writable");
  }

  append(record: JournalRecord): void {
    this.records.push(record);
    if (record.kind === "message") this.held.push(record);
  }

  /** The batch is durable: applied in the order appended. */
  flush(): void {
    for (const record of this.held.splice(0)) this.#apply(record);
  }
}

/** A record as a short line, to compare sequences. */
function describeRecord(r: JournalRecord): string {
  switch (r.kind) {
    case "message":
      return `message ${r.envelope.message.type} ${r.envelope.message.text} -> ${r.keys === undefined ? "room" : r.keys.join(",")}`;
    case "join":
    case "current":
    case "leave":
      return `${r.kind} ${r.session.key} ${r.room}`;
    case "txn":
      return `txn ${r.session.key} ${r.txn}`;
    case "end":
      return `end ${r.session.key} ${r.reason}`;
    default:
      return `${r.kind} ${r.session.key}`;
  }
}

describe("MemoryJournal", () => {
  it("applies a message's record at once, as it is appended, and nothing else", () => {
    const journal = new MemoryJournal();
    const applied: MessageRecord[] = [];
    journal.register((record) => applied.push(record));
    const hub = newHub();
    const alice = hub.sessionForName("alice", {});
    journal.append({ kind: "session", session: alice });
    journal.append({ kind: "ack", session: alice });
    expect(applied).toEqual([]);
    expect(() => journal.checkWritable()).not.toThrow();
  });

  it("is the hub's journal without a store: a post is in the queue as post() returns", () => {
    const hub = newHub();
    const alice = hub.sessionForName("alice", {});
    const bob = hub.sessionForName("bob", {});
    const id = hub.post(alice, { text: "hi" });
    expect(bob.queue.peek().at(-1)!.id).toBe(id);
    expect(hub.deliveredUpTo).toBe(id);
  });
});

describe("the hub writes typed records ahead", () => {
  it("journals each change in order: session, join, messages with their recipients' keys, txn, current, leave, end", () => {
    const hub = newHub();
    const journal = new HeldJournal();
    hub.useJournal(journal);
    const alice = hub.joinWithToken("alice", "lobby", undefined);
    const bob = hub.joinWithToken("bob", "lobby", undefined);
    hub.post(alice, { text: "@bob psst" });
    hub.post(alice, { text: "/nick" }); // a command: its answer goes to alice alone
    hub.post(bob, { text: "hello", txn: "t1" });
    hub.join(alice, "den");
    hub.join(alice, "lobby");
    hub.leave(alice, "den");
    hub.endSession(bob, "left");
    expect(journal.records.map(describeRecord)).toEqual([
      "session alice",
      "join alice lobby",
      "message join  -> room",
      "session bob",
      "join bob lobby",
      "message join  -> room",
      "message private psst -> bob,alice",
      expect.stringMatching(/^message system .* -> alice$/),
      "message message hello -> room",
      "txn bob t1",
      "join alice den",
      "message join  -> room",
      "current alice lobby",
      "message leave  -> room",
      "leave alice den",
      "message leave  -> room",
      "leave bob lobby",
      "end bob left",
    ]);
    const hello = journal.records.find((r): r is MessageRecord => r.kind === "message" && r.envelope.message.text === "hello")!;
    expect(hello.room?.name).toBe("lobby");
    expect(new Set(hello.recipients)).toEqual(new Set([alice, bob]));
  });

  it("applies nothing before the journal says it is durable; then history, queues and wakes, in order", async () => {
    const hub = newHub();
    const journal = new HeldJournal();
    hub.useJournal(journal);
    const alice = hub.joinWithToken("alice", "lobby", undefined);
    const bob = hub.joinWithToken("bob", "lobby", undefined);
    journal.flush();
    const queued = bob.queue.length;
    let woken = 0;
    hub.open(bob).onWake(() => woken++);
    const upTo = hub.deliveredUpTo;
    const id = hub.post(alice, { text: "held" });
    expect(bob.queue.length).toBe(queued);
    expect(hub.room("lobby")!.history(Number.MAX_SAFE_INTEGER, 10).some((e) => e.id === id)).toBe(false);
    expect(woken).toBe(0);
    expect(hub.deliveredUpTo).toBe(upTo);
    // A cursor past it is clamped: nothing on its way is acknowledged unseen.
    hub.resume(bob, id);
    expect(bob.queue.since).toBeLessThan(id);
    journal.flush();
    expect(bob.queue.peek().at(-1)!.id).toBe(id);
    expect(hub.room("lobby")!.history(Number.MAX_SAFE_INTEGER, 10).at(-1)!.id).toBe(id);
    await Promise.resolve(); // subscriptions are woken once per turn, in a microtask
    expect(woken).toBe(1);
    expect(hub.deliveredUpTo).toBe(id);
  });

  it("refuses before anything changes when the journal cannot write", () => {
    const hub = newHub();
    const journal = new HeldJournal();
    hub.useJournal(journal);
    const alice = hub.joinWithToken("alice", "lobby", undefined);
    journal.writable = false;
    const before = journal.records.length;
    expect(() => hub.post(alice, { text: "no" })).toThrow("not writable");
    expect(() => hub.join(alice, "den")).toThrow("not writable");
    expect(() => hub.joinWithToken("carol", "lobby", undefined)).toThrow("not writable");
    expect(journal.records.length).toBe(before);
    expect(hub.session("carol")).toBeUndefined();
  });

  it("does not journal a session that cannot come back (TCP); observers see every record, and drops", () => {
    const hub = newHub();
    const journal = new HeldJournal();
    hub.useJournal(journal);
    const seen: string[] = [];
    const drops: [Session, number][] = [];
    const observer: HubObserver = { record: (r) => void seen.push(describeRecord(r)), dropped: (s, _reason, n) => void drops.push([s, n]) };
    hub.observe(observer);
    const tcp = hub.joinWithToken("tcp", "lobby", { resumable: false });
    const web = hub.joinWithToken("web", "lobby", undefined);
    hub.post(tcp, { text: "/nick" });
    hub.post(web, { text: "@tcp hi" });
    hub.endSession(tcp, "left");
    const journaled = journal.records.map(describeRecord);
    expect(journaled.filter((line) => line.includes(" tcp"))).toEqual([]);
    // The command answer is for no one who can come back: no keys; the private message names only web.
    expect(journaled).toContainEqual(expect.stringMatching(/^message system .* -> $/));
    expect(journaled).toContain("message private hi -> web");
    expect(seen).toEqual(expect.arrayContaining(["session tcp", "join tcp lobby", "end tcp left"]));
    expect(drops).toEqual([]);
  });

  it("tells observers of messages a full queue dropped", () => {
    const hub = new Hub(resolveOptions({ rate: 100_000, maxQueue: 2 }));
    hubs.push(hub);
    const drops: string[] = [];
    hub.observe({ dropped: (s, reason, n) => void drops.push(`${s.name} ${reason} ${n}`) });
    const alice = hub.sessionForName("alice", {});
    hub.sessionForName("bob", {});
    for (let i = 0; i < 4; i++) hub.post(alice, { text: `m${i}` });
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d.startsWith("alice queue_full ") || d.startsWith("bob queue_full "))).toBe(true);
  });
});
