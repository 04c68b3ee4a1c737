import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson, startServer, type RunningCli, type TestServer } from "./helpers.js";
import { metric, redisCommand, redisPerTest, until, type RedisServer } from "./redis-harness.js";
import { LineClient, SseClient } from "./transport-clients.js";
import { connect, type Chat } from "../src/client/index.js";
import { Recorder } from "./client-helpers.js";

/**
 * Redis that lost its data (spec §10): the processes reset in place into a new
 * epoch and go on serving (same PIDs); old tokens get 401, old cursors a gap,
 * new ids stay above every id issued before, and a process started later serves the new epoch.
 */

const startCli = cliPerTest();
const startRedis = redisPerTest();
const servers: TestServer[] = [];
const open: { close(): void }[] = [];
const chats: Chat[] = [];
afterEach(async () => {
  for (const chat of chats.splice(0)) chat.close();
  for (const c of open.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

beforeAll(ensureBuilt, 60_000);

interface Poll {
  messages: { id: number; type: string; text: string }[];
  cursor: number;
}

async function processes(n: number, url: string): Promise<RunningCli[]> {
  return Promise.all(Array.from({ length: n }, () => startCli(CLI, ["--port", "0", "--redis", url, "--log-level", "warn", "--rate", "1000"])));
}

/** Polls with a cursor until `want` messages (type message) have come or the deadline passes. */
async function collect(url: string, auth: Record<string, string>, cursor: number, want: number, deadlineMs = 5000): Promise<number[]> {
  const got: number[] = [];
  const deadline = Date.now() + deadlineMs;
  while (got.length < want && Date.now() < deadline) {
    const res = await fetch(`${url}/api/poll?cursor=${cursor}&timeout=500`, { headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Poll;
    for (const m of body.messages) if (m.type === "message") got.push(m.id);
    cursor = body.cursor;
  }
  return got;
}

async function flushAll(redis: RedisServer): Promise<void> {
  await redisCommand(redis, ["FLUSHALL"]);
}

const LOSSES: [string, (redis: RedisServer) => Promise<void>][] = [
  ["FLUSHALL", flushAll],
  [
    "kill -9 without persistence, restarted empty on the same port",
    async (redis) => {
      await redis.stop("SIGKILL");
      await redis.restart();
    },
  ],
];

describe.each(LOSSES)("Redis that lost its data (%s)", (_how, loseData) => {
  it("every process resets in place: same PIDs, /healthz 200 again, old tokens 401, old cursors a gap, ids above all before, one order on every process", async () => {
    const redis = await startRedis();
    const [a, b] = await processes(2, redis.url);
    const pids = [a!.child.pid, b!.child.pid];
    const ann = await joinApi(a!.url, "ann");
    const bob = await joinApi(b!.url, "bob", "quiet");
    let highest = Math.max(ann.cursor, bob.cursor);
    const seed = await (await fetch(`${b!.url}/?name=zoe&message=hi`)).text();
    const seedId = Number(/^ok (\d+)/.exec(seed)![1]);
    highest = Math.max(highest, seedId);
    // Traffic before and during the loss, on both processes: every answer is 201, 401 or 503 (never a hang, never an id not stored).
    let stop = false;
    const statuses = new Set<number>();
    const traffic = (async () => {
      for (let i = 0; !stop && i < 2000; i++) {
        const r = await postJson(`${i % 2 === 0 ? a!.url : b!.url}/api/messages`, { text: `t${i}` }, ann.auth);
        statuses.add(r.status);
        if (r.status === 201) highest = Math.max(highest, r.body.id as number);
        if (r.status !== 201) await new Promise((res) => setTimeout(res, 20));
      }
    })();
    // A poll held on A across the loss (bob is alone in his room): answered, not left hanging until its timeout.
    const held = fetch(`${a!.url}/api/poll?cursor=${Number.MAX_SAFE_INTEGER}&timeout=30000`, { headers: bob.auth });
    await until(async () => (await metric(a!.url, "pollchat_redis_applied_total")) > 20);
    await loseData(redis);
    const heldAnswer = await held;
    expect(heldAnswer.status).toBe(200);
    await heldAnswer.body?.cancel();

    // Both processes join the new epoch by themselves.
    for (const p of [a!, b!]) {
      expect(await until(async () => (await metric(p.url, "pollchat_redis_epoch_resets")) === 1)).toBe(true);
      expect(await until(async () => (await fetch(`${p.url}/healthz`)).status === 200)).toBe(true);
    }
    stop = true;
    await traffic;
    expect([...statuses].filter((s) => ![201, 401, 503].includes(s))).toEqual([]);
    expect([a!.child.pid, b!.child.pid]).toEqual(pids);
    expect([a!.child.exitCode, b!.child.exitCode]).toEqual([null, null]);
    expect(a!.stderr()).toMatch(/lost its data/);

    // Old sessions are gone: 401 on either process; re-joining works on either.
    for (const p of [a!, b!]) expect((await fetch(`${p.url}/api/poll?cursor=${ann.cursor}&timeout=0`, { headers: ann.auth })).status).toBe(401);
    const ann2 = await joinApi(b!.url, "ann");
    const bob2 = await joinApi(a!.url, "bob");
    expect(ann2.cursor).toBeGreaterThan(highest);
    expect(bob2.cursor).toBeGreaterThan(highest);
    // An old cursor presented to the new epoch: a gap first, never silence.
    const gapped = (await (await fetch(`${a!.url}/api/poll?cursor=${ann.cursor}&timeout=0`, { headers: ann2.auth })).json()) as Poll;
    expect(gapped.messages[0]?.type).toBe("gap");
    const seedGap = (await (await fetch(`${b!.url}/?name=zoe&cursor=${seedId}&timeout=0&format=json`)).json()) as Poll;
    expect(seedGap.messages[0]?.type).toBe("gap");

    // New posts on both processes: ids above all before, delivered once, in one order, on both.
    const posted: number[] = [];
    for (let i = 0; i < 6; i++) {
      const [url, who] = i % 2 === 0 ? [a!.url, ann2] : [b!.url, bob2];
      const r = await postJson(`${url}/api/messages`, { text: `new${i}` }, who.auth);
      expect(r.status).toBe(201);
      expect(r.body.id).toBeGreaterThan(highest);
      posted.push(r.body.id as number);
    }
    const onA = await collect(a!.url, bob2.auth, bob2.cursor, posted.length);
    const onB = await collect(b!.url, ann2.auth, ann2.cursor, posted.length);
    expect(onA).toEqual(posted);
    expect(onB).toEqual(posted);

    // A process started after the reset serves the new epoch.
    const [c] = await processes(1, redis.url);
    expect(await collect(c!.url, ann2.auth, ann2.cursor, posted.length)).toEqual(posted);
    const late = await postJson(`${c!.url}/api/messages`, { text: "late" }, bob2.auth);
    expect(late.status).toBe(201);
    expect(late.body.id).toBeGreaterThan(posted.at(-1)!);
    expect(await collect(a!.url, bob2.auth, posted.at(-1)!, 1)).toEqual([late.body.id]);
  }, 20_000);
});

describe("Redis that lost its data, on every transport", () => {
  it("a TCP connection is told in one line and closed, an SSE stream ends, and nothing of the old epoch is written to the new log", async () => {
    const redis = await startRedis();
    const a = await startServer({ redis: redis.url, tcpPort: 0, logLevel: "silent" });
    const b = await startServer({ redis: redis.url, tcpPort: 0, logLevel: "silent" });
    servers.push(a, b);
    const streamer = await joinApi(b.url, "streamer");
    const stream = new SseClient(`${b.url}/api/events`, streamer.auth);
    open.push(stream);
    const line = await LineClient.named(a.tcpPort!, "liner");
    open.push({ close: () => line.socket.destroy() });
    line.send("before\n");
    await stream.waitFor((e) => e.event === "message" && JSON.parse(e.data).text === "before", "the TCP line on SSE");
    await flushAll(redis);
    await line.waitFor((l) => l === "* your session ended", "the TCP goodbye");
    await line.closed;
    await stream.waitFor((e) => e.event === "close", "the SSE stream's end");
    expect(stream.events.filter((e) => e.event === "leave")).toEqual([]);
    expect(await until(async () => a.chat.cluster!.epochResets === 1 && b.chat.cluster!.epochResets === 1)).toBe(true);
    // The name is free again in the new epoch, and a post there is the new log's first entry after the floors.
    const liner = await joinApi(b.url, "liner");
    expect((await postJson(`${a.url}/api/messages`, { text: "after" }, liner.auth)).status).toBe(201);
    const entries = (await redisCommand(redis, ["XRANGE", "pollchat:log", "-", "+"])) as [Buffer, Buffer[]][];
    const kinds = entries.map(([, fields]) => (JSON.parse(fields[1]!.toString()) as { c: { t: string } }).c.t).filter((t) => t !== "acks");
    // A floor goes with every batch until one is stored (applying it twice changes nothing): one or more per process, first.
    expect(kinds.slice(0, 2)).toEqual(["floor", "floor"]);
    expect(kinds.filter((t) => t !== "floor")).toEqual(["join", "post"]);
  }, 20_000);
});

describe("Redis that lost its data, seen by the client library", () => {
  it("a client joins again by itself after the 401, is told of a gap, and goes on receiving in the new epoch", async () => {
    const redis = await startRedis();
    const a = await startServer({ redis: redis.url, logLevel: "silent" });
    const b = await startServer({ redis: redis.url, logLevel: "silent" });
    servers.push(a, b);
    const quick = { firstEventMs: 2000, streamRetryMs: 300, pollTimeoutMs: 1000, maxBackoffMs: 300 };
    const chat = await connect(a.url, { ...quick, name: "reader" });
    chats.push(chat);
    const reader = new Recorder(chat);
    await reader.until(() => chat.state === "connected", "connected");
    const writer = await joinApi(b.url, "writer");
    expect((await postJson(`${b.url}/api/messages`, { text: "old" }, writer.auth)).status).toBe(201);
    await reader.received("old");
    await flushAll(redis);
    expect(await until(async () => a.chat.cluster!.epochResets === 1 && b.chat.cluster!.epochResets === 1)).toBe(true);
    await reader.until(() => reader.gaps.length > 0, "a gap");
    const writer2 = await joinApi(b.url, "writer");
    // Posted until the client's new session is in the room (it joins again on its own schedule).
    const deadline = Date.now() + 8000;
    for (let i = 0; !reader.texts().some((t) => t.startsWith("new")) && Date.now() < deadline; i++) {
      expect((await postJson(`${b.url}/api/messages`, { text: `new${i}` }, writer2.auth)).status).toBe(201);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(reader.texts().filter((t) => t === "old")).toEqual(["old"]);
    expect(reader.texts().some((t) => t.startsWith("new"))).toBe(true);
  }, 20_000);
});
