import { afterEach, describe, expect, it } from "vitest";
import { decodeRecord } from "../src/cluster/commands.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { SharedLog } from "../src/cluster/shared-log.js";
import type { ChatOptions } from "../src/config.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";

/**
 * With --redis, anonymous junk is refused before anything is appended to the
 * shared log (each entry is applied by every process).
 */

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(log: SharedLog, options: ChatOptions = {}): Promise<string> {
  const server = await startServer({ ...options, sharedLog: log });
  servers.push(server);
  return server.url;
}

async function applied(url: string): Promise<number> {
  const metrics = await (await fetch(`${url}/metrics`)).text();
  return Number(/^pollchat_redis_applied_total (\d+)/m.exec(metrics)![1]);
}

/** Runs `task(i)` for i < n, `width` at a time. */
async function inParallel(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

const posts = (log: MemoryLog): number => log.entries.filter((e) => decodeRecord(e.data)?.c.t === "post").length;

describe("refused before the shared log", () => {
  it("2,000 posts with a made-up token get 401 and append nothing: the other process applies none of them", async () => {
    const log = new MemoryLog();
    const a = await serve(log.client());
    const b = await serve(log.client());
    await joinApi(a, "real");
    const entries = log.entries.length;
    // B has applied everything so far (the join): from here on its count moves only if something is appended.
    const deadline = Date.now() + 3000;
    while ((await applied(b)) < entries && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const before = await applied(b);
    const statuses = new Map<number, number>();
    await inParallel(2000, 20, async (i) => {
      const r = await postJson(`${a}/api/messages`, { text: `junk ${i}` }, { authorization: `Bearer bogus${i}` });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    });
    expect([...statuses]).toEqual([[401, 2000]]);
    expect(log.entries.length).toBe(entries);
    expect(await applied(b)).toBe(before);
    // A leave with one is refused alike.
    expect((await postJson(`${a}/api/leave`, {}, { authorization: "Bearer bogus" })).status).toBe(401);
    expect(log.entries.length).toBe(entries);
  }, 20_000); // 2,000 requests: about 4 s on a loaded 2-core machine

  it("a token made on the other process a moment ago is not refused: the replica catches up first", async () => {
    const log = new MemoryLog();
    const a = await serve(log.client());
    const b = await serve(log.client());
    for (let i = 0; i < 20; i++) {
      const who = await joinApi(a, `fresh${i}`);
      expect((await postJson(`${b}/api/messages`, { text: "hi" }, who.auth)).status).toBe(201);
    }
  });

  it("a flood past the rate limit appends at most the bucket's burst (and what refills meanwhile); the rest get 429 with Retry-After", async () => {
    const log = new MemoryLog();
    const a = await serve(log.client(), { rate: 1 });
    await serve(log.client(), { rate: 1 });
    const flooder = await joinApi(a, "flooder");
    const started = Date.now();
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      const r = await postJson(`${a}/api/messages`, { text: `flood ${i}` }, flooder.auth);
      if (r.status === 201) accepted++;
      else {
        expect(r.status).toBe(429);
        expect(r.body.error.code).toBe("rate_limited");
        expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      }
    }
    const refilled = Math.ceil((Date.now() - started) / 1000);
    // --rate 1: bursts of 2.
    expect(accepted).toBeGreaterThanOrEqual(2);
    expect(posts(log)).toBeLessThanOrEqual(2 + refilled);
    expect(posts(log)).toBe(accepted);
  });

  it("a retry with the txn key of a post that got through is answered its id, bucket empty or not", async () => {
    const log = new MemoryLog();
    const a = await serve(log.client(), { rate: 1 });
    const who = await joinApi(a, "retrier");
    const first = await postJson(`${a}/api/messages`, { text: "kept", txn: "t-1" }, who.auth);
    expect(first.status).toBe(201);
    // Empty the bucket, then retry the first post.
    for (let i = 0; i < 3; i++) await postJson(`${a}/api/messages`, { text: `more ${i}` }, who.auth);
    const again = await postJson(`${a}/api/messages`, { text: "kept", txn: "t-1" }, who.auth);
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(first.body.id);
  });

  it("a flood with a fresh txn key on every post is refused as any other (seed and API), while a retry of a post applied on the other process gets its id", async () => {
    const log = new MemoryLog();
    const a = await serve(log.client(), { rate: 1 });
    const b = await serve(log.client(), { rate: 1 });
    const who = await joinApi(a, "keyed");
    const kept = await postJson(`${b}/api/messages`, { text: "kept", txn: "kept" }, who.auth);
    expect(kept.status).toBe(201);
    const started = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push((await postJson(`${a}/api/messages`, { text: `api ${i}`, txn: `api-${i}` }, who.auth)).status);
    for (let i = 0; i < 100; i++) statuses.push((await fetch(`${a}/?name=keyed&message=seed${i}&txn=seed-${i}`, { headers: who.auth })).status);
    const refilled = Math.ceil((Date.now() - started) / 1000);
    // --rate 1: bursts of 2, one of them spent on "kept".
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(150);
    expect(posts(log)).toBeLessThanOrEqual(2 + refilled);
    // A retry of the post B applied (A may not have read it yet: it catches up first), bucket empty: its id.
    const again = await postJson(`${a}/api/messages`, { text: "kept", txn: "kept" }, who.auth);
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(kept.body.id);
  });

  it("seed polls --require-token refuses get 401 and append nothing", async () => {
    const log = new MemoryLog();
    const a = await serve(log.client(), { requireToken: true });
    const entries = log.entries.length;
    await inParallel(200, 20, async (i) => {
      expect((await fetch(`${a}/?name=anon${i}&timeout=0`)).status).toBe(401);
    });
    expect(log.entries.length).toBe(entries);
  });
});
