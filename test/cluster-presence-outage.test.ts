import { beforeAll, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, joinApi, type RunningCli } from "./helpers.js";
import { redisCommand, redisPerTest, until, type RedisServer } from "./redis-harness.js";
import { RedisLog } from "../src/cluster/redis-log.js";
import { MAX_SPANS } from "../src/cluster/unrecorded-time.js";

/**
 * Time during which the cluster could not record presence counts against no session
 * (README, Several processes: Presence): Redis down for longer than --session-ttl while
 * clients keep polling on both processes ends none of them, and a session that did not
 * poll still ends, once, after its TTL once Redis is back.
 */

const startCli = cliPerTest();
const startRedis = redisPerTest();

beforeAll(ensureBuilt, 60_000);

const TTL_S = 2;

async function processes(n: number, url: string): Promise<RunningCli[]> {
  const args = ["--port", "0", "--redis", url, "--log-level", "warn", "--session-ttl", String(TTL_S)];
  return Promise.all(Array.from({ length: n }, () => startCli(CLI, args)));
}

interface Poller {
  name: string;
  polls: number;
  /** Every status other than 200 this poller got. */
  refused: number[];
  /** "leave <name>" for every leave notice it got. */
  leaves: string[];
  done: Promise<void>;
}

/** Polls with its cursor on one process until `stop()` says so (each poll held at most 300 ms), recording what it got. */
function keepPolling(url: string, name: string, who: { cursor: number; auth: Record<string, string> }, stop: () => boolean): Poller {
  const poller: Poller = { name, polls: 0, refused: [], leaves: [], done: Promise.resolve() };
  poller.done = (async () => {
    let cursor = who.cursor;
    // Bounded: at most a few minutes of 300 ms polls.
    for (let i = 0; i < 2000 && !stop(); i++) {
      const res = await fetch(`${url}/api/poll?cursor=${cursor}&timeout=300`, { headers: who.auth });
      if (res.status !== 200) {
        poller.refused.push(res.status);
        await res.body?.cancel();
        if (res.status === 401) return;
        continue;
      }
      const body = (await res.json()) as { messages: { type: string; from: string }[]; cursor: number };
      for (const m of body.messages) if (m.type === "leave") poller.leaves.push(`leave ${m.from}`);
      cursor = body.cursor;
      poller.polls++;
    }
  })();
  return poller;
}

async function healthy(p: RunningCli, status: number): Promise<boolean> {
  const res = await fetch(`${p.url}/healthz`);
  await res.body?.cancel();
  return res.status === status;
}

async function outage(redis: RedisServer, how: "SIGSTOP" | "kill", processes: RunningCli[], forMs: number): Promise<void> {
  if (how === "SIGSTOP") redis.pause();
  else await redis.stop("SIGKILL");
  const from = Date.now();
  for (const p of processes) expect(await until(() => healthy(p, 503), 20_000)).toBe(true);
  // The outage itself: longer than the TTL, as long as the scenario says (not a wait for something to happen).
  await new Promise((r) => setTimeout(r, Math.max(0, forMs - (Date.now() - from))));
  if (how === "SIGSTOP") redis.resume();
  else await redis.restart();
  for (const p of processes) expect(await until(() => healthy(p, 200), 30_000)).toBe(true);
}

it.each(["SIGSTOP", "kill"] as const)(
  "Redis down (%s) for three TTLs while clients keep polling on both processes: none ends, the one that did not poll ends once after",
  async (how) => {
    // kill -9 keeps what Redis had: it restarts on its AOF (an outage, not a loss).
    const redis = await startRedis({ appendOnly: true });
    const [a, b] = await processes(2, redis.url);
    let stopping = false;
    const stop = (): boolean => stopping;
    const pollers: Poller[] = [];
    for (const [i, p] of [a!, b!, a!, b!, a!, b!].entries()) pollers.push(keepPolling(p.url, `p${i}`, await joinApi(p.url, `p${i}`), stop));
    await joinApi(b!.url, "idle"); // never polls
    // Every poller has been seen by its process before Redis goes.
    expect(await until(async () => pollers.every((p) => p.polls >= 2), 20_000)).toBe(true);

    await outage(redis, how, [a!, b!], 3 * TTL_S * 1000);

    // The session that did not poll ends once Redis is back (the TTL counts again from then).
    // (A poller refused stops waiting: the assertions below say who and how.)
    const refused = (): boolean => pollers.some((p) => p.refused.length > 0);
    expect(await until(async () => refused() || pollers.every((p) => p.leaves.includes("leave idle")), 30_000)).toBe(true);
    // Past several more sweeps on both processes: each poller polls three more times.
    const after = pollers.map((p) => p.polls);
    expect(await until(async () => pollers.every((p, i) => p.polls >= after[i]! + 3) || refused(), 30_000)).toBe(true);
    stopping = true;
    await Promise.all(pollers.map((p) => p.done));

    for (const p of pollers) {
      expect({ name: p.name, refused: p.refused }).toEqual({ name: p.name, refused: [] });
      expect({ name: p.name, leaves: p.leaves }).toEqual({ name: p.name, leaves: ["leave idle"] });
    }
    expect([a!.child.exitCode, b!.child.exitCode]).toEqual([null, null]);
  },
  90_000,
);

it("Redis keeps the newest 256 spans of unrecorded time, and answers those that end after a time, newest first", async () => {
  const redis = await startRedis();
  const log = new RedisLog(redis.url, "t");
  try {
    await log.open();
    for (let i = 0; i < 300; i++) await log.presence.unrecorded([i * 10, i * 10 + 5]);
    expect(await redisCommand(redis, ["ZCARD", "t:unrecorded"])).toBe(MAX_SPANS);
    expect((await log.presence.unrecordedSince(0)).length).toBe(MAX_SPANS);
    expect(await log.presence.unrecordedSince(2975)).toEqual([[2990, 2995], [2980, 2985]]);
    await log.presence.forget(2986);
    expect(await log.presence.unrecordedSince(0)).toEqual([[2990, 2995]]);
  } finally {
    log.close();
  }
}, 20_000);
