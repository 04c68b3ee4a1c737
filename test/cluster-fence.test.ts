import { beforeAll, describe, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson } from "./helpers.js";
import { redisCommand, redisPerTest, type RedisServer } from "./redis-harness.js";
import { stallProxy } from "./redis-stall-proxy.js";

/**
 * With --redis, a refusal is final (spec §8, §10; README "Several processes", Faults):
 * an append that reaches Redis after its request was answered 503 is refused by the
 * log itself; and /healthz says 503 while Redis refuses writes, and 200 again by itself.
 */

const startCli = cliPerTest();
const startRedis = redisPerTest();

beforeAll(ensureBuilt, 60_000);

type Auth = Record<string, string>;

async function processes(n: number, url: string) {
  return Promise.all(Array.from({ length: n }, () => startCli(CLI, ["--port", "0", "--redis", url, "--log-level", "error"])));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every connection Redis holds was made since `since` (ms, this clock): those of before the pause, with their unread bytes, are gone. */
async function onlyConnectionsSince(redis: RedisServer, since: number): Promise<boolean> {
  const list = String(await redisCommand(redis, ["CLIENT", "LIST"]));
  const ages = [...list.matchAll(/ age=(\d+) /g)].map((m) => Number(m[1]));
  return ages.every((age) => age * 1000 <= Date.now() - since + 1000);
}

/** The texts of the messages a cursor poll gets until `last` arrives (bounded). */
async function textsUntil(url: string, auth: Record<string, string>, cursor: number, last: string): Promise<string[]> {
  const texts: string[] = [];
  const deadline = Date.now() + 8000;
  while (!texts.includes(last) && Date.now() < deadline) {
    const res = await fetch(`${url}/api/poll?cursor=${cursor}&timeout=500`, { headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { messages: { type: string; text: string }[]; cursor: number };
    for (const m of body.messages) if (m.type === "message") texts.push(m.text);
    cursor = body.cursor;
  }
  return texts;
}

/** The three refused requests (a join of ghost, ivy's leave, ann's post "never") changed nothing on either process. */
async function nothingTookEffect(urls: string[], bob: { auth: Auth; cursor: number }, ivy: { auth: Auth }): Promise<void> {
  let after = { status: 0 };
  for (let i = 0; i < 100 && (after = await postJson(`${urls[1]}/api/messages`, { text: "after", txn: "t-after" }, bob.auth)).status !== 201; i++) await sleep(100);
  expect(after.status).toBe(201);
  for (const url of urls) {
    // The refused post reached no one; the refused leave ended nothing.
    expect(await textsUntil(url, bob.auth, bob.cursor, "after")).toEqual(["after"]);
    expect((await fetch(`${url}/api/poll?timeout=0`, { headers: ivy.auth })).status).toBe(200);
  }
  // The refused join holds no name.
  expect((await postJson(`${urls[1]}/api/join`, { name: "ghost" })).status).toBe(200);
}

describe("a 503 is final with --redis", () => {
  it("a join, a leave and a post without txn answered 503 while Redis was stopped never take effect once it runs again", async () => {
    const redis = await startRedis();
    const [a, b] = await processes(2, redis.url);
    const ann = await joinApi(a!.url, "ann");
    const ivy = await joinApi(a!.url, "ivy");
    const bob = await joinApi(b!.url, "bob");
    // Redis stops with the three appends in its socket buffers: this process gives up on them after the fate deadline.
    redis.pause();
    const answers = await Promise.all([
      postJson(`${a!.url}/api/join`, { name: "ghost" }),
      postJson(`${a!.url}/api/leave`, {}, ivy.auth),
      postJson(`${a!.url}/api/messages`, { text: "never" }, ann.auth),
    ]);
    expect(answers.map((r) => r.status)).toEqual([503, 503, 503]);
    // This process cannot tell whether Redis ran them before it stopped: the 503 says so (spec §10).
    for (const r of answers) expect([r.body.error.code, r.headers.get("x-fate")]).toEqual(["store_unavailable", "unknown"]);
    // Redis runs again and reads the bytes the dead connections left: the log refuses them (late).
    const resumedAt = Date.now();
    redis.resume();
    let gone = false;
    for (let i = 0; i < 100 && !(gone = await onlyConnectionsSince(redis, resumedAt)); i++) await sleep(100);
    expect(gone).toBe(true);
    expect(String(await redisCommand(redis, ["INFO", "errorstats"]))).toMatch(/errorstat_LATE:count=[1-9]/);
    await nothingTookEffect([a!.url, b!.url], bob, ivy);
  }, 40_000);

  it("a join, a leave and a post answered 503 once the log was read without them (their connection went dark, Redis answers on a new one) never take effect when their bytes arrive late", async () => {
    const redis = await startRedis();
    const proxy = await stallProxy(redis.port);
    try {
      const [a] = await processes(1, proxy.url);
      const [b] = await processes(1, redis.url);
      const ann = await joinApi(a!.url, "ann");
      const ivy = await joinApi(a!.url, "ivy");
      const bob = await joinApi(b!.url, "bob");
      proxy.stall();
      const answers = await Promise.all([
        postJson(`${a!.url}/api/join`, { name: "ghost" }),
        postJson(`${a!.url}/api/leave`, {}, ivy.auth),
        postJson(`${a!.url}/api/messages`, { text: "never" }, ann.auth),
      ]);
      // Process a reconnected and read the log past its tip without them: a final 503 (no X-Fate).
      for (const r of answers) expect([r.status, r.body.error.code, r.headers.get("x-fate")]).toEqual([503, "store_unavailable", null]);
      // The dark connections' bytes reach Redis now: the log refuses them (late).
      await proxy.release();
      expect(String(await redisCommand(redis, ["INFO", "errorstats"]))).toMatch(/errorstat_LATE:count=[1-9]/);
      await nothingTookEffect([a!.url, b!.url], bob, ivy);
    } finally {
      await proxy.close();
    }
  }, 40_000);
});

describe("/healthz with --redis while Redis refuses writes", () => {
  it("answers 503 with the reason while Redis is out of memory, and 200 again by itself once it takes writes", async () => {
    const redis = await startRedis();
    const [a] = await processes(1, redis.url);
    const ann = await joinApi(a!.url, "ann");
    await redisCommand(redis, ["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    await redisCommand(redis, ["CONFIG", "SET", "maxmemory", "1"]);
    const refused = await postJson(`${a!.url}/api/messages`, { text: "no room" }, ann.auth);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe("store_unavailable");
    const down = await fetch(`${a!.url}/healthz`);
    expect(down.status).toBe(503);
    expect(await down.text()).toMatch(/refuses writes.*OOM/);
    // Still refused a while later: the probe finds Redis still full.
    await sleep(600);
    expect((await fetch(`${a!.url}/healthz`)).status).toBe(503);
    await redisCommand(redis, ["CONFIG", "SET", "maxmemory", "0"]);
    // No client posts: the process finds out by itself.
    let health = 0;
    for (let i = 0; i < 200 && (health = (await fetch(`${a!.url}/healthz`)).status) !== 200; i++) await sleep(50);
    expect(health).toBe(200);
    expect((await postJson(`${a!.url}/api/messages`, { text: "room again" }, ann.auth)).status).toBe(201);
  }, 30_000);

  it("answers 503 while an append hangs (writes paused) past 2 s, and 200 once it is answered", async () => {
    const redis = await startRedis();
    const [a] = await processes(1, redis.url);
    const ann = await joinApi(a!.url, "ann");
    // 6 s: longer than the 2 s an append may hang unnoticed, shorter than its 8 s way to Redis.
    await redisCommand(redis, ["CLIENT", "PAUSE", "6000", "WRITE"]);
    const post = postJson(`${a!.url}/api/messages`, { text: "paused" }, ann.auth);
    let down = { status: 0, text: "" };
    for (let i = 0; i < 100 && down.status !== 503; i++) {
      const res = await fetch(`${a!.url}/healthz`);
      down = { status: res.status, text: await res.text() };
      if (down.status !== 503) await sleep(50);
    }
    expect(down.status).toBe(503);
    expect(down.text).toMatch(/has not answered an append/);
    // Once the pause ends the post is answered (stored, or refused as final), and /healthz says 200 again.
    expect([201, 503]).toContain((await post).status);
    let health = 0;
    for (let i = 0; i < 200 && (health = (await fetch(`${a!.url}/healthz`)).status) !== 200; i++) await sleep(50);
    expect(health).toBe(200);
  }, 30_000);
});
