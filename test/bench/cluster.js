#!/usr/bin/env node
// node test/bench/cluster.js [--quick]   (npm run bench -- --only=S5 runs it too)
//
// Issue 12's bench: the same fan-out on one pollchat process without Redis, and
// on 1, 2 and 3 processes sharing one Redis (--redis), in one run. Pollers are
// spread over the processes, the poster posts to each in turn. Per case:
// posts/s, deliveries/s, p50/p99 delivery latency, server CPU per delivery (all
// processes together, and per process), and Redis' own append rate for the shared log.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import * as net from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const QUICK = process.argv.includes("--quick");
const POLLERS = QUICK ? 100 : 300;
const POSTS = QUICK ? 100 : 300;
const CLK_TCK = 100;
const FLAGS = ["--rate", "1000000", "--rate-per-ip", "0", "--max-sessions-per-ip", "0", "--max-connections-per-ip", "0", "--presence-limit", "0", "--log-level", "warn"];

async function freePort() {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pollchat-bench-redis-"));
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    if (await ping(port)) return { port, url: `redis://127.0.0.1:${port}`, child, dir };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("redis-server did not start");
}

async function ping(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => resolve(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      socket.destroy();
      resolve(d.toString().startsWith("+PONG"));
    });
  });
}



async function startPollchat(redisUrl, prefix) {
  // CLUSTER_PROFILE=DIR: each server writes a CPU profile there (summarise with profile-summary.js).
  const prof = process.env.CLUSTER_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", process.env.CLUSTER_PROFILE] : [];
  const args = [...prof, join(ROOT, "dist", "cli.js"), "--port", "0", ...FLAGS, ...(redisUrl ? ["--redis", redisUrl, "--redis-prefix", prefix] : [])];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => process.stderr.write(d));
  for (let i = 0; i < 400 && !/listening on (\S+)/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
  const url = /listening on (\S+)/.exec(out)?.[1];
  if (!url) throw new Error(`pollchat did not start: ${out}`);
  return { child, url: new URL(url) };
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

function get(url, path) {
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body, cursor: res.headers["x-cursor"] }));
    });
    req.on("error", () => resolve({ status: 0, body: "", cursor: undefined }));
    req.end();
  });
}

/** One case: pollers spread over the processes, one poster posting to each in turn. */
async function fanout(processes) {
  const pids = processes.map((p) => p.child.pid);
  const latencies = [];
  let delivered = 0;
  let duplicates = 0;
  let stop = false;
  const seen = new Set();
  const pollers = [];
  for (let i = 0; i < POLLERS; i++) {
    const url = processes[i % processes.length].url;
    const name = `p${i}`;
    const first = await get(url, `/?name=${name}&cursor=0&timeout=0`);
    let cursor = first.cursor;
    pollers.push(
      (async () => {
        while (!stop) {
          const r = await get(url, `/?name=${name}&cursor=${cursor}&timeout=3000`);
          if (r.status !== 200) continue;
          cursor = r.cursor ?? cursor;
          const now = performance.now();
          for (const line of r.body.split("\n")) {
            const m = /^poster : s(\d+)_([\d.]+)$/.exec(line);
            if (!m) continue;
            const key = `${i}:${m[1]}`;
            if (seen.has(key)) duplicates++;
            else {
              seen.add(key);
              delivered++;
              latencies.push(now - Number(m[2]));
            }
          }
        }
      })(),
    );
  }
  await new Promise((r) => setTimeout(r, 500));
  const cpu0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  for (let k = 0; k < POSTS; k++) {
    const url = processes[k % processes.length].url;
    await get(url, `/?name=poster&message=s${k}_${performance.now().toFixed(3)}`);
  }
  const postsDone = performance.now();
  const expected = POLLERS * POSTS;
  const deadline = performance.now() + 30_000;
  while (delivered < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]);
  stop = true;
  latencies.sort((a, b) => a - b);
  const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    postsPerSec: Math.round(POSTS / ((postsDone - t0) / 1000)),
    deliveriesPerSec: Math.round(delivered / elapsed),
    lost: expected - delivered,
    duplicates,
    p50: pick(0.5),
    p99: pick(0.99),
    cpuUsPerDelivery: (cpu.reduce((a, b) => a + b, 0) * 1e6) / delivered,
    cpuUsPerDeliveryPerProcess: cpu.map((c) => (c * 1e6) / delivered),
  };
}

/** Redis' own append rate for the shared log: pipelined XADDs of one small record each, for one second. */
async function appendRate(port) {
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  const record = '{"c":{"t":"post","k":"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH","x":"hello"},"o":"abcdefgh","q":1}';
  const command = `*5\r\n$4\r\nXADD\r\n$10\r\nbench:rate\r\n$1\r\n*\r\n$1\r\nr\r\n$${record.length}\r\n${record}\r\n`;
  let replies = 0;
  socket.on("data", (d) => {
    for (let i = 0; i < d.length; i++) if (d[i] === 0x0a) replies++;
  });
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() - t0 < 1000) {
    if (sent - replies < 5000) {
      socket.write(command.repeat(100));
      sent += 100;
    }
    await new Promise((r) => setImmediate(r));
  }
  const rate = Math.round((replies * 1000) / (performance.now() - t0));
  socket.destroy();
  return rate;
}

async function main() {
  const redis = await startRedis();
  const rows = [];
  try {
    for (const n of [0, 1, 2, 3]) {
      const processes = [];
      for (let i = 0; i < Math.max(1, n); i++) processes.push(await startPollchat(n === 0 ? undefined : redis.url, `bench${n}`));
      try {
        process.stderr.write(`bench: S5 ${n === 0 ? "1 process, no Redis" : `${n} process(es) on Redis`}...\n`);
        rows.push({ label: n === 0 ? "1 process, no Redis" : `${n} on one Redis`, ...(await fanout(processes)) });
      } finally {
        // SIGTERM: a server shuts down in 5 s at most (and writes its profile, if asked).
        await Promise.all(processes.map((p) => (p.child.kill("SIGTERM"), once(p.child, "exit"))));
      }
    }
    const rate = await appendRate(redis.port);
    const f = (v, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : "—");
    const out = [
      `S5 cluster: ${POLLERS} pollers spread over the processes, ${POSTS} posts to each process in turn (one poster)`,
      "",
      "| case | posts/s | deliveries/s | p50 ms | p99 ms | server CPU per delivery, all (µs) | per process (µs) | lost / dup |",
      "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
      ...rows.map((r) => `| ${r.label} | ${r.postsPerSec} | ${r.deliveriesPerSec} | ${f(r.p50, 1)} | ${f(r.p99, 1)} | ${f(r.cpuUsPerDelivery, 1)} | ${r.cpuUsPerDeliveryPerProcess.map((c) => f(c, 1)).join(" / ")} | ${r.lost} / ${r.duplicates} |`),
      "",
      `Redis append rate (pipelined XADD of one ~100-byte record, one connection): ${rate} entries/s: the ceiling of posts/s for one shared log.`,
    ];
    process.stdout.write(out.join("\n") + "\n");
    if (rows.some((r) => r.lost !== 0 || r.duplicates !== 0)) process.exitCode = 1;
  } finally {
    redis.child.kill("SIGKILL");
    await once(redis.child, "exit");
    rmSync(redis.dir, { recursive: true, force: true });
    agent.destroy();
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
