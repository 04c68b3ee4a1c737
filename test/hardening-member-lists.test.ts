import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { ChatOptions } from "../src/index.js";
import { apiPoll } from "./core-helpers.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { redisPerTest } from "./redis-harness.js";

/**
 * What one answer lists of a room's members has a bound (README, limits): `/who`
 * names the first 50 and counts the rest, GET /api/rooms/R pages with
 * `limit`/`after`/`next` as GET /api/rooms does, and a join answers the first
 * page, in one process and with a shared log alike.
 */

const startRedis = redisPerTest();
const servers: TestServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Many sessions from 127.0.0.1: no per-address cap, no presence notices to wade through. */
const MANY: ChatOptions = { maxSessionsPerIp: 0, presenceLimit: 0 };

async function start(options: ChatOptions = {}): Promise<TestServer> {
  const s = await startServer({ ...MANY, ...options });
  servers.push(s);
  return s;
}

/** Member `i`'s name: every third in upper case, so the order is case-insensitive by construction. */
function member(i: number): string {
  return `${i % 3 === 0 ? "M" : "m"}${String(i).padStart(4, "0")}`;
}

type JoinAnswer = { token: string; name: string; room: string; members: string[]; next?: string };
type MemberPage = { name: string; members: string[]; next?: string };

/** Joins members `from`..`to - 1` to `room`, 16 at a time, each at a server `urls` picks; returns the join answers. */
async function joinMany(urls: readonly string[], room: string, from: number, to: number): Promise<JoinAnswer[]> {
  const answers: JoinAnswer[] = [];
  for (let start = from; start < to; start += 16) {
    const batch = Array.from({ length: Math.min(16, to - start) }, (_, k) => start + k);
    const results = await Promise.all(batch.map((i) => postJson(`${urls[i % urls.length]}/api/join`, { name: member(i), room })));
    for (const r of results) {
      expect(r.status).toBe(200);
      answers.push(r.body as JoinAnswer);
    }
  }
  return answers;
}

