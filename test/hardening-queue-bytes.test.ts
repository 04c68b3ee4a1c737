import { describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { historyBytes } from "../src/history-budget.js";
import type { ChatMessage, ChatOptions } from "../src/index.js";
import { Envelope } from "../src/message.js";
import { apiPoll } from "./core-helpers.js";
import { until } from "./redis-harness.js";
import { postJson, serversPerTest, startServer, type TestServer } from "./helpers.js";

/**
 * Queued bytes are bounded (spec §8, README "Limits against slow and abusive
 * clients"): one session's queue by --max-queue-bytes, all queues together by
 * --max-queued-bytes, with a share per creating address (--max-queued-bytes-per-ip).
 * Past any of them the oldest go into the reader's gap; an address's flood never
 * cuts another address's queue. On every engine: one process, --data-dir (and
 * its restore), and a cluster of two processes on one shared log (the memory log).
 */

const { start, stop, tempDir } = serversPerTest("queue-bytes");

const KIB = 1024;
/** A private message of the default --max-message: the most one post can queue. */
const BIG = "x".repeat(2000);
const A = "203.0.113.1";
const B = "198.51.100.2";

type Engine = "local" | "data-dir" | "cluster";
const ENGINES: Engine[] = ["local", "data-dir", "cluster"];

/** Where clients post and where they read: one server, or (cluster) two processes on one log, posting on one, reading on the other. */
interface Deployment {
  post: string;
  read: string;
  /** Resolves once the reading process has applied everything appended (cluster), at once otherwise. */
  settled(): Promise<void>;
}

async function deploy(engine: Engine, options: ChatOptions): Promise<Deployment> {
  const base: ChatOptions = { rate: 1000, trustProxy: true, ...options };
  if (engine !== "cluster") {
    const s = await start(engine === "data-dir" ? { ...base, dataDir: await tempDir() } : base);
    return { post: s.url, read: s.url, settled: async () => {} };
  }
  const log = new MemoryLog();
  const writer = await start({ ...base, sharedLog: log.client() });
  const reader = await start({ ...base, sharedLog: log.client() });
  const settled = async (): Promise<void> => {
    const want = log.entries.length;
    for (let i = 0; i < 500; i++) {
      const metrics = await (await fetch(`${reader.url}/metrics`)).text();
      if (Number(/^pollchat_redis_applied_total (\d+)/m.exec(metrics)![1]) >= want) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error("the reading process did not catch up");
  };
  return { post: writer.url, read: reader.url, settled };
}

/** Joins `name` into `room` from `address` (X-Forwarded-For, with --trust-proxy); returns its auth header. */
async function join(url: string, name: string, room: string, address: string): Promise<Record<string, string>> {
  const r = await postJson(`${url}/api/join`, { name, room }, { "x-forwarded-for": address });
  if (r.status !== 200) throw new Error(`join ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  return { authorization: `Bearer ${r.body.token}` };
}

async function sendPrivate(url: string, auth: Record<string, string>, to: string, text = BIG): Promise<void> {
  const r = await postJson(`${url}/api/messages`, { text, to }, auth);
  if (r.status !== 201) throw new Error(`private to ${to}: ${r.status} ${JSON.stringify(r.body)}`);
}

/** What one poll (no cursor, no wait) hands a reader: its queue, whole while under the 1 MiB answer. */
async function queueOf(url: string, auth: Record<string, string>): Promise<{ messages: ChatMessage[]; bytes: number; missed: number }> {
  const { status, messages } = await apiPoll(url, auth, { timeout: 0 });
  expect(status).toBe(200);
  const kept = messages.filter((m) => m.type !== "gap");
  const bytes = kept.reduce((sum, m) => sum + historyBytes(new Envelope(m)), 0);
  const missed = messages.filter((m) => m.type === "gap").reduce((sum, m) => sum + (m.missed ?? 0), 0);
  return { messages: kept, bytes, missed };
}

describe.each(ENGINES)("queued bytes (%s)", (engine) => {
  it("a flood of maximum-size private messages to one session: its queue stays under --max-queue-bytes and the reader gets a gap with the count", async () => {
    const d = await deploy(engine, { maxQueueBytes: 64 * KIB });
    const bob = await join(d.post, "bob", "b", B);
    const eve = await join(d.post, "eve", "e", A);
    for (let i = 0; i < 40; i++) await sendPrivate(d.post, eve, "bob", `${i} ${BIG}`.slice(0, 2000));
    await d.settled();
    const q = await queueOf(d.read, bob);
    expect(q.bytes).toBeLessThanOrEqual(64 * KIB);
    expect(q.bytes).toBeGreaterThan(64 * KIB - 5 * KIB); // full up to one message
    expect(q.missed).toBeGreaterThan(0);
    // Bob's queue held his own join notice, then the 40: the oldest went, the newest are kept, in order.
    expect(q.missed + q.messages.length).toBe(41);
    expect(q.messages.every((m) => m.type === "private")).toBe(true);
    expect(q.messages.map((m) => Number(m.text.split(" ")[0]))).toEqual(Array.from({ length: q.messages.length }, (_, i) => 40 - q.messages.length + i));
  }, 30_000);

  for (const cap of ["share", "total"] as const) {
    it(`one address's flood stays within its ${cap === "share" ? "share (--max-queued-bytes-per-ip)" : "part of the total (--max-queued-bytes)"}: its own oldest go, another address's queue is not cut`, async () => {
      const caps: ChatOptions =
        cap === "share"
          ? { maxQueueBytes: 64 * KIB, maxQueuedBytesPerIp: 128 * KIB, maxQueuedBytes: 1024 * KIB }
          : { maxQueueBytes: 64 * KIB, maxQueuedBytesPerIp: 0, maxQueuedBytes: 192 * KIB };
      const d = await deploy(engine, caps);
      // Address B first: bob's messages are the oldest of all queued, the first a wrong choice would drop.
      const bob = await join(d.post, "bob", "b", B);
      const carol = await join(d.post, "carol", "b", B);
      for (let i = 0; i < 10; i++) await sendPrivate(d.post, carol, "bob");
      const eve = await join(d.post, "eve", "a", A);
      const readers = [];
      for (let r = 0; r < 4; r++) readers.push(await join(d.post, `a${r}`, "a", A));
      for (let i = 0; i < 30; i++) for (let r = 0; r < 4; r++) await sendPrivate(d.post, eve, `a${r}`);
      await d.settled();

      const bobs = await queueOf(d.read, bob);
      expect(bobs.missed).toBe(0);
      expect(bobs.messages.filter((m) => m.type === "private")).toHaveLength(10);

      let held = 0;
      let missed = 0;
      for (const auth of [eve, ...readers]) {
        const q = await queueOf(d.read, auth);
        held += q.bytes;
        missed += q.missed;
      }
      expect(missed).toBeGreaterThan(0);
      if (cap === "share") expect(held).toBeLessThanOrEqual(128 * KIB);
      else expect(held + bobs.bytes).toBeLessThanOrEqual(192 * KIB);
    }, 60_000);
  }
});

describe("queued bytes at a --data-dir restore", () => {
  it("a log holding more than the caps allow (caps lowered since) is restored within them: per queue and in all", async () => {
    const dir = await tempDir();
    let s = await start({ dataDir: dir, rate: 1000, maxQueueBytes: 16 * 1024 * KIB });
    const bob = await join(s.url, "bob", "b", "127.0.0.1");
    const dan = await join(s.url, "dan", "b", "127.0.0.1");
    const eve = await join(s.url, "eve", "e", "127.0.0.1");
    for (let i = 0; i < 40; i++) {
      await sendPrivate(s.url, eve, "bob");
      await sendPrivate(s.url, eve, "dan");
    }
    await stop(s);
    s = await start({ dataDir: dir, rate: 1000, maxQueueBytes: 64 * KIB, maxQueuedBytes: 96 * KIB });
    const bobs = await queueOf(s.url, bob);
    const dans = await queueOf(s.url, dan);
    const eves = await queueOf(s.url, eve);
    for (const q of [bobs, dans, eves]) {
      expect(q.bytes).toBeLessThanOrEqual(64 * KIB);
      expect(q.missed).toBeGreaterThan(0);
    }
    expect(bobs.bytes + dans.bytes + eves.bytes).toBeLessThanOrEqual(96 * KIB);
    // Bob's queue held his join notice, dan's, and the 40: each one kept or counted in the gap.
    expect(bobs.missed + bobs.messages.length).toBe(42);
  }, 60_000);
});

describe("queued bytes: every replica drops the same message", () => {
  // One room message sits in each member's queue with one id: which queue loses it is a tie,
  // settled by the session's key, so a process started from a snapshot (its queues restored in
  // another order than the entries built them) drops what the process that applied every entry drops.
  for (const firstAck of ["ann", "bob"] as const) {
    it(`two sessions of one address past its share (${firstAck} acknowledges first): a process started from a snapshot gives the same gaps`, async () => {
      const text = "y".repeat(1500);
      const per = historyBytes(new Envelope({ id: 100, type: "message", room: "r", from: "pat", text, ts: 0 }));
      const options: ChatOptions = { rate: 1000, trustProxy: true, maxQueuedBytesPerIp: 3 * per + Math.floor(per / 2) };
      const log = new MemoryLog();
      const a = await start({ ...options, sharedLog: log.client() });
      const auth = { ann: await join(a.url, "ann", "r", A), bob: await join(a.url, "bob", "r", A) };
      const pat = await join(a.url, "pat", "r", B);
      const tokenOf = (who: "ann" | "bob"): string => auth[who].authorization.slice("Bearer ".length);
      const sinceOn = (s: TestServer, who: "ann" | "bob"): number => s.chat.hub.sessionByToken(tokenOf(who))!.queue.since;
      const ack = async (who: "ann" | "bob", upTo: number): Promise<void> => {
        expect((await apiPoll(a.url, auth[who], { cursor: upTo, timeout: 0 })).status).toBe(200);
        expect(await until(async () => sinceOn(a, who) >= upTo)).toBe(true);
      };
      const post = async (): Promise<number> => {
        const r = await postJson(`${a.url}/api/messages`, { text }, pat);
        expect(r.status).toBe(201);
        return r.body.id as number;
      };
      // Both start empty: everything so far acknowledged.
      for (const who of ["ann", "bob"] as const) await ack(who, a.chat.hub.lastId);
      const secondAck = firstAck === "ann" ? "bob" : "ann";
      const m1 = await post();
      await ack(firstAck, m1);
      await post();
      await ack(secondAck, m1);
      expect(await a.chat.cluster!.saver()!.check(true)).toBe(true);
      const late = await start({ ...options, sharedLog: log.client() });
      const m3 = await post(); // four held by address A, its share three and a half
      expect(await until(async () => late.chat.hub.lastId >= m3)).toBe(true);
      const held = (s: TestServer): string[] =>
        (["ann", "bob"] as const).map((who) =>
          s.chat.hub
            .sessionByToken(tokenOf(who))!
            .queue.peek()
            .map((e) => (e.message.type === "gap" ? "gap" : e.id))
            .join(","),
        );
      expect(held(late)).toEqual(held(a));
      expect(held(a).filter((q) => q.startsWith("gap"))).toHaveLength(1);
    }, 30_000);
  }
});

describe("the queued bytes' caps in a cluster's agreed limits", () => {
  it("a limits key written without them (at their defaults, or by an older process) lets processes at the defaults join; another value is refused in one line", async () => {
    const log = new MemoryLog();
    await start({ sharedLog: log.client() });
    // At their defaults they are left out of the key, as a process that predates them wrote it.
    expect(JSON.parse(await log.client().agree("limits", "{}"))).not.toHaveProperty("maxQueuedBytes");
    await start({ sharedLog: log.client() });
    await expect(startServer({ sharedLog: log.client(), maxQueuedBytes: 1024 * KIB })).rejects.toThrow(
      /maxQueuedBytes 1048576 \(the cluster's: 268435456\)/,
    );
  });
});
