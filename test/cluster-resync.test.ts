import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { LineClient, SseClient } from "./transport-clients.js";
import { RELOADED } from "../src/session.js";
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
const servers: TestServer[] = [];
const open: { close(): void }[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const c of clusters.splice(0)) {
    await c.close();
    c.hub.close();
  }
});

/**
 * A log client whose reads fail while `cut.on` (this process cannot reach the log; appends still go, as
 * those sent just before); `cut.atRead` runs as the first read after it is back; while `cut.loading` is
 * set, loading a snapshot waits for it.
 */
interface Cut {
  on: boolean;
  atRead?: () => void;
  loading?: Promise<void>;
}
function cuttable(client: SharedLog, cut: Cut): SharedLog {
  const snapshots = new Proxy(client.snapshots, {
    get(target, prop) {
      if (prop === "latest") return async () => (await cut.loading, target.latest());
      return bound(target, prop);
    },
  });
  return new Proxy(client, {
    get(target, prop) {
      if (prop === "snapshots") return snapshots;
      if (prop === "read") {
        return async (...args: [string, number, number]) => {
          if (cut.on) {
            await new Promise((resolve) => setTimeout(resolve, 20));
            throw new Error("redis: unreachable");
          }
          const atRead = cut.atRead;
          cut.atRead = undefined;
          atRead?.();
          const entries = await target.read(...args);
          if (cut.on) throw new Error("redis: unreachable"); // cut off while the read waited
          return entries;
        };
      }
      return bound(target, prop);
    },
  });
}

function bound(target: object, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop);
  return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
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
const post = (c: Cluster, token: string, text: string, txn?: string): Promise<number> =>
  c.replica.submit({ t: "post", k: token, x: text, ...(txn !== undefined && { i: txn }) }, (o) => Number(o));
const settled = <T>(p: Promise<T>): Promise<T | string> => p.catch((error: unknown) => (error instanceof ChatError ? error.code : String(error)));

it("a process that fell behind the log's trim loads the newest snapshot in place: same state as the others; its requests the hole swallowed answered from the state, else 503, never hung", async () => {
  const log = new MemoryLog();
  const lost: string[] = [];
  const a = await node(log.client(), lost);
  const cut: Cut = { on: false };
  const b = await node(cuttable(log.client(), cut), lost);
  const ann = String(((await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "tok-ann" }, (o) => o)) as Session).token);
  const seen = await post(a, ann, "seen by b");
  // A TCP user on B (its connection holds its session).
  const tcp = (await b.replica.submit({ t: "join", n: "tina", r: "lobby", k: "tok-tina", tcp: 1 }, (o) => o)) as Session;
  b.hub.holdPresence(tcp);
  await b.replica.catchUp();
  expect(b.hub.sessionByToken(ann)?.queue.peek().map((e) => e.id)).toContain(seen);

  // B is cut off just after these were stored: it never reads their entries.
  cut.on = true;
  const withTxn = settled(post(b, ann, "from b, with a txn", "t-1"));
  const withoutTxn = settled(post(b, ann, "from b, without"));
  const joined = settled(b.replica.submit({ t: "join", n: "cat", r: "lobby", k: "tok-cat" }, (o) => (o as Session).token));
  await until(() => log.entries.length === 6, "b's requests stored");
  // The others go on: posts, a snapshot, more posts, a second snapshot, which trims the log below the first.
  for (let i = 0; i < 5; i++) await post(a, ann, `a${i}`);
  expect(await a.saver()!.check(true)).toBe(true);
  for (let i = 5; i < 10; i++) await post(a, ann, `a${i}`);
  expect(await a.saver()!.check(true)).toBe(true);
  // Stored after the newest snapshot: B reads and answers it once back.
  const aboveSnapshot = post(b, ann, "from b, after the snapshots");
  await until(() => log.entries.some((e) => e.data.includes("after the snapshots")), "b's last post stored");
  await a.replica.catchUp();

  // Back: as B's first read starts, a poll here took ann's queue (its acknowledgement waits up to 200 ms to go out) ...
  let release = (): void => {};
  cut.loading = new Promise<void>((resolve) => (release = resolve));
  cut.atRead = () => b.hub.ack(b.hub.sessionByToken(ann)!, seen);
  cut.on = false;
  // ... and the read finds the entry it reads after trimmed: thrown away, and B loads the newest snapshot.
  await until(() => b.resyncs === 1, "b resynced");
  expect(b.failure()).toMatch(/loading/); // /healthz 503 while it loads
  release();
  expect(lost).toEqual([]);
  expect(await aboveSnapshot).toBeGreaterThan(0);
  // Requests whose entries fell in the hole: answered from the state where it tells (a txn, a join's token), else 503.
  const posted = a.hub.roomWithHistory("lobby")!.history(Number.MAX_SAFE_INTEGER, 1000).find((e) => e.message.text === "from b, with a txn");
  expect(await withTxn).toBe(posted?.id);
  expect(await withoutTxn).toBe("store_unavailable");
  expect(await joined).toBe("tok-cat");
  expect(b.failure()).toBeUndefined();

  // One state: sessions, tokens, history, ids, and B serves and appends as any process.
  await b.replica.catchUp();
  await a.replica.catchUp();
  expect(lobbyIds(b.hub)).toEqual(lobbyIds(a.hub));
  expect(b.hub.lastId).toBe(a.hub.lastId);
  expect(b.hub.sessionByToken(ann)?.name).toBe("ann");
  // The acknowledgement made just before the reload went out: ann does not get the message again here, nor anywhere.
  for (const p of [a, b]) expect(p.hub.sessionByToken(ann)!.queue.peek().map((e) => e.id)).not.toContain(seen);
  // The TCP connection ended with the reload, and its session with it, on every process.
  for (const p of [a, b]) expect(p.hub.session("tina")).toBeUndefined();
  const id = await post(b, ann, "after the resync");
  await a.replica.catchUp();
  expect(lobbyIds(a.hub).at(-1)).toBe(id);
  expect(b.resyncs).toBe(1);
});

