import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson } from "./helpers.js";
import { metric, redisCommand, redisPerTest, until as eventually } from "./redis-harness.js";
import type { Hub } from "../src/hub.js";
import type { Session } from "../src/session.js";
import { ChatError } from "../src/errors.js";
import { resolveOptions } from "../src/config.js";
import { createCluster, type Cluster } from "../src/cluster/cluster.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { SharedLog } from "../src/cluster/shared-log.js";

/*
 * A process cut off from the shared log while the others went on and trimmed it
 * (two snapshots) has missed entries it can never read: it loads the newest
 * snapshot again in place, and is one state with the others (was: exit 1).
 */

const clusters: Cluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) {
    await c.close();
    c.hub.close();
  }
});

/** A log client whose reads fail while `cut.on` (this process cannot reach the log; appends still go, as one that was stored just before). */
function cuttable(client: SharedLog, cut: { on: boolean }): SharedLog {
  return new Proxy(client, {
    get(target, prop) {
      if (prop === "read") {
        return async (...args: [string, number, number]) => {
          if (cut.on) {
            await new Promise((resolve) => setTimeout(resolve, 20));
            throw new Error("redis: unreachable");
          }
          const entries = await target.read(...args);
          if (cut.on) throw new Error("redis: unreachable"); // cut off while the read waited
          return entries;
        };
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function node(log: SharedLog, lost: string[]): Promise<Cluster> {
  const cluster = createCluster(resolveOptions({ rate: 1000 }), log, () => {}, (reason) => lost.push(reason));
  clusters.push(cluster);
  await cluster.start();
  return cluster;
}

async function until(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!ok()) throw new Error(`timed out: ${what}`);
}

const lobbyIds = (hub: Hub): number[] => (hub.roomWithHistory("lobby")?.history(Number.MAX_SAFE_INTEGER, 1000) ?? []).map((e) => e.id);
const post = (c: Cluster, token: string, text: string): Promise<number> => c.replica.submit({ t: "post", k: token, x: text }, (o) => Number(o));

it("a process that fell behind the log's trim loads the newest snapshot in place: same state as the others, its stored requests answered or 503, never hung", async () => {
  const log = new MemoryLog();
  const lost: string[] = [];
  const a = await node(log.client(), lost);
  const cut = { on: false };
  const b = await node(cuttable(log.client(), cut), lost);
  const ann = String(((await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "tok-ann" }, (o) => o)) as Session).token);
  await b.replica.catchUp();
  expect(b.hub.sessionByToken(ann)?.name).toBe("ann");

  // B is cut off just after its post was stored: it never reads that entry.
  cut.on = true;
  const belowSnapshot = post(b, ann, "from b, before the snapshots").then(
    (id) => `id ${id}`,
    (error: unknown) => (error instanceof ChatError ? error.code : String(error)),
  );
  await until(() => log.entries.length === 2, "b's post stored");
  // The others go on: posts, a snapshot, more posts, a second snapshot, which trims the log below the first.
  for (let i = 0; i < 5; i++) await post(a, ann, `a${i}`);
  expect(await a.saver()!.check(true)).toBe(true);
  for (let i = 5; i < 10; i++) await post(a, ann, `a${i}`);
  expect(await a.saver()!.check(true)).toBe(true);
  // Stored after the newest snapshot: B reads and answers it once back.
  const aboveSnapshot = post(b, ann, "from b, after the snapshots");
  await until(() => log.entries.some((e) => e.data.includes("after the snapshots")), "b's second post stored");
  await a.replica.catchUp();

  // Back: B's first read after where it stood finds that entry trimmed, throws the read away, and reloads.
  cut.on = false;
  await until(() => b.resyncs === 1, "b resynced");
  expect(lost).toEqual([]);
  expect(await aboveSnapshot).toBeGreaterThan(0);
  // Its outcome was in the skipped part of the log: 503, to be asked again (its txn finds it).
  expect(await belowSnapshot).toBe("store_unavailable");

  // One state: sessions, tokens, history, ids, and B serves and appends as any process.
  await b.replica.catchUp();
  await a.replica.catchUp();
  expect(lobbyIds(b.hub)).toEqual(lobbyIds(a.hub));
  expect(lobbyIds(b.hub)).toHaveLength(13); // ann joined, b posted, a posted 10 times, b posted
  expect(b.hub.lastId).toBe(a.hub.lastId);
  expect(b.hub.sessionByToken(ann)?.name).toBe("ann");
  const id = await post(b, ann, "after the resync");
  await a.replica.catchUp();
  expect(lobbyIds(a.hub).at(-1)).toBe(id);
  expect(b.resyncs).toBe(1);
});

describe("with real processes on a real Redis", () => {
  const startCli = cliPerTest();
  const startRedis = redisPerTest();
  beforeAll(ensureBuilt, 60_000);

  it("a process stopped (SIGSTOP) while the others trimmed the log past it resyncs when it runs again: same PID, its clients' tokens and cursors served exactly", async () => {
    const redis = await startRedis();
    const args = ["--port", "0", "--redis", redis.url, "--redis-snapshot-every", "10", "--rate", "1000", "--log-level", "warn"];
    const a = await startCli(CLI, args);
    const b = await startCli(CLI, args);
    const ann = await joinApi(a.url, "ann");
    const first = await postJson(`${a.url}/api/messages`, { text: "before" }, ann.auth);
    expect((await fetch(`${b.url}/api/poll?cursor=${ann.cursor}&timeout=0`, { headers: ann.auth })).status).toBe(200);
    // What B answers a cursor at any moment: the messages after it, in order, from the first (or none), never some skipped.
    const pollB = async (timeout: number): Promise<{ status: number; ids: number[] }> => {
      const r = await fetch(`${b.url}/api/poll?cursor=${first.body.id}&timeout=${timeout}`, { headers: ann.auth });
      const body = r.status === 200 ? ((await r.json()) as { messages: { id: number; type: string }[] }) : { messages: [] };
      return { status: r.status, ids: body.messages.filter((m) => m.type === "message").map((m) => m.id) };
    };
    // B's client waits on B when B stops.
    const held = pollB(2000);

    b.child.kill("SIGSTOP");
    const ids: number[] = [];
    try {
      // Posts on A until two snapshots were saved: the second trims the log below the first, past where B stopped.
      const saved = await eventually(async () => {
        for (let i = 0; i < 10; i++) ids.push((await postJson(`${a.url}/api/messages`, { text: `m${ids.length}` }, ann.auth)).body.id);
        return (await metric(a.url, "pollchat_redis_snapshots_saved")) >= 2;
      }, 15_000);
      expect(saved).toBe(true);
    } finally {
      b.child.kill("SIGCONT");
    }
    const rightAfter = pollB(3000);
    expect(Number(await redisCommand(redis, ["XLEN", "pollchat:log"]))).toBeLessThan(ids.length);

    expect(await eventually(async () => (await metric(b.url, "pollchat_redis_resyncs")) === 1, 10_000)).toBe(true);
    expect(b.child.exitCode).toBeNull();
    expect(b.stderr()).toContain("fell behind the shared log's trim");
    // Answered (the reload ended its session here: the next poll goes on), or 503 while B caught up: never a skip.
    for (const answer of [await held, await rightAfter]) {
      expect([200, 503]).toContain(answer.status);
      expect(answer.ids).toEqual(ids.slice(0, answer.ids.length));
    }
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
    // Ann's token and cursor on B: every message since, exactly, in order.
    const res = await fetch(`${b.url}/api/poll?cursor=${first.body.id}&timeout=0`, { headers: ann.auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { messages: { id: number; type: string }[] };
    expect(body.messages.filter((m) => m.type === "message").map((m) => m.id)).toEqual(ids);
    // And B appends and serves as any process.
    const after = await postJson(`${b.url}/api/messages`, { text: "after" }, ann.auth);
    expect(after.status).toBe(201);
    const onA = await fetch(`${a.url}/api/poll?cursor=${ids.at(-1)}&timeout=2000`, { headers: ann.auth });
    expect(((await onA.json()) as { messages: { id: number }[] }).messages.map((m) => m.id)).toContain(after.body.id);
  }, 40_000);
});
