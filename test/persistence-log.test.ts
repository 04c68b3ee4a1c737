import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Hub } from "../src/hub.js";
import { resolveOptions, type ChatOptions } from "../src/index.js";
import { LOG_FILE, MessageLog } from "../src/store/message-log.js";
import { replay } from "../src/store/replay.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";

/** The message log in process: replay, group commit, compaction while serving, what a restart restores. */

const dirs: string[] = [];
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pollchat-log-"));
  dirs.push(dir);
  return dir;
}

async function server(dataDir: string, options: ChatOptions = {}): Promise<TestServer> {
  const s = await startServer({ dataDir, rate: 100_000, ...options });
  open.push(s);
  return s;
}

/** A hub with its log, as createChatServer makes them, with test-sized compaction. */
function hubWithLog(dir: string, options: ChatOptions & { compactMinBytes?: number } = {}): { hub: Hub; log: MessageLog } {
  const resolved = resolveOptions({ rate: 100_000, ...options });
  const log = MessageLog.open(dir, { ...resolved, compactMinBytes: options.compactMinBytes, warn: () => {} });
  const hub = new Hub(resolved, { lastId: log.lastId });
  log.attach(hub);
  open.push({ close: async () => (await log.close(), hub.close()) });
  return { hub, log };
}

async function seed(url: string, query: string): Promise<string> {
  const res = await fetch(`${url}/?${query}`);
  const body = await res.text();
  expect(res.status, body).toBe(200);
  return body;
}

type Msg = { id: number; type: string; text: string; from: string; to?: string };