it("on the process that resyncs, an SSE stream and a TCP connection entered by token are told to connect again (their session goes on), a TCP name that its session ended; the stream reconnects and misses nothing", async () => {
  const log = new MemoryLog();
  const cut: Cut = { on: false };
  const a = await startServer({ rate: 1000, sharedLog: log.client() });
  const b = await startServer({ rate: 1000, tcpPort: 0, sharedLog: cuttable(log.client(), cut) });
  servers.push(a, b);
  const ann = await joinApi(a.url, "ann");
  const stream = new SseClient(`${b.url}/api/events`, ann.auth);
  const line = await LineClient.named(b.tcpPort!, "tina");
  const entered = new LineClient(b.tcpPort!);
  await entered.waitFor((l) => l === "What is your name?", "the name prompt");
  entered.send(`/token ${ann.token}\n`);
  await entered.waitFor((l) => l.startsWith("* you are ann"), "ann's session on TCP");
  open.push(stream, { close: () => line.socket.destroy() }, { close: () => entered.socket.destroy() });
  const first = await postJson(`${a.url}/api/messages`, { text: "first" }, ann.auth);
  await stream.waitFor((e) => e.event === "message" && e.id === String(first.body.id), "the first message on B's stream");

  cut.on = true;
  const posted: number[] = [];
  for (let i = 0; i < 5; i++) posted.push((await postJson(`${a.url}/api/messages`, { text: `a${i}` }, ann.auth)).body.id);
  expect(await a.chat.cluster!.saver()!.check(true)).toBe(true);
  for (let i = 5; i < 10; i++) posted.push((await postJson(`${a.url}/api/messages`, { text: `a${i}` }, ann.auth)).body.id);
  expect(await a.chat.cluster!.saver()!.check(true)).toBe(true);
  cut.on = false;

  const closed = await stream.waitFor((e) => e.event === "close", "the stream's close");
  expect(JSON.parse(closed.data).reason).toBe(RELOADED);
  await entered.waitFor((l) => l === `* ${RELOADED}`, "the TCP line entered by token told to connect again");
  await line.waitFor((l) => l === "* your session ended", "the TCP name told its session ended (its leave goes to every process)");
  await Promise.all([line.closed, entered.closed]);
  // The session went on: a stream again with its Last-Event-ID gets every message since, once, in order.
  const again = new SseClient(`${b.url}/api/events`, { ...ann.auth, "last-event-id": String(first.body.id) });
  open.push(again);
  await again.waitFor((e) => e.event === "message" && e.id === String(posted.at(-1)), "the last message again");
  expect(again.events.filter((e) => e.event === "message").map((e) => Number(e.id))).toEqual(posted);
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
    expect(await eventually(async () => (await fetch(`${b.url}/healthz`)).status === 200, 10_000)).toBe(true);
    // Ann's token and cursor on B, polled as a client does while B catches up: every message since, exactly once, in order.
    const got: number[] = [];
    let cursor = first.body.id as number;
    await eventually(async () => {
      const r = await fetch(`${b.url}/api/poll?cursor=${cursor}&timeout=500`, { headers: ann.auth });
      if (r.status !== 200) return false;
      const body = (await r.json()) as { messages: { id: number; type: string }[]; cursor: number };
      got.push(...body.messages.filter((m) => m.type === "message").map((m) => m.id));
      cursor = body.cursor;
      return got.length >= ids.length;
    }, 10_000);
    expect(got).toEqual(ids);
    // And B appends and serves as any process.
    const after = await postJson(`${b.url}/api/messages`, { text: "after" }, ann.auth);
    expect(after.status).toBe(201);
    const onA = await fetch(`${a.url}/api/poll?cursor=${ids.at(-1)}&timeout=2000`, { headers: ann.auth });
    expect(((await onA.json()) as { messages: { id: number }[] }).messages.map((m) => m.id)).toContain(after.body.id);
  }, 40_000);
});
