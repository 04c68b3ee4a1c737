import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SessionQueue } from "../src/session-queue.js";
import { Hub } from "../src/hub.js";
import { resolveOptions } from "../src/index.js";
import { Envelope, type ChatMessage } from "../src/message.js";
import type { ApplyMessage, Journal, JournalRecord, MessageRecord } from "../src/journal.js";
import { LOG_FILE } from "../src/store/message-log.js";
import { get, seedPost, seedUrl } from "./core-helpers.js";
import { stallFileSystem, type FileSystemStall } from "./hardening-cursor-stall.js";
import { serverPerTest } from "./helpers.js";

/**
 * Cursors with --data-dir (spec §5, §7): a message is held until its batch is
 * durable (write-ahead), and no cursor a client is told, nor one it sends,
 * may pass a message still on its way to its queue, or the next poll's
 * acknowledgement swallows it unseen.
 */

const start = serverPerTest();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "pollchat-cursor-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A stall of the file system, released after the test even if it fails (or every later fs call of this process would wait). */
function stall(): FileSystemStall {
  const s = stallFileSystem(tempDir());
  cleanups.push(() => s.release());
  return s;
}

const linesOf = (text: string, from: string): string[] => text.split("\n").filter((line) => line.startsWith(`${from} : `));

/** Polls as `name` with a cursor until an answer is empty; returns the cursor to go on with. */
async function drain(url: string, name: string, cursor: string): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const r = await get(seedUrl(url, { name, cursor, timeout: 0 }));
    cursor = r.headers.get("x-cursor")!;
    if (r.text === "") return cursor;
  }
  throw new Error(`${name}'s queue never emptied`);
}

/** Resolves once the server has accepted more than `count` messages (a post held for its batch counts). */
async function acceptedMoreThan(url: string, count: number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const n = await messagesAccepted(url);
    if (n > count) return n;
  }
  throw new Error(`no message accepted past ${count}`);
}

async function messagesAccepted(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^pollchat_messages_total (\d+)$/m.exec(text)![1]);
}

/** a and b in the lobby, a's queue empty: returns a's cursor. */
async function twoReaders(url: string): Promise<string> {
  const first = await get(seedUrl(url, { name: "a", timeout: 0 }));
  await get(seedUrl(url, { name: "b", timeout: 0 }));
  return drain(url, "a", first.headers.get("x-cursor")!);
}

describe("cursors never pass a message still held for its batch (--data-dir)", () => {
  it("a reader polling with its cursor and timeout=0 gets each of 300 answered posts exactly once, in order", async () => {
    const { url } = await start({ dataDir: tempDir(), rate: 100_000 });
    let cursor = await twoReaders(url);
    const got: string[] = [];
    const pollOnce = async (): Promise<void> => {
      const r = await get(seedUrl(url, { name: "a", cursor, timeout: 0 }));
      got.push(...linesOf(r.text, "b"));
      cursor = r.headers.get("x-cursor")!;
    };
    let posting = true;
    const deadline = Date.now() + 8000;
    const reader = (async () => {
      for (let i = 0; i < 100_000 && posting && Date.now() < deadline; i++) await pollOnce();
    })();
    const answered: string[] = [];
    for (let i = 0; i < 300; i++) {
      await seedPost(url, "b", `m${i}`);
      answered.push(`b : m${i}`);
    }
    posting = false;
    await reader;
    // An answered post was delivered before its answer: one more poll has the rest.
    await pollOnce();
    expect(got).toEqual(answered);
  }, 20_000); // about 2 s alone: 300 fsyncs and the reader's polls in between

  it("a held poll that times out while a batch is on its way tells a cursor below it; the next poll gets the message", async () => {
    const { url } = await start({ dataDir: tempDir(), rate: 100_000 });
    const cursor = await twoReaders(url);
    const before = await messagesAccepted(url);
    const disk = stall();
    const posted = seedPost(url, "b", "held");
    await acceptedMoreThan(url, before);
    // Held (nothing queued), then answered empty at its timeout: the message is not delivered yet.
    const timedOut = await get(seedUrl(url, { name: "a", cursor, timeout: 200 }));
    expect(timedOut.status).toBe(200);
    expect(timedOut.text).toBe("");
    const told = Number(timedOut.headers.get("x-cursor"));
    await disk.release();
    const id = await posted;
    expect(told).toBeLessThan(id);
    const next = await get(seedUrl(url, { name: "a", cursor: told, timeout: 0 }));
    expect(linesOf(next.text, "b")).toEqual(["b : held"]);
    expect(Number(next.headers.get("x-cursor"))).toBe(id);
  });

  it("a forged huge cursor, and HEAD, while a batch is on its way swallow nothing", async () => {
    const { url } = await start({ dataDir: tempDir(), rate: 100_000 });
    const cursor = await twoReaders(url);
    const before = await messagesAccepted(url);
    const disk = stall();
    const posted = seedPost(url, "b", "held");
    await acceptedMoreThan(url, before);
    const forged = await get(seedUrl(url, { name: "a", cursor: "9999999999999999", timeout: 0 }));
    expect(forged.status).toBe(200);
    expect(forged.text).toBe("");
    const told = Number(forged.headers.get("x-cursor"));
    const head = await fetch(seedUrl(url, { name: "a", cursor }), { method: "HEAD" });
    const headNobody = await fetch(seedUrl(url, { name: "nobody" }), { method: "HEAD" });
    await disk.release();
    const id = await posted;
    expect(told).toBeLessThan(id);
    expect(Number(head.headers.get("x-cursor"))).toBeLessThan(id);
    expect(Number(headNobody.headers.get("x-cursor"))).toBeLessThan(id);
    const next = await get(seedUrl(url, { name: "a", cursor: told, timeout: 0 }));
    expect(linesOf(next.text, "b")).toEqual(["b : held"]);
  });
});

