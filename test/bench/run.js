#!/usr/bin/env node
// npm run bench [-- --quick] [-- --only=S1,S3] [-- --path=seed|api|both] [-- --runs=3] [-- --profile] [-- --no-pin]
//   --quick    smaller N and M, shorter S3, one run per case unless --runs says otherwise
//   --goals    only the cases issue 14's goals name (S1 N=1000, S2 N=1000 and 5000, S3), full length
//   --only=    run only these scenarios
//   --path=    how pollchat's pollers poll: the seed's `/`, the JSON API (`/api/join`,
//              `/api/poll`), or both (default); posts always go through `/`
//   --runs=    runs per case (default 3, 1 with --quick); the table shows their medians
//   --profile  run the servers with --cpu-prof: test/bench/results/profiles/KIND-N.cpuprofile
//              (summarise one with node test/bench/profile-summary.js FILE)
//   --no-pin   do not pin server and generator to cores with taskset
//   S5         1, 2 and 3 processes on one Redis beside one without (cluster.js; needs redis-server)
//
// Starts pollchat (dist/cli.js, once per path) and the baseline (baseline-server.js)
// one after the other, each alone and fresh for every run of every case, drives
// them with the same generator (load.js, its own process), and prints pollchat,
// baseline and their ratio as a markdown table, then issue 14's goals met or
// missed; every run's figures go to test/bench/results/.
// On Linux with taskset and 2+ cores, the server runs on core 0 and the
// generator on core 1.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Report } from "./report.js";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, "../..");
const argv = process.argv.slice(2);
const QUICK = argv.includes("--quick");
const PROFILE = argv.includes("--profile");
const NO_PIN = argv.includes("--no-pin");
const ONLY = (argv.find((a) => a.startsWith("--only="))?.slice(7) ?? "S1,S2,S3,S4,S5").toUpperCase().split(",");
const PATH_ARG = argv.find((a) => a.startsWith("--path="))?.slice(7) ?? "both";
const RUNS_ARG = argv.find((a) => a.startsWith("--runs="))?.slice(7);
const RUNS = RUNS_ARG === undefined ? (QUICK ? 1 : 3) : Number(RUNS_ARG);
if (!["seed", "api", "both"].includes(PATH_ARG)) throw new Error(`--path is seed, api or both, not "${PATH_ARG}"`);
if (!(Number.isInteger(RUNS) && RUNS >= 1 && RUNS <= 50)) throw new Error(`--runs is a whole number from 1 to 50, not "${RUNS_ARG}"`);

/**
 * What runs in each case: pollchat polled through the seed's `/`, pollchat
 * polled through the JSON API, and the baseline (which speaks only `/`).
 */
const SEED = { key: "seed", kind: "pollchat", path: "seed", label: "pollchat seed /" };
const API = { key: "api", kind: "pollchat", path: "api", label: "pollchat /api/poll" };
const BASELINE = { key: "baseline", kind: "baseline", path: "seed", label: "baseline" };
const POLLCHAT = PATH_ARG === "both" ? [SEED, API] : PATH_ARG === "api" ? [API] : [SEED];

const GOALS = argv.includes("--goals");
const PLAN = GOALS
  ? {
      // Only the cases issue 14's goals name, at full length.
      s1: [1000],
      s2: [
        { n: 1000, m: 200 },
        { n: 5000, m: 50 },
      ],
      s3: { n: 1000, intervalMs: 100, durationMs: 10_000 },
      s4: { connections: 8, durationMs: 4000 },
    }
  : QUICK
  ? {
      s1: [1000, 10_000],
      s2: [
        { n: 100, m: 200 },
        { n: 1000, m: 50 },
      ],
      s3: { n: 1000, intervalMs: 100, durationMs: 3000 },
      s4: { connections: 8, durationMs: 1500 },
    }
  : {
      s1: [1000, 5000, 10_000],
      s2: [
        { n: 100, m: 1000 },
        { n: 1000, m: 200 },
        { n: 5000, m: 50 },
      ],
      s3: { n: 1000, intervalMs: 100, durationMs: 10_000 },
      s4: { connections: 8, durationMs: 4000 },
    };

