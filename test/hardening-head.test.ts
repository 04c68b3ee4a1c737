import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { ChatOptions } from "../src/index.js";
import { slowLog } from "./cluster-log-wrappers.js";
import { rawRequest } from "./core-helpers.js";
import { joinApi, postJson, serverPerTest, startServer } from "./helpers.js";
import { redisPerTest, until } from "./redis-harness.js";

/**
 * `HEAD /?name=N` answers the headers its GET (timeout=0) would get, with no
 * body and without acting (spec §3): with more queued than one answer carries
 * (1 MiB, spec §8), X-Cursor and Content-Length are those of the answer cut there.
 */

const start = serverPerTest();
const startRedis = redisPerTest();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "pollchat-head-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Messages of this many characters: 25 of them queue about 1.5 MiB. */
const BIG = 60_000;
const POSTS = 25;
const BIG_OPTIONS: ChatOptions = { rate: 100_000, maxMessage: BIG, maxQueue: 10_000 };

const ENGINES: [string, () => Promise<ChatOptions>][] = [
  ["local", async () => BIG_OPTIONS],
  ["--data-dir", async () => ({ ...BIG_OPTIONS, dataDir: tempDir() })],
  ["--redis", async () => ({ ...BIG_OPTIONS, redis: (await startRedis()).url, logLevel: "silent" })],
];

interface Answer {
  status: number;
  /** Every header but Date (which may tick between two requests), by lower-case name. */
  headers: Map<string, string>;
  body: string;
}