async function page(url: string, room: string, query = ""): Promise<MemberPage> {
  const res = await fetch(`${url}/api/rooms/${room}${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as MemberPage;
}

/** Every member of `room` through GET /api/rooms/R, following `next` (at most `maxPages` requests), and the pages' sizes. */
async function walk(url: string, room: string, limit?: number, maxPages = 100): Promise<{ names: string[]; sizes: number[] }> {
  const names: string[] = [];
  const sizes: number[] = [];
  let after: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const query = new URLSearchParams();
    if (limit !== undefined) query.set("limit", String(limit));
    if (after !== undefined) query.set("after", after);
    const p = await page(url, room, query.size ? `?${query}` : "");
    names.push(...p.members);
    sizes.push(p.members.length);
    if (p.next === undefined) return { names, sizes };
    expect(p.next).toBe(p.members.at(-1));
    after = p.next;
  }
  throw new Error(`more than ${maxPages} pages`);
}

function range(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, k) => member(from + k));
}

describe("member lists of a large room (one process)", () => {
  it("/who names the first 50 members and says how many more", async () => {
    const s = await start();
    await joinMany([s.url], "lobby", 0, 250);
    const asker = await joinApi(s.url, "asker");
    expect((await postJson(`${s.url}/api/messages`, { text: "/who" }, asker.auth)).status).toBe(201);
    const { messages } = await apiPoll(s.url, asker.auth, { cursor: asker.cursor, timeout: 5000 });
    const who = messages.find((m) => m.type === "system");
    // 251 members ("asker" sorts first): the first 50 named, 201 counted.
    expect(who?.text).toBe(`members of lobby: asker, ${range(0, 49).join(", ")}, and 201 more`);
  }, 30_000);

  it("GET /api/rooms/R pages members: 100 by default, ?limit= up to 1000, ?after= and next; a walk sees each once, in order", async () => {
    const s = await start();
    await joinMany([s.url], "den", 0, 1100);
    const first = await page(s.url, "den");
    expect(first).toEqual({ name: "den", members: range(0, 100), next: member(99) });
    const walked = await walk(s.url, "den");
    expect(walked.names).toEqual(range(0, 1100));
    expect(walked.sizes).toEqual([...Array<number>(11).fill(100)]);
    // Pages of 7: still each member once.
    expect((await walk(s.url, "den", 7, 200)).names).toEqual(range(0, 1100));
    // `after` compares as names do, case aside; a name no member has still finds its place.
    expect((await page(s.url, "den", `?limit=2&after=${member(41).toUpperCase()}`)).members).toEqual([member(42), member(43)]);
    expect((await page(s.url, "den", "?limit=2&after=m0041x")).members).toEqual([member(42), member(43)]);
    expect(await page(s.url, "den", `?after=${member(1099)}`)).toEqual({ name: "den", members: [] });
    // At most 1000 a page, however many are asked for.
    const big = await page(s.url, "den", "?limit=100000");
    expect(big.members).toHaveLength(1000);
    expect(big.next).toBe(member(999));
    expect((await fetch(`${s.url}/api/rooms/den?limit=x`)).status).toBe(400);
    expect((await fetch(`${s.url}/api/rooms/den?after=no%20name`)).status).toBe(400);
  }, 60_000);

  it("a join answers the first 100 members and next; the rest are a GET away", async () => {
    const s = await start();
    const answers = await joinMany([s.url], "lobby", 0, 150);
    const last = answers.at(-1)!;
    expect(last.members).toEqual(range(0, 100));
    expect(last.next).toBe(member(99));
    expect(answers[0]).toMatchObject({ members: [member(0)] });
    expect(answers[0]!.next).toBeUndefined();
    expect((await page(s.url, "lobby", `?after=${last.next}`)).members).toEqual(range(100, 150));
    // A member joining one more room with its token gets the same bounded answer.
    const more = await postJson(`${s.url}/api/join`, { name: member(0), room: "lobby" }, { authorization: `Bearer ${answers[0]!.token}` });
    expect(more.body).toMatchObject({ members: range(0, 100), next: member(99) });
  }, 30_000);
});

describe("member lists of a large room (--data-dir)", () => {
  it("after a restart, the restored room answers a join, GET /api/rooms/R and /who with bounded pages", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pollchat-members-"));
    dirs.push(dir);
    const before = await startServer({ ...MANY, dataDir: dir });
    await joinMany([before.url], "lobby", 0, 150);
    await before.close();
    const s = await start({ dataDir: dir });
    const asker = await postJson(`${s.url}/api/join`, { name: "zz-asker" });
    expect(asker.body).toMatchObject({ members: range(0, 100), next: member(99) });
    expect((await walk(s.url, "lobby", 30)).names).toEqual([...range(0, 150), "zz-asker"]);
    const auth = { authorization: `Bearer ${asker.body.token}` };
    expect((await postJson(`${s.url}/api/messages`, { text: "/who" }, auth)).status).toBe(201);
    const { messages } = await apiPoll(s.url, auth, { cursor: asker.body.cursor, timeout: 5000 });
    expect(messages.find((m) => m.type === "system")?.text).toBe(`members of lobby: ${range(0, 50).join(", ")}, and 101 more`);
  }, 30_000);
});

describe("member lists of a large room (--redis: servers sharing one log)", () => {
  it("join answers, GET /api/rooms/R and /who are bounded the same way on every process", async () => {
    const log = new MemoryLog();
    const a = await start({ sharedLog: log.client() });
    const b = await start({ sharedLog: log.client() });
    const answers = await joinMany([a.url, b.url], "lobby", 0, 160);
    const last = answers.at(-1)!;
    expect(last.members).toEqual(range(0, 100));
    expect(last.next).toBe(member(99));
    // Reads are served without catching up: a join on each process first has it apply every join before.
    const everyone = [...range(0, 160), "zz-a", "zz-b"];
    await joinApi(a.url, "zz-a");
    const asker = await joinApi(b.url, "zz-b");
    expect((await walk(b.url, "lobby", 50)).names).toEqual(everyone);
    expect((await postJson(`${a.url}/api/messages`, { text: "/who" }, asker.auth)).status).toBe(201);
    expect((await walk(a.url, "lobby")).names).toEqual(everyone);
    const { messages } = await apiPoll(b.url, asker.auth, { cursor: asker.cursor, timeout: 5000 });
    expect(messages.find((m) => m.type === "system")?.text).toBe(`members of lobby: ${range(0, 50).join(", ")}, and 112 more`);
  }, 30_000);

  it("the same on a real redis-server: a join on one process answers the first page, the rest are read on another", async () => {
    const redis = await startRedis();
    const a = await start({ redis: redis.url, logLevel: "silent" });
    const b = await start({ redis: redis.url, logLevel: "silent" });
    const answers = await joinMany([a.url, b.url], "lobby", 0, 130);
    expect(answers.at(-1)).toMatchObject({ members: range(0, 100), next: member(99) });
    // A join on each process first: it has applied every join before its own when it answers.
    const zza = await postJson(`${a.url}/api/join`, { name: "zz-a" });
    expect(zza.body).toMatchObject({ members: range(0, 100), next: member(99) });
    await joinApi(b.url, "zz-b");
    expect((await page(b.url, "lobby", `?after=${member(99)}`)).members).toEqual([...range(100, 130), "zz-a", "zz-b"]);
    expect((await walk(a.url, "lobby", 40)).names.slice(0, 131)).toEqual([...range(0, 130), "zz-a"]);
  }, 30_000);
});