/** pollchat's defaults throttle one poster to 10 posts/s and announce every join in small rooms: lifted for S2-S4. */
// Only limits meant for abuse are lifted: every poller comes from 127.0.0.1.
const LOAD_FLAGS = (n) => ["--rate", "1000000", "--rate-per-ip", "0", "--max-sessions", String(Math.max(10_000, n + 100)), "--max-sessions-per-ip", "0", "--presence-limit", "0"];
const FD_LIMIT = 65535;
const SERVER_CORE = 0;
const GENERATOR_CORE = 1;
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

const pinning = (() => {
  if (NO_PIN || process.platform !== "linux") return false;
  const cores = typeof availableParallelism === "function" ? availableParallelism() : cpus().length;
  if (cores < 2) return false;
  return spawnSync("taskset", ["-c", String(GENERATOR_CORE), "true"]).status === 0;
})();

/**
 * Runs a command with the file descriptor limit raised (10,000 held polls need
 * 10,000 sockets on each side) and, where possible, pinned to one core.
 */
function spawnWrapped(core, args, options) {
  const pin = pinning ? ["taskset", "-c", String(core)] : [];
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  return spawn("sh", ["-c", script, "sh", ...pin, ...args], options);
}

function fdLimit() {
  const r = spawnSync("sh", ["-c", `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ulimit -n`], { encoding: "utf8" });
  return r.stdout.trim();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ processes

let profiles = 0;

/** A server under test, with its memory (from the preloaded mem-probe) and CPU time (from /proc). */
async function startServer(kind, flags = []) {
  const script = kind === "pollchat" ? join(ROOT, "dist", "cli.js") : join(BENCH, "baseline-server.js");
  const nodeFlags = ["--expose-gc", "--import", pathToFileURL(join(BENCH, "mem-probe.js")).href];
  if (PROFILE) nodeFlags.push("--cpu-prof", "--cpu-prof-dir", join(BENCH, "results", "profiles"), "--cpu-prof-name", `${kind}-${++profiles}.cpuprofile`);
  const child = spawnWrapped(SERVER_CORE, [process.execPath, ...nodeFlags, script, "--port", "0", ...flags], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr = [];
  const memWaiters = [];
  let exited = null;
  const exit = new Promise((r) => child.once("exit", (code, signal) => r((exited = { code, signal }))));
  lines(child.stderr, (line) => {
    if (line.startsWith("@@mem ")) memWaiters.shift()?.(JSON.parse(line.slice(6)));
    else if (stderr.push(line) > 50) stderr.shift();
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start in 10 s: ${stderr.join("\n")}`)), 10_000);
    lines(child.stdout, (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${kind} exited (${code ?? signal}) before listening: ${stderr.join("\n").trim()}`));
    });
  });
  return {
    kind,
    url,
    pid: child.pid,
    /** Heap and RSS after a full GC, as the server sees them. */
    mem() {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${kind} gave no memory reading`)), 10_000);
        memWaiters.push((m) => {
          clearTimeout(timer);
          resolve(m);
        });
        child.kill("SIGUSR2");
      });
    },
    /** VmRSS in bytes, from /proc (what the kernel charges the process). */
    vmRss() {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
    },
    /** User + system CPU seconds so far. */
    cpuSeconds() {
      try {
        const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
      } catch {
        return NaN;
      }
    },
    /** Seconds the main thread sat runnable but not running: other processes on its core. */
    runQueueWaitSeconds() {
      try {
        return Number(readFileSync(`/proc/${child.pid}/schedstat`, "utf8").split(" ")[1]) / 1e9;
      } catch {
        return NaN;
      }
    },
    stderrTail: () => stderr.slice(-10).join("\n"),
    async stop() {
      if (exited) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 8000);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
  };
}

function lines(stream, onLine) {
  let rest = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop();
    for (const line of parts) onLine(line);
  });
}

/** The generator, pinned away from the server; call(cmd, params) runs one command in it. */
function startGenerator() {
  const child = spawnWrapped(GENERATOR_CORE, [process.execPath, join(BENCH, "load.js")], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let nextId = 1;
  const pending = new Map();
  child.on("message", (msg) => {
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(`generator: ${msg.error}`));
    else p?.resolve(msg.result);
  });
  child.once("exit", (code) => {
    for (const p of pending.values()) p.reject(new Error(`generator exited (${code})`));
  });
  return {
    call(cmd, params) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, ...params });
      });
    },
    stop() {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(undefined);
        child.once("exit", resolve);
        child.disconnect();
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      });
    },
  };
}

/** One case on one server: fresh server and generator, the server's CPU use measured around `body`. */
async function withServer(kind, flags, body) {
  const server = await startServer(kind, flags);
  const gen = startGenerator();
  try {
    await sleep(200);
    const cpu0 = server.cpuSeconds();
    const wait0 = server.runQueueWaitSeconds();
    const t0 = performance.now();
    // Every command learns the server's pid, so the generator can charge each phase its CPU time.
    const call = (cmd, params) => gen.call(cmd, { ...params, serverPid: server.pid, clkTck: CLK_TCK });
    const result = await body(server, { call });
    const wall = (performance.now() - t0) / 1000;
    const serverCpu = (server.cpuSeconds() - cpu0) / wall;
    const serverWait = (server.runQueueWaitSeconds() - wait0) / wall;
    return { ...result, serverCpuUtil: Math.round(serverCpu * 1000) / 1000, serverWait: Math.round(serverWait * 1000) / 1000 };
  } catch (error) {
    throw new Error(`${kind}: ${error.message}\n${server.stderrTail()}`);
  } finally {
    await gen.stop();
    await server.stop();
  }
}

// ------------------------------------------------------------------ scenarios

async function s1({ kind, path }, n) {
  // Default settings on purpose: 10,000 held polls must work without flags.
  return withServer(kind, [], async (server, gen) => {
    const before = await server.mem();
    const rssBefore = server.vmRss();
    const hold = await gen.call("hold", { url: server.url, n, path });
    const after = await server.mem();
    const rssAfter = server.vmRss();
    const probe = await gen.call("probe", { url: server.url });
    await gen.call("release", {});
    return {
      n,
      hold,
      probe,
      rssBefore,
      rssAfter,
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
      rssPerPoll: Math.round((rssAfter - rssBefore) / n),
      heapPerPoll: Math.round((after.heapUsed - before.heapUsed) / n),
      cpu: hold.cpu,
    };
  });
}

async function s2({ kind, path }, { n, m }) {
  return withServer(kind, kind === "pollchat" ? LOAD_FLAGS(n) : [], (server, gen) => gen.call("fanout", { url: server.url, n, m, path }));
}

async function s3({ kind, path }, { n, intervalMs, durationMs }) {
  return withServer(kind, kind === "pollchat" ? LOAD_FLAGS(n) : [], (server, gen) =>
    gen.call("latency", { url: server.url, n, intervalMs, durationMs, path }),
  );
}

/** Posts only, through `/` on both servers: no path dimension. */
async function s4({ kind }, { connections, durationMs }, persistent) {
  const dir = persistent ? mkdtempSync(join(tmpdir(), `pollchat-bench-${kind}-`)) : undefined;
  const flags = [...(kind === "pollchat" ? LOAD_FLAGS(connections) : []), ...(dir ? ["--data-dir", dir] : [])];
  try {
    const result = await withServer(kind, flags, (server, gen) => gen.call("posts", { url: server.url, connections, durationMs }));
    // A server that takes --data-dir but writes nothing there has no persistence yet.
    if (dir && dirBytes(dir) === 0) return { na: "ignores --data-dir: no persistence yet", ...result };
    return result;
  } catch (error) {
    if (dir && /exited/.test(error.message)) return { na: `refuses --data-dir: ${error.message.split("\n")[0]}` };
    throw error;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

function dirBytes(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(path) : statSync(path).size;
  }
  return total;
}

// ------------------------------------------------------------------ report

const report = new Report();
const raw = {};

/**
 * Runs a case RUNS times on every server, each run on a fresh process, alone.
 * The order alternates from run to run, so a drift over time (a warming
 * machine, another job starting) favours neither side.
 */
async function compare(label, variants, run) {
  const results = Object.fromEntries(variants.map((v) => [v.key, []]));
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) {
      process.stderr.write(`bench: ${label} on ${variant.label}${RUNS > 1 ? ` (run ${i + 1} of ${RUNS})` : ""}...`);
      const t0 = performance.now();
      results[variant.key].push(await run(variant));
      process.stderr.write(` ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
  }
  raw[label] = results;
  return results;
}