async function roomHistory(url: string, room: string, query = "limit=1000"): Promise<Msg[]> {
  const res = await fetch(`${url}/api/rooms/${room}/messages?${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { messages: Msg[] }).messages;
}

describe("replay", () => {
  it("loads the complete lines of a log cut at any byte, and never throws", async () => {
    const dir = await tempDir();
    const { hub, log } = hubWithLog(dir);
    const alice = hub.sessionForName("alice", {});
    hub.sessionForName("bob", {});
    for (let i = 0; i < 6; i++) hub.post(alice, { text: i % 2 ? `@bob secret ${i}` : `héllo ✓ ${i}` });
    await log.durable();
    const data = readFileSync(join(dir, LOG_FILE));
    const options = { maxQueue: 1000, history: 1000, now: Date.now };
    const full = replay(data, options);
    expect(full.badLines).toEqual([]);
    for (let cut = 0; cut <= data.length; cut++) {
      const part = data.subarray(0, cut);
      // A cut just before a newline leaves a whole record: it loads.
      const whole = data[cut] === 0x0a ? cut + 1 : part.lastIndexOf(0x0a) + 1;
      const result = replay(part, options);
      expect(result.records).toBe(replay(data.subarray(0, whole), options).records);
      // The torn rest of a line is the one thing set aside.
      expect(result.badLines.length).toBe(whole < cut ? 1 : 0);
    }
  });

  it("skips records of the wrong shape, and foreign keys in a message never reach a client", () => {
    const lines = [
      '{"k":"head","v":1,"last":5}',
      '{"k":"msg","m":{"id":7,"type":"message","room":"lobby","from":"a","text":"hi","ts":1,"evil":"<script>"}}',
      '{"k":"msg","m":{"id":8,"type":"shout","room":"lobby","from":"a","text":"hi","ts":1}}',
      '{"k":"join","n":"__proto__","r":"lobby"}',
      "[1,2,3]",
      "null",
    ];
    const result = replay(Buffer.from(lines.join("\n")), { maxQueue: 10, history: 10, now: Date.now });
    expect(result.lastId).toBe(7);
    expect(result.badLines.map(String)).toEqual([lines[2], "[1,2,3]", "null"]);
    expect(result.unmatched).toBe(1);
    expect(result.history.get("lobby")!.map((e) => e.json)).toEqual(['{"id":7,"type":"message","room":"lobby","from":"a","text":"hi","ts":1}']);
  });
});

describe("group commit", () => {
  it("answers a post only once it is in the log, and concurrent posts share batches", async () => {
    const dir = await tempDir();
    const s = await server(dir);
    const { auth } = await joinApi(s.url, "poster");
    const posts = 200;
    const batchesBefore = s.chat.store!.stats.batches;
    const ids = await Promise.all(
      Array.from({ length: posts }, async (_, i) => {
        const answer =
          i % 2 === 0
            ? Number((await seed(s.url, `name=seeder&message=m${i}`)).slice(3))
            : (await postJson(`${s.url}/api/messages`, { text: `m${i}` }, auth)).body.id;
        // The answer came: the line is in the file already.
        expect(readFileSync(join(dir, LOG_FILE), "utf8")).toContain(`"id":${answer},`);
        return answer as number;
      }),
    );
    expect(new Set(ids).size).toBe(posts);
    const batches = s.chat.store!.stats.batches - batchesBefore;
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThanOrEqual(posts);
  });

  it("refuses to confirm once closed: a post that lands after close() is not answered as durable", async () => {
    const dir = await tempDir();
    const { hub, log } = hubWithLog(dir);
    const poster = hub.sessionForName("late", {});
    hub.post(poster, { text: "before close" });
    await log.durable();
    await log.close();
    hub.post(poster, { text: "after close" });
    await expect(log.durable()).rejects.toThrow(/closed/);
    expect(readFileSync(join(dir, LOG_FILE), "utf8")).not.toContain("after close");
  });

  it("shares one write and sync among everything accepted while the previous one was on its way", async () => {
    const dir = await tempDir();
    const { hub, log } = hubWithLog(dir);
    const alice = hub.sessionForName("alice", {});
    await log.durable();
    const before = log.stats.batches;
    const first = (hub.post(alice, { text: "first" }), log.durable());
    // The batch holding "first" is now being written; these 100 wait for the next one, together.
    await new Promise((resolve) => setImmediate(resolve));
    const rest = Array.from({ length: 100 }, (_, i) => (hub.post(alice, { text: `m${i}` }), log.durable()));
    await Promise.all([first, ...rest]);
    expect(log.stats.batches - before).toBe(2);
    expect(readFileSync(join(dir, LOG_FILE), "utf8")).toContain('"text":"m99"');
  });
});

describe("compaction while serving", () => {
  it("rewrites the log to the newest --history per room as it grows, and a restart finds them", async () => {
    const dir = await tempDir();
    let { hub, log } = hubWithLog(dir, { history: 5, compactMinBytes: 4096 });
    const alice = hub.sessionForName("alice", { room: "one" });
    const bob = hub.sessionForName("bob", { room: "two" });
    for (let i = 0; i < 300; i++) {
      hub.post(alice, { text: `one ${i}` });
      hub.post(bob, { text: `two ${i}` });
      // Both read as they go, so their queues hold little.
      hub.ack(alice, hub.lastId);
      hub.ack(bob, hub.lastId);
      if (i % 10 === 9) await log.durable();
    }
    await log.durable();
    expect(log.stats.compactions).toBeGreaterThan(0);
    const size = readFileSync(join(dir, LOG_FILE)).length;
    expect(size).toBeLessThan(2 * 4096 + 2000);
    const lastId = hub.lastId;
    await log.close();
    hub.close();

    ({ hub, log } = hubWithLog(dir, { history: 5 }));
    expect(log.loaded.setAside).toBe(0);
    expect(hub.lastId).toBeGreaterThan(lastId);
    for (const room of ["one", "two"]) {
      expect(hub.room(room)!.history(Number.MAX_SAFE_INTEGER, 100).map((e) => e.message.text)).toEqual([295, 296, 297, 298, 299].map((n) => `${room} ${n}`));
    }
    expect(hub.session("alice")!.currentRoom).toBe("one");
  });

  it("loses nothing posted while a compaction is on its way", async () => {
    const dir = await tempDir();
    let { hub, log } = hubWithLog(dir);
    const alice = hub.sessionForName("alice", {});
    for (let i = 0; i < 20; i++) hub.post(alice, { text: `before ${i}` });
    const compacted = log.compact();
    const during: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      hub.post(alice, { text: `during ${i}` });
      during.push(log.durable());
      // Some posts land in the same turn as the snapshot, some after it.
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all([compacted, ...during]);
    expect(log.stats.compactions).toBe(1);
    expect(readFileSync(join(dir, LOG_FILE), "utf8")).toMatch(/^\{"k":"head"/);
    await log.close();
    hub.close();

    ({ hub, log } = hubWithLog(dir));
    const texts = hub.room("lobby")!.history(Number.MAX_SAFE_INTEGER, 1000).filter((e) => e.message.type === "message").map((e) => e.message.text);
    expect(texts).toEqual([...Array.from({ length: 20 }, (_, i) => `before ${i}`), ...Array.from({ length: 50 }, (_, i) => `during ${i}`)]);
    // alice never read: her queue came back whole, in order.
    const queued = hub.session("alice")!.queue.peek().filter((e) => e.message.type === "message").map((e) => e.message.text);
    expect(queued).toEqual(texts);
  });
});

describe("what a restart restores", () => {
  it("private messages, system answers, the current room and txn keys", async () => {
    const dir = await tempDir();
    let s = await server(dir);
    await seed(s.url, "name=bob&timeout=0");
    await seed(s.url, "name=alice&timeout=0");
    await seed(s.url, "name=alice&message=%2Fjoin%20den");
    await seed(s.url, "name=alice&message=%40bob%20psst");
    const txnId = (await seed(s.url, "name=alice&message=once&txn=k1")).trim();
    await s.close();

    s = await server(dir);
    // alice's next post without a room goes to den, as before the restart.
    await seed(s.url, "name=alice&message=still%20here");
    expect((await roomHistory(s.url, "den")).filter((m) => m.type === "message").map((m) => m.text)).toEqual(["once", "still here"]);
    // A retried post with the same txn key posts nothing again.
    expect((await seed(s.url, "name=alice&message=once&txn=k1")).trim()).toBe(txnId);
    expect((await roomHistory(s.url, "den")).filter((m) => m.text === "once")).toHaveLength(1);
    const bob = await seed(s.url, "name=bob&timeout=0");
    expect(bob).toContain("alice -> bob : psst\n");
    const alice = await seed(s.url, "name=alice&timeout=0");
    expect(alice).toContain("* you are in den\n");
    expect(alice).toContain("alice -> bob : psst\n");
  });

  it("pages through history by before and limit, also for a room that lost its last member, across restarts", async () => {
    const dir = await tempDir();
    let s = await server(dir);
    const { auth } = await joinApi(s.url, "alice", "attic");
    const ids: number[] = [];
    for (let i = 0; i < 25; i++) ids.push((await postJson(`${s.url}/api/messages`, { text: `t${i}`, room: "attic" }, auth)).body.id);
    expect((await postJson(`${s.url}/api/leave`, { room: "attic" }, auth)).status).toBe(200);
    // The hub forgot the room; its history is kept.
    expect((await fetch(`${s.url}/api/rooms/attic`)).status).toBe(404);
    const pageAll = async (url: string): Promise<Msg[]> => {
      const pages: Msg[][] = [];
      let before = Number.MAX_SAFE_INTEGER;
      for (let n = 0; n < 20; n++) {
        const page = await roomHistory(url, "attic", `before=${before}&limit=7`);
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(7);
        pages.unshift(page);
        before = page[0]!.id;
      }
      return pages.flat();
    };
    const beforeRestart = await pageAll(s.url);
    expect(beforeRestart.filter((m) => m.type === "message").map((m) => m.id)).toEqual(ids);
    expect(beforeRestart.map((m) => m.type)).toEqual(["join", ...ids.map(() => "message"), "leave"]);
    await s.close();

    s = await server(dir);
    expect(await pageAll(s.url)).toEqual(beforeRestart);
    expect((await fetch(`${s.url}/api/rooms/nowhere/messages`)).status).toBe(404);
    // Someone comes back: the room's history comes back with it, and goes on.
    const carol = await joinApi(s.url, "carol", "attic");
    const next = (await postJson(`${s.url}/api/messages`, { text: "back", room: "attic" }, carol.auth)).body.id;
    const now = await roomHistory(s.url, "attic");
    expect(now.slice(0, beforeRestart.length)).toEqual(beforeRestart);
    expect(now.at(-1)!.id).toBe(next);
  });

  it("keeps a queue within --max-queue across a restart, with its gap", async () => {
    const dir = await tempDir();
    let s = await server(dir, { maxQueue: 3 });
    await seed(s.url, "name=bob&timeout=0");
    for (let i = 0; i < 6; i++) await seed(s.url, `name=alice&message=n${i}`);
    await s.close();
    s = await server(dir, { maxQueue: 3 });
    const lines = await seed(s.url, "name=bob&timeout=0");
    expect(lines).toBe("* 4 messages missed\nalice : n3\nalice : n4\nalice : n5\n");
  });

  it("writes the history and queues of a busy start into a file no larger than they need", async () => {
    const dir = await tempDir();
    let s = await server(dir, { history: 3 });
    for (let i = 0; i < 30; i++) await seed(s.url, `name=alice&message=x${i}`);
    await seed(s.url, "name=alice&timeout=0");
    await s.close();
    s = await server(dir, { history: 3 });
    const lines = (await readFile(join(dir, LOG_FILE), "utf8")).trim().split("\n");
    // head, 3 kept messages, alice's session (her queue is empty: she read everything)
    expect(lines.map((l) => JSON.parse(l).k)).toEqual(["head", "hist", "hist", "hist", "sess"]);
  });
});