/** The server's journal (its message log) with each durable message held back until release(): an append held open. */
class HoldOpen implements Journal {
  readonly #inner: Journal;
  readonly #held: MessageRecord[] = [];
  #apply: ApplyMessage = () => {};
  #open = true;

  constructor(inner: Journal) {
    this.#inner = inner;
  }

  register(apply: ApplyMessage): void {
    this.#apply = apply;
    this.#inner.register((record) => (this.#open ? void this.#held.push(record) : apply(record)));
  }

  checkWritable(): void {
    this.#inner.checkWritable();
  }

  append(record: JournalRecord): void {
    this.#inner.append(record);
  }

  get holding(): number {
    return this.#held.length;
  }

  release(): void {
    this.#open = false;
    for (const record of this.#held.splice(0)) this.#apply(record);
  }
}

describe("a held poll gets a message only once its journal append resolves (--data-dir, real sockets)", () => {
  it("the message is on disk and the post answered, yet the held poll has nothing until the append resolves", async () => {
    const dir = tempDir();
    const { url, chat } = await start({ dataDir: dir, rate: 100_000 });
    const cursor = await twoReaders(url);
    const journal = new HoldOpen(chat.store!);
    chat.hub.useJournal(journal);
    let answered = false;
    const held = get(seedUrl(url, { name: "a", cursor, timeout: 4000 })).then((r) => ((answered = true), r));
    const id = await seedPost(url, "b", "held");
    // Durable (the poster was answered after its batch), and still not applied: nothing reaches the held poll.
    expect(readFileSync(join(dir, LOG_FILE), "utf8")).toContain('"text":"held"');
    expect(journal.holding).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    expect(chat.hub.session("a")!.queue.peek().some((e) => e.id === id)).toBe(false);
    journal.release();
    const answer = await held;
    expect(linesOf(answer.text, "b")).toEqual(["b : held"]);
    expect(Number(answer.headers.get("x-cursor"))).toBe(id);
  });
});

describe("the hub's delivered-up-to id", () => {
  it("rises only as deliveries run, in id order, and passes an id whose delivery was dropped", () => {
    const hub = new Hub(resolveOptions({ rate: 100_000 }));
    cleanups.push(() => hub.close());
    const held: MessageRecord[] = [];
    let apply: ApplyMessage = () => {};
    hub.useJournal({ register: (a) => void (apply = a), checkWritable() {}, append: (r) => void (r.kind === "message" && held.push(r)) });
    const startedAt = hub.deliveredUpTo;
    const alice = hub.sessionForName("alice", {});
    const bob = hub.sessionForName("bob", {});
    const one = hub.post(alice, { text: "one" });
    const two = hub.post(alice, { text: "two" });
    expect(hub.lastId).toBe(two);
    expect(hub.deliveredUpTo).toBe(startedAt);
    // Nothing of bob's is delivered: told no cursor past his queue's start, and a forged one moves nothing.
    expect(hub.cursorAfter(bob, [])).toBe(bob.queue.since);
    const bobStart = bob.queue.since;
    hub.resume(bob, two);
    expect(bob.queue.since).toBe(bobStart);
    expect(bobStart).toBeLessThan(one);
    // The joins are delivered; "one" is dropped (a failed batch); "two" is delivered after all.
    const [aliceJoin, bobJoin, dropped, last] = held;
    apply(aliceJoin!);
    apply(bobJoin!);
    expect(hub.deliveredUpTo).toBe(bobJoin!.envelope.id);
    expect(dropped!.envelope.id).toBe(one);
    apply(last!);
    expect(hub.deliveredUpTo).toBe(two);
    expect(bob.queue.peek().map((e) => e.message.text)).toEqual(["", "two"]);
    hub.resume(bob, Number.MAX_SAFE_INTEGER);
    expect(bob.queue.length).toBe(0);
    expect(hub.cursorAfter(bob, [])).toBe(two);
  });
});

describe("SessionQueue: a message that arrives at or below `since` is not swallowed", () => {
  const message = (id: number, type: ChatMessage["type"] = "message"): Envelope => new Envelope({ id, type, room: "lobby", from: "b", text: `m${id}`, ts: 0 });

  it("goes in at its place; the ack that would pass it stops below it once, so the next answer carries it", () => {
    const queue = new SessionQueue(10, 100);
    queue.ack(110); // the client acknowledged past 105 before it arrived (only a bug elsewhere does that)
    queue.push(message(105));
    expect(queue.since).toBe(104);
    queue.push(message(111));
    // The next poll sends the cursor it was told before: 105 stays.
    queue.ack(110);
    expect(queue.peek().map((e) => e.id)).toEqual([105, 111]);
    // The poll after acknowledges what that answer carried.
    queue.ack(111);
    expect(queue.length).toBe(0);
    expect(queue.since).toBe(111);
  });

  it("a gap put back at `since` (a restored or copied queue) is an ordinary entry", () => {
    const queue = new SessionQueue(10, 100);
    queue.push(new Envelope({ id: 100, type: "gap", room: "", from: "", text: "some messages missed", ts: 0, missed: null }));
    queue.push(message(101));
    expect(queue.since).toBe(100);
    queue.ack(100);
    expect(queue.peek().map((e) => e.id)).toEqual([101]);
  });
});
