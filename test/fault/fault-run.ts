import { checkHistory, describeFault, type Category } from "./check-history.js";
import { at, now, Rng, type History } from "./fault-history.js";
import { Member } from "./fault-member.js";
import { FAULT_KINDS, runNemesis, sampleHealth } from "./fault-nemesis.js";
import { postLoop } from "./fault-posters.js";
import { FaultRedis } from "./fault-redis.js";
import { Processes } from "./fault-processes.js";
import { pollLoop, seedLoop, sseLoop } from "./fault-readers.js";
import { pause, roomHistory, World } from "./fault-world.js";

export interface FaultRunOptions {
  seed: number;
  /** Seconds of faults: cycles repeat until it has passed; undefined: one cycle of every kind. */
  durationS: number | undefined;
  log: (line: string) => void;
}

export interface FaultRunResult {
  history: History;
  violations: Map<Category, string[]>;
  summary: string;
}

const PROCESSES = 3;
const CLIENTS = 12;
const SEEDS = 2;
const SESSION_TTL_S = 15;
/** History kept long enough to compare whole runs; snapshots (and the trims behind them) often, so faults meet them. */
const FLAGS = [
  "--session-ttl",
  String(SESSION_TTL_S),
  "--history",
  "100000",
  "--redis-snapshot-every",
  "500",
  "--max-sessions-per-ip",
  "0",
  // Every client is on 127.0.0.1: the per-address shares are tested elsewhere, not here.
  "--rate-per-ip",
  "0",
  "--log-level",
  "warn",
];
const CATCH_UP_WITHIN_MS = 60_000;

/**
 * The whole fault test: Redis and three processes, a dozen posting and polling clients,
 * seed pollers and an SSE reader running while the nemesis cycles, then every reader
 * catches up, each process's history is read, and the checker judges the whole history.
 * Every child process is killed by its PID and every temp dir removed, whatever happens.
 */
export async function runFaultTest(opts: FaultRunOptions): Promise<FaultRunResult> {
  const redis = new FaultRedis();
  const procs = new Processes(PROCESSES, () => redis.url, FLAGS);
  const world = new World(procs);
  const rng = new Rng(opts.seed);
  const tasks: Promise<void>[] = [];
  // Should the test process end before the finally below runs (a timeout tears the worker down), no child outlives it.
  const killNow = (): void => {
    procs.killNow();
    redis.killNow();
  };
  process.once("exit", killNow);
  try {
    await redis.start();
    for (let slot = 0; slot < PROCESSES; slot++) await procs.start(slot);
    opts.log(`seed ${opts.seed}: Redis on ${redis.port}, processes ${[0, 1, 2].map((s) => procs.url(s)).join(" ")}`);
    // A third of the clients poll and post on one home process (while it answers), as behind a sticky balancer.
    const home = (i: number): number | undefined => (i % 3 === 0 ? (i / 3) % PROCESSES : undefined);
    const members = Array.from(
      { length: CLIENTS },
      (_, i) => new Member(world, `c${i}`, "json", new Rng(opts.seed * 1000 + i + 1), home(i)),
    );
    const sse = new Member(world, "sse0", "sse", new Rng(opts.seed * 1000 + 500));
    const posting = members.map((m) => postLoop(m, { minMs: 400, maxMs: 1600, recheck: 0.15 }));
    const reading = [
      ...members.map((m) => pollLoop(m)),
      sseLoop(sse),
      ...Array.from({ length: SEEDS }, (_, i) => seedLoop(world, `seed${i}`, new Rng(opts.seed * 1000 + 700 + i))),
    ];
    tasks.push(...posting, ...reading);
    const sampling = sampleHealth(world, () => world.readersDone);
    tasks.push(sampling);
    const durationMs = opts.durationS === undefined ? undefined : opts.durationS * 1000;
    try {
      await runNemesis(world, { rng, redis, sessionTtlS: SESSION_TTL_S, durationMs, log: opts.log });
    } catch (error) {
      world.history.harness.push(`the nemesis failed: ${error instanceof Error ? error.stack : String(error)}`);
    }
    opts.log(`faults done at ${at(now())}; draining`);
    world.postsDone = true;
    await Promise.all(posting);
    await catchUp(world, [...members, sse]);
    world.readersDone = true;
    await Promise.all(reading);
    await sampling;
    world.history.finalHistories = await finalHistories(world);
  } finally {
    world.postsDone = true;
    world.readersDone = true;
    procs.signalAll("SIGCONT");
    redis.signal("SIGCONT");
    await procs.dispose();
    await redis.dispose();
    process.off("exit", killNow);
    await Promise.allSettled(tasks);
  }
  const violations = checkHistory(world.history);
  return { history: world.history, violations, summary: summarize(world.history, opts.seed) };
}

/** Waits (on reader progress, bounded) until every reader holds the newest answered post. */
async function catchUp(world: World, members: readonly Member[]): Promise<void> {
  const target = world.history.maxAnsweredId();
  const deadline = now() + CATCH_UP_WITHIN_MS;
  const behind = (): string[] => {
    const late: string[] = [];
    for (const m of members) if (m.session !== undefined && m.session.maxCursor < target) late.push(m.reader);
    for (const s of world.history.sessions) {
      if (s.kind === "seed" && !s.received.some((r) => r.type === "message" && r.id! >= target)) late.push(s.reader);
    }
    return late;
  };
  while (behind().length > 0 && now() < deadline) await world.nextProgress(1000);
  const late = behind();
  if (late.length > 0)
    world.history.harness.push(`readers still behind id ${target} ${CATCH_UP_WITHIN_MS / 1000} s after the faults: ${late.join(", ")}`);
}

/**
 * Every process's room history once they agree, or after 20 s: a replica may still apply the last
 * entries (an expiry's leave) when the first is read, never stay behind for long.
 */
async function finalHistories(world: World): Promise<(string[] | string)[]> {
  const deadline = now() + 20_000;
  for (;;) {
    const read = await Promise.all(Array.from({ length: PROCESSES }, (_, p) => roomHistory(world, p, "lobby")));
    const same = read.every((h) => JSON.stringify(h) === JSON.stringify(read[0]));
    if (same || now() > deadline) return read;
    await pause(500); // no event says a replica applied an entry: read again, bounded
  }
}

function summarize(history: History, seed: number): string {
  const fates = new Map<string, number>();
  for (const p of history.posts) fates.set(p.fate, (fates.get(p.fate) ?? 0) + 1);
  const received = history.sessions.reduce((n, s) => n + s.received.filter((r) => r.type === "message").length, 0);
  const gaps = history.sessions.reduce((n, s) => n + s.received.filter((r) => r.type === "gap").length, 0);
  const kinds = new Set(history.faults.map((f) => f.kind));
  const statuses = new Map<string, number>();
  for (const r of history.statuses) statuses.set(`${r.what} ${r.status}`, (statuses.get(`${r.what} ${r.status}`) ?? 0) + 1);
  return [
    `seed ${seed}; ${history.faults.length} faults (${kinds.size} of ${FAULT_KINDS.length} kinds):`,
    ...history.faults.map((f) => `  ${describeFault(f)}, healthy ${f.healthyAt === undefined ? "never" : at(f.healthyAt)}`),
    `posts: ${[...fates].map(([k, v]) => `${v} ${k}`).join(", ")}; ` +
      `${received} deliveries, ${gaps} gaps, ${history.sessions.length} sessions`,
    `answers outside 2xx: ${[...statuses].map(([k, v]) => `${k}: ${v}`).join(", ") || "none"}`,
  ].join("\n");
}