/** One request on a raw connection of its own (Connection: close), read to the close. */
async function exchange(port: number, method: "GET" | "HEAD", target: string): Promise<Answer> {
  const raw = await rawRequest(port, `${method} ${target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 10_000);
  const end = raw.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = raw.slice(0, end).split("\r\n");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    if (name !== "date") headers.set(name, line.slice(colon + 1).trim());
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1]), headers, body: raw.slice(end + 4) };
}

/** Posts POSTS messages of BIG characters into the lobby, each starting with its index. */
async function flood(url: string): Promise<void> {
  const { auth } = await joinApi(url, "p");
  for (let i = 0; i < POSTS; i++) {
    const r = await postJson(`${url}/api/messages`, { text: `${i}:${"m".repeat(BIG - 10)}` }, auth);
    if (r.status !== 201) throw new Error(`post ${i}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

/** The index of each flooded message in a text answer's lines, in order. */
const indexes = (body: string): number[] => [...body.matchAll(/^p : (\d+):/gm)].map((m) => Number(m[1]));

/** HEAD twice, then the GET: both HEADs match the GET's status and headers exactly, with no body. Returns the GET. */
async function headMatchesGet(port: number, target: string): Promise<Answer> {
  const head = await exchange(port, "HEAD", target);
  const again = await exchange(port, "HEAD", target);
  const got = await exchange(port, "GET", target);
  expect(got.status).toBe(200);
  expect(Number(got.headers.get("content-length"))).toBe(Buffer.byteLength(got.body, "latin1"));
  for (const h of [head, again]) {
    expect(h.status).toBe(got.status);
    expect(Object.fromEntries(h.headers)).toEqual(Object.fromEntries(got.headers));
    expect(h.body).toBe("");
  }
  return got;
}

describe.each(ENGINES)("HEAD /?name=N with more queued than one answer carries (%s)", (_engine, options) => {
  it("with a cursor: X-Cursor, Content-Length and Content-Type are the cut GET's; a GET from that cursor skips nothing", async () => {
    const server = await start(await options());
    const first = await exchange(server.port, "GET", "/?name=v&timeout=0");
    const cursor = first.headers.get("x-cursor")!;
    await flood(server.url);
    const got = await headMatchesGet(server.port, `/?name=v&cursor=${cursor}&timeout=0`);
    // The GET was cut at 1 MiB, the HEADs acknowledged nothing: it carries the flood from its first message.
    const carried = indexes(got.body);
    expect(carried[0]).toBe(0);
    expect(carried.length).toBeLessThan(POSTS);
    // Going on from the cursor both told, the next answer starts right after the last one carried.
    const next = await headMatchesGet(server.port, `/?name=v&cursor=${got.headers.get("x-cursor")}&timeout=0`);
    expect(indexes(next.body)[0]).toBe(carried.length);
    // Nothing left after the cursor, and a forged cursor past every id: empty answers, their cursors the GET's too.
    const done = await headMatchesGet(server.port, `/?name=v&cursor=${next.headers.get("x-cursor")}&timeout=0`);
    expect(done.body).toBe("");
    const forged = await headMatchesGet(server.port, "/?name=v&cursor=9999999999999999&timeout=0");
    expect(forged.body).toBe("");
    expect(forged.headers.get("x-cursor")).toBe(done.headers.get("x-cursor"));
  }, 30_000);

  it("as JSON, and without a cursor (the seed's way): the same, and the HEADs take nothing off the queue", async () => {
    const server = await start(await options());
    await exchange(server.port, "GET", "/?name=v&timeout=0");
    await flood(server.url);
    const json = await headMatchesGet(server.port, "/?name=v&format=json&cursor=0&timeout=0");
    expect(json.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const body = JSON.parse(json.body) as { messages: { id: number }[]; cursor: number };
    expect(String(body.cursor)).toBe(json.headers.get("x-cursor"));
    // Without a cursor the GET takes what it carried off the queue; each HEAD before it takes nothing.
    const firstCut = await headMatchesGet(server.port, "/?name=v&timeout=0");
    const rest = await headMatchesGet(server.port, "/?name=v&timeout=0");
    expect(indexes(firstCut.body)[0]).toBe(0);
    expect(indexes(rest.body)[0]).toBe(indexes(firstCut.body).length);
    expect(indexes(rest.body).at(-1)).toBe(POSTS - 1);
  }, 30_000);

  it("a cursor older than the queue's start: the gap entry the GET puts first is counted too", async () => {
    const server = await start(await options());
    const first = await exchange(server.port, "GET", "/?name=v&timeout=0");
    await flood(server.url);
    // Acknowledge past the join: the queue now starts above cursor 1.
    expect(Number(first.headers.get("x-cursor"))).toBeGreaterThan(1);
    await exchange(server.port, "GET", `/?name=v&cursor=${first.headers.get("x-cursor")}&timeout=0`);
    const text = await headMatchesGet(server.port, "/?name=v&cursor=1&timeout=0");
    expect(text.body.startsWith("* some messages missed\n")).toBe(true);
    const json = await headMatchesGet(server.port, "/?name=v&cursor=1&format=json&timeout=0");
    expect((JSON.parse(json.body) as { messages: { type: string }[] }).messages[0]!.type).toBe("gap");
  }, 30_000);
});

describe("HEAD on the JSON API's poll", () => {
  it("is not served: 405 with Allow: GET, and the queue is untouched", async () => {
    const server = await start();
    const v = await joinApi(server.url, "v");
    await postJson(`${server.url}/api/messages`, { text: "kept" }, v.auth);
    const head = await fetch(`${server.url}/api/poll?cursor=${v.cursor}&timeout=0`, { method: "HEAD", headers: v.auth });
    expect(head.status).toBe(405);
    expect(head.headers.get("allow")).toBe("GET");
    const res = await fetch(`${server.url}/api/poll?cursor=${v.cursor}&timeout=0`, { headers: v.auth });
    const body = (await res.json()) as { messages: { text: string }[] };
    expect(body.messages.map((m) => m.text)).toContain("kept");
  });
});

describe("HEAD on a process of several (--redis) that is behind the shared log", () => {
  it("catches up first with a cursor another process told, as the GET does", async () => {
    const log = new MemoryLog();
    const a = await startServer({ sharedLog: log.client() });
    // b applies what it reads a second late: a cursor told by a is ahead of it for that long.
    const b = await startServer({ sharedLog: slowLog(log.client(), { readDelayMs: 1000 }) });
    cleanups.push(() => a.close(), () => b.close());
    await exchange(a.port, "GET", "/?name=v&timeout=0");
    expect(await until(async () => b.chat.hub.session("v") !== undefined)).toBe(true);
    await postJson(`${a.url}/api/messages`, { text: "new" }, (await joinApi(a.url, "p")).auth);
    const told = (await exchange(a.port, "GET", "/?name=v&timeout=0")).headers.get("x-cursor")!;
    expect(Number(told)).toBeGreaterThan(b.chat.hub.deliveredUpTo);
    const got = await headMatchesGet(b.port, `/?name=v&cursor=${told}&timeout=0`);
    expect(got.headers.get("x-cursor")).toBe(told);
  }, 20_000);
});
