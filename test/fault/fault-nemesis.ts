import { at, now, type FaultRecord, type Rng } from "./fault-history.js";
import type { FaultRedis } from "./fault-redis.js";
import { pause, request, roomHistory, type World } from "./fault-world.js";

/**
 * The nemesis: one fault at a time, each healed, then every process must answer
 * /healthz 200 again and traffic must flow before the next. One cycle runs every
 * kind once, in an order the seed shuffles; a longer run repeats cycles. An RDB
 * is saved after each phase; the older RDB is the one saved a phase before that.
 */
export const FAULT_KINDS = [
  "kill-process",
  "stop-process",
  "kill-redis",
  "redis-down-past-ttl",
  "client-kill",
  "debug-sleep",
  "client-pause",
  "write-pause-past-deadline",
  "flushall",
  "older-rdb",
  "older-rdb-whole-site",
  "redis-oom",
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

const LOSES_DATA = new Set<FaultKind>(["flushall", "older-rdb", "older-rdb-whole-site"]);
const HEAL_WITHIN_MS = 60_000;
const TRAFFIC_WITHIN_MS = 40_000;

export interface NemesisOptions {
  rng: Rng;
  redis: FaultRedis;
  sessionTtlS: number;
  /** Run cycles until this many ms have passed; undefined: one cycle. */
  durationMs: number | undefined;
  log: (line: string) => void;
}

export async function runNemesis(world: World, opts: NemesisOptions): Promise<void> {
  const started = now();
  // Two RDBs before the first fault, so even a first "older RDB" lacks a stretch of answered posts.
  for (const posts of [20, 10]) {
    await trafficFlows(world, posts);
    await opts.redis.saveRdb();
  }
  for (let cycle = 0; ; cycle++) {
    for (const kind of opts.rng.shuffle(FAULT_KINDS)) {
      const record: FaultRecord = { kind, detail: "", losesData: LOSES_DATA.has(kind), startedAt: now() };
      world.history.faults.push(record);
      opts.log(`fault ${world.history.faults.length}: ${kind}`);
      record.detail = await inject(kind, world, opts);
      // Each of these starts a new epoch: an RDB of the one before is not restored later (fault-redis.ts forgetRdbs).
      if (record.losesData) opts.redis.forgetRdbs();
      record.healedAt = now();
      await healthy(world, record);
      for (const c of world.procs.crashed())
        world.history.harness.push(`after ${kind}: p${c.slot} exited by itself: ${c.output.slice(-600)}`);
      if (record.unhealthy !== undefined) return; // the rest would judge a broken cluster
      await trafficFlows(world, 10);
      for (let proc = 0; proc < world.procs.count; proc++) {
        const read = now();
        world.history.snapshots.push({ after: kind, at: read, proc, lines: await roomHistory(world, proc, "lobby") });
      }
      await opts.redis.saveRdb();
    }
    if (opts.durationMs === undefined || now() - started >= opts.durationMs) return;
  }
}

async function inject(kind: FaultKind, world: World, { rng, redis, sessionTtlS }: NemesisOptions): Promise<string> {
  const { procs } = world;
  const slot = rng.int(0, procs.count - 1);
  switch (kind) {
    case "kill-process": {
      const down = rng.int(300, 2500);
      await procs.kill(slot);
      await pause(down);
      await procs.start(slot);
      return `kill -9 of p${slot}, restarted after ${down} ms`;
    }
    case "stop-process": {
      const stopped = rng.int(2000, 5000);
      procs.signal(slot, "SIGSTOP");
      await pause(stopped);
      procs.signal(slot, "SIGCONT");
      return `SIGSTOP of p${slot} for ${stopped} ms`;
    }
    case "kill-redis": {
      const down = rng.int(300, 2500);
      await redis.kill();
      await pause(down);
      await redis.restart();
      return `kill -9 of Redis, restarted on its AOF after ${down} ms`;
    }
    case "redis-down-past-ttl": {
      const down = sessionTtlS * 1000 + 4000;
      await redis.kill();
      await pause(down);
      await redis.restart();
      return `kill -9 of Redis, restarted on its AOF after ${down} ms (longer than --session-ttl ${sessionTtlS})`;
    }
    case "client-kill":
      return `CLIENT KILL TYPE normal: ${await redis.call(["CLIENT", "KILL", "TYPE", "normal"], 5000)}`;
    case "debug-sleep": {
      const s = rng.int(2, 4);
      await redis.call(["DEBUG", "SLEEP", String(s)], s * 1000 + 20_000);
      return `DEBUG SLEEP ${s}`;
    }
    case "client-pause": {
      const ms = rng.int(2000, 4000);
      await redis.call(["CLIENT", "PAUSE", String(ms), "ALL"], 5000);
      await pause(ms);
      return `CLIENT PAUSE ${ms} ALL`;
    }
    case "write-pause-past-deadline": {
      // Writes held past the 10 s in which a process must learn an append's fate: it answers 503, then the write runs.
      const ms = 13_000;
      await redis.call(["CLIENT", "PAUSE", String(ms), "WRITE"], 5000);
      await pause(ms);
      return `CLIENT PAUSE ${ms} WRITE (longer than the 10 s an append's fate may take)`;
    }
    case "flushall":
      return `FLUSHALL: ${await redis.call(["FLUSHALL"], 10_000)}`;
    case "older-rdb":
      await redis.restartFromOldRdb();
      return "kill -9 of Redis, restarted from the RDB saved two phases before (AOF removed), AOF on again";
    case "older-rdb-whole-site": {
      const all = Array.from({ length: procs.count }, (_, s) => s);
      await redis.restartFromOldRdb(() => Promise.all(all.map((s) => procs.kill(s))).then(() => undefined));
      for (const s of all) await procs.start(s);
      return "kill -9 of Redis and of every process together, Redis restarted from the RDB saved two phases before, then every process";
    }
    case "redis-oom": {
      // Long enough that every process refuses several posts while /healthz is sampled (about twice a second).
      const ms = rng.int(4000, 6000);
      await redis.call(["CONFIG", "SET", "maxmemory-policy", "noeviction"], 5000);
      await redis.call(["CONFIG", "SET", "maxmemory", "1"], 5000);
      await pause(ms);
      await redis.call(["CONFIG", "SET", "maxmemory", "0"], 5000);
      return `maxmemory 1 (every write refused, OOM) for ${ms} ms`;
    }
  }
}

/** Waits (bounded) until every process answers /healthz 200; records when, or why not. */
async function healthy(world: World, record: FaultRecord): Promise<void> {
  const deadline = now() + HEAL_WITHIN_MS;
  const last: string[] = [];
  for (;;) {
    const answers = await Promise.all(
      Array.from({ length: world.procs.count }, (_, p) => request(world, p, "healthz", "nemesis", "/healthz", { timeoutMs: 3000 })),
    );
    answers.forEach((a, p) => (last[p] = `p${p} ${a.status}${a.error ? ` (${a.error})` : ` ${a.text.trim().slice(0, 120)}`}`));
    if (answers.every((a) => a.status === 200)) {
      record.healthyAt = now();
      return;
    }
    if (now() > deadline) {
      record.unhealthy = `not every process answered /healthz 200 within ${HEAL_WITHIN_MS / 1000} s of the heal; last: ${last.join("; ")}`;
      return;
    }
    await pause(200);
  }
}

/** Waits (bounded, on reader progress) until `posts` more posts were answered since now. */
async function trafficFlows(world: World, posts: number): Promise<void> {
  const since = world.history.answeredCount();
  const deadline = now() + TRAFFIC_WITHIN_MS;
  while (world.history.answeredCount() < since + posts && now() < deadline) await world.nextProgress(1000);
  if (world.history.answeredCount() < since + posts)
    world.history.harness.push(`fewer than ${posts} posts answered in ${TRAFFIC_WITHIN_MS / 1000} s at ${at(now())}`);
}

/** Samples every process's /healthz about twice a second, until `done()`. */
export async function sampleHealth(world: World, done: () => boolean): Promise<void> {
  while (!done()) {
    await Promise.all(
      Array.from({ length: world.procs.count }, async (_, proc) => {
        const a = await request(world, proc, "healthz", "sampler", "/healthz", { timeoutMs: 2000 });
        world.history.health.push({ proc, at: a.answeredAt, status: a.status });
      }),
    );
    await pause(500);
  }
}
