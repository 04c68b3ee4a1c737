import { beforeAll, describe, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson, postUntilRefused } from "./helpers.js";
import { redisPerTest } from "./redis-harness.js";
import { randomClients } from "./cluster-clients.js";
import { RedisClient } from "../src/redis/index.js";

/** Real pollchat processes sharing a real Redis (issue 12, spec §10): any process serves any request. */

const startCli = cliPerTest();
const startRedis = redisPerTest();

beforeAll(ensureBuilt, 60_000);

async function processes(n: number, url: string, extra: string[] = []): Promise<string[]> {
  const started = await Promise.all(Array.from({ length: n }, () => startCli(CLI, ["--port", "0", "--redis", url, "--log-level", "warn", ...extra])));
  return started.map((p) => p.url);
}

describe("several processes on one Redis", () => {
  it("clients picking a random process per request (posts with txn, polls with cursors) get every message exactly once, in one order", async () => {
    const redis = await startRedis();
    const urls = await processes(3, redis.url);
    const { ids } = await randomClients(urls, { clients: 5, posts: 8 });
    expect(ids.length).toBe(40);
  }, 15_000);

  it("a name taken on one process is refused on another; a rate limit holds across processes", async () => {
    const redis = await startRedis();
    const [a, b, c] = await processes(3, redis.url, ["--rate", "1"]);
    const started = Date.now();
    const ann = await joinApi(a!, "ann");
    expect((await postJson(`${b}/api/join`, { name: "Ann" })).status).toBe(409);
    // --rate 1: bursts of 2 over three processes, then one a second (entries carry Redis's clock: ceil
    // leaves room for its rounding), so a slow machine may rightly grant a few more before the refusal.
    const urls = [a, b, c];
    const { answers, elapsedMs } = await postUntilRefused((i) => postJson(`${urls[i % 3]}/api/messages`, { text: "x" }, ann.auth), started);
    const statuses = answers.map((r) => r.status);
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.slice(0, -1).every((s) => s === 201)).toBe(true);
    expect(statuses.length - 1).toBeGreaterThanOrEqual(2);
    expect(statuses.length - 1).toBeLessThanOrEqual(2 + Math.ceil(elapsedMs / 1000));
  }, 15_000);

  it("a late process loads the newest snapshot (the log is trimmed) and serves an old cursor exactly", async () => {
    const redis = await startRedis();
    const [a] = await processes(1, redis.url, ["--redis-snapshot-every", "10", "--rate", "1000"]);
    const ann = await joinApi(a!, "ann");
    const ids: number[] = [];
    // The saver looks every 2 s: two saves take ~5 s, and a busy machine may need three times that.
    const deadline = Date.now() + 15_000;
    let saved = 0;
    // Posts until two snapshots were saved: the second trims the log below the first.
    while (saved < 2 && Date.now() < deadline) {
      for (let i = 0; i < 10; i++) ids.push((await postJson(`${a}/api/messages`, { text: `m${ids.length}` }, ann.auth)).body.id);
      const metrics = await (await fetch(`${a}/metrics`)).text();
      saved = Number(/pollchat_redis_snapshots_saved (\d+)/.exec(metrics)?.[1] ?? 0);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(saved).toBeGreaterThanOrEqual(2);
    const client = new RedisClient({ url: redis.url });
    await client.connect();
    const length = Number(await client.call("XLEN", "pollchat:log"));
    await client.close();
    expect(length).toBeLessThan(ids.length);
    const [late] = await processes(1, redis.url, ["--rate", "1000"]);
    const res = await fetch(`${late}/api/poll?cursor=${ids[4]}&timeout=0`, { headers: ann.auth });
    const body = (await res.json()) as { messages: { id: number; type: string }[] };
    expect(body.messages.filter((m) => m.type === "message").map((m) => m.id)).toEqual(ids.slice(5));
  }, 30_000);

  it("a client polling only on B stays present for A; one that stops gets exactly one leave", async () => {
    const redis = await startRedis();
    const [a, b] = await processes(2, redis.url, ["--session-ttl", "1"]);
    const watcher = await joinApi(a!, "watcher");
    const busy = await joinApi(a!, "busy");
    await joinApi(b!, "idle");
    const seen: string[] = [];
    const end = Date.now() + 4000;
    const pollUntilEnd = async (url: string, who: { cursor: number; auth: Record<string, string> }, into?: string[]): Promise<void> => {
      let cursor = who.cursor;
      while (Date.now() < end) {
        const res = await fetch(`${url}/api/poll?cursor=${cursor}&timeout=300`, { headers: who.auth });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { messages: { type: string; from: string }[]; cursor: number };
        for (const m of body.messages) into?.push(`${m.type} ${m.from}`);
        cursor = body.cursor;
      }
    };
    await Promise.all([pollUntilEnd(b!, busy), pollUntilEnd(a!, watcher, seen)]);
    expect(seen.filter((l) => l === "leave idle").length).toBe(1);
    expect(seen).not.toContain("leave busy");
  }, 15_000);
});