/** Correctness counters must all be 0: anything else is a failure, reported loudly. */
const problems = [];
function checkDelivery(label, results) {
  for (const [key, runs] of Object.entries(results)) {
    runs.forEach((r, i) => {
      const where = `${label} on ${key}${runs.length > 1 ? ` (run ${i + 1})` : ""}`;
      for (const field of ["lost", "duplicates", "outOfOrder", "gaps"]) {
        if (r[field] !== 0) problems.push(`${where}: ${field} = ${r[field]}`);
      }
      if (Object.keys(r.pollErrors ?? {}).length) problems.push(`${where}: poll errors ${JSON.stringify(r.pollErrors)}`);
      if (Object.keys(r.registerFailures ?? {}).length) problems.push(`${where}: registrations failed ${JSON.stringify(r.registerFailures)}`);
    });
  }
}

const withThousands = (n) => n.toLocaleString("en-US");

async function main() {
  if (!existsSync(join(ROOT, "dist", "cli.js"))) throw new Error("dist/cli.js is missing: run `npm run build` (npm run bench does it first)");
  const started = new Date();
  const t0 = performance.now();
  process.stderr.write(
    `bench: ${QUICK ? "quick" : "full"} run, ${RUNS} run${RUNS > 1 ? "s" : ""} per case, pollchat via ${POLLCHAT.map((v) => v.path).join(" and ")}; fd limit ${fdLimit()}; ${pinning ? `server on core ${SERVER_CORE}, generator on core ${GENERATOR_CORE} (taskset)` : "no core pinning"}\n`,
  );
  const variants = [...POLLCHAT, BASELINE];

  if (ONLY.includes("S1")) {
    for (const n of PLAN.s1) {
      const label = `S1 held polls N=${n}`;
      const r = await compare(label, variants, (v) => s1(v, n));
      const goal = n === 1000 ? `S1 RSS per held poll, N=${withThousands(n)}` : undefined;
      report.add(label, "RSS per held poll", r, (x) => x.rssPerPoll, { unit: "bytes", better: "lower", target: goal && 1.0, goal });
      report.add(label, "heap per held poll", r, (x) => x.heapPerPoll, { unit: "bytes", better: "lower" });
      report.add(label, "held polls served (probe)", r, (x) => x.probe.served, { better: "higher", target: n === 10_000 ? 1 : undefined });
      for (const [key, runs] of Object.entries(r)) {
        for (const run of runs) {
          if (run.probe.served !== n) problems.push(`${label} on ${key}: only ${run.probe.served} of ${n} held polls served (the probe's post answered ${run.probe.postStatus})`);
          if (Object.keys(run.probe.errors).length) problems.push(`${label} on ${key}: poll errors ${JSON.stringify(run.probe.errors)}`);
        }
      }
    }
  }
  if (ONLY.includes("S2")) {
    for (const c of PLAN.s2) {
      const label = `S2 fan-out N=${c.n} M=${c.m}`;
      const r = await compare(label, variants, (v) => s2(v, c));
      const aim = c.n === 1000 || c.n === 5000;
      const at = `N=${withThousands(c.n)}`;
      report.add(label, "deliveries/s", r, (x) => x.deliveriesPerSec, { target: aim ? 1.0 : undefined, goal: aim ? `S2 fan-out deliveries/s, ${at}` : undefined });
      report.add(label, "server CPU per delivery", r, (x) => x.serverCpuUsPerDelivery, {
        unit: "µs",
        better: "lower",
        digits: 1,
        target: aim ? 1.0 : undefined,
        goal: aim ? `S2 server CPU per delivery, ${at}` : undefined,
      });
      report.add(label, "posts/s (poster)", r, (x) => x.postsPerSec);
      report.add(label, "lost / dup / out-of-order", r, (x) => `${x.lost} / ${x.duplicates} / ${x.outOfOrder}`);
      checkDelivery(label, r);
    }
  }
  if (ONLY.includes("S3")) {
    const c = PLAN.s3;
    const label = `S3 latency N=${c.n}, 1 msg/${c.intervalMs} ms for ${c.durationMs / 1000} s`;
    const r = await compare(label, variants, (v) => s3(v, c));
    const rate = `${1000 / c.intervalMs} msg/s`;
    report.add(label, "p50", r, (x) => x.p50Ms, { unit: "ms", better: "lower", digits: 1, target: 1.1, goal: `S3 delivery latency p50, ${rate}` });
    report.add(label, "p99", r, (x) => x.p99Ms, { unit: "ms", better: "lower", digits: 1, target: 1.1, goal: `S3 delivery latency p99, ${rate}` });
    report.add(label, "max", r, (x) => x.maxMs, { unit: "ms", better: "lower", digits: 1 });
    // The server's CPU over the posting window and the last deliveries, as a share of one core.
    report.add(label, "server CPU", r, (x) => x.cpu.serverUtil * 100, { unit: "% of a core", better: "lower", digits: 1, target: 1.2, goal: `S3 server CPU at ${rate}` });
    report.add(label, "lost / dup / out-of-order", r, (x) => `${x.lost} / ${x.duplicates} / ${x.outOfOrder}`);
    checkDelivery(label, r);
  }
  if (ONLY.includes("S4")) {
    const c = PLAN.s4;
    const label = `S4 posts, ${c.connections} connections, no pollers`;
    const r = await compare(label, [SEED, BASELINE], (v) => s4(v, c, false));
    report.add(label, "posts/s", r, (x) => x.postsPerSec);
    report.add(label, "server CPU per post", r, (x) => x.serverCpuUsPerPost, { unit: "µs", better: "lower", digits: 1 });
    const labelDisk = `S4 posts with --data-dir`;
    const rd = await compare(labelDisk, [SEED, BASELINE], (v) => s4(v, c, true));
    report.add(labelDisk, "posts/s", rd, (x) => x.postsPerSec);
    report.add(labelDisk, "server CPU per post", rd, (x) => x.serverCpuUsPerPost, { unit: "µs", better: "lower", digits: 1 });
  }

  // S5 (issue 12) runs on its own: several servers and a Redis, not pollchat beside the baseline.
  let cluster = "";
  if (ONLY.includes("S5")) {
    const run = spawnSync(process.execPath, [join(BENCH, "cluster.js"), ...(QUICK ? ["--quick"] : [])], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    cluster = run.status === 0 ? run.stdout : `S5 failed (${run.status}): ${run.stdout}`;
    if (run.status !== 0) problems.push("S5: lost or doubled deliveries, or it could not run");
  }

  const notes = [
    "",
    `Ratio is pollchat / baseline${RUNS > 1 ? `, of the medians of ${RUNS} runs (each run's ratio beside it)` : ""}. Path: how pollchat's pollers polled, the seed's \`/?name=N&cursor=C&timeout=30000\` (X-Cursor) or the JSON API (\`POST /api/join\`, then \`GET /api/poll?cursor=C&timeout=30000\` with \`Authorization: Bearer\`, the answer parsed as JSON); the poster posts through \`/\` on every server, and the baseline (which has only \`/\`) is the same for both paths.`,
    `pollchat ran as \`node dist/cli.js --port 0\` with default settings for S1, and with \`--rate 1000000 --rate-per-ip 0 --max-sessions max(10000, N+100) --max-sessions-per-ip 0 --presence-limit 0\` for S2-S4 (its default rate limits of 10 posts/s per session and 30 per address would throttle the one poster, and join notices to rooms up to 200 members would add lines to the fan-out; the baseline sends none).`,
    `Each run of each case had a fresh server process, alone; ${RUNS > 1 ? "the order of the servers alternated from run to run" : "pollchat first, then the baseline"}. ${pinning ? `Server pinned to core ${SERVER_CORE}, generator to core ${GENERATOR_CORE} with taskset.` : "No core pinning (no taskset or a single core)."} ⚠ marks a process at 90% or more of a core: with the generator there, the figure measures the generator too.`,
    "The generator connects from 200 loopback source addresses in turn (127.0.0.10-209), as many clients would, so a per-address connection cap (pollchat's default is 256) is not what S1 measures.",
    "Run-queue wait: the largest share of a case's time that its server or generator sat runnable but not running (Linux schedstat), i.e. other processes on its core; ⚠ from 10%, where figures are unreliable.",
    `Memory per held poll = (after - before) / N, after a full GC, with every poll held; it includes the connection and the session a held poll needs. S3 server CPU is the server's CPU time over the posting window (and the last deliveries) divided by its length.`,
  ];
  const elapsed = (performance.now() - t0) / 1000;
  const goals = report.goals();
  const text = [
    report.table(),
    ...notes,
    "",
    `${QUICK ? "Quick" : "Full"} run, ${RUNS} run${RUNS > 1 ? "s" : ""} per case, ${elapsed.toFixed(0)} s, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}.`,
    ...(goals ? ["", `### Issue 14 goals${RUNS > 1 ? ` (medians of ${RUNS} runs)` : ""}`, "", goals] : []),
  ].join("\n");
  process.stdout.write(text + "\n");
  if (cluster) process.stdout.write(`\n${cluster}`);
  if (problems.length) process.stdout.write(`\n**Correctness problems:**\n${problems.map((p) => `- ${p}`).join("\n")}\n`);

  const dir = join(BENCH, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${started.toISOString().replace(/[:.]/g, "-")}${QUICK ? "-quick" : ""}.json`);
  const json = {
    date: started.toISOString(),
    quick: QUICK,
    runs: RUNS,
    paths: POLLCHAT.map((v) => v.path),
    elapsedSeconds: Math.round(elapsed),
    node: process.version,
    cpus: cpus().map((c) => c.model),
    pinning,
    fdLimit: fdLimit(),
    plan: PLAN,
    pollchatLoadFlags: LOAD_FLAGS(1000),
    rows: report.rows.map(({ digits, ...r }) => r),
    misses: report.misses().map((r) => ({ goal: r.goal ?? `${r.scenario} ${r.metric}`, path: r.path, ratio: r.ratio, target: r.target, better: r.better })),
    problems,
    // Every run of every case, in the order each server ran them.
    raw,
    cluster,
  };
  writeFileSync(file, JSON.stringify(json, null, 2) + "\n");
  process.stdout.write(`\nResults: ${relative(ROOT, file)}\n`);
  // A missed goal is a figure to work on; a lost, duplicated or out-of-order message is a failure.
  if (problems.length) process.exitCode = 1;
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
