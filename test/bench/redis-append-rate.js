#!/usr/bin/env node
// node test/bench/redis-append-rate.js [--url=redis://…] [--aof] [--n=100000] [--seconds=5] [--windows=1,100,1000,10000] [--size=200]
//
// The ceiling of a shared log in one Redis stream (issue 12): how many appends
// per second one pollchat connection gets from one Redis, pipelined, with
// pollchat's own client (dist/redis: run `npm run build` first). For each
// command and each window (commands in flight at once) it runs N ops or for
// --seconds, whichever ends first, and prints ops/s and the CPU Redis and
// this client spent per op (Redis' from INFO cpu).
//   SET       SET k <size bytes>, for scale
//   XADD      XADD log * r <size bytes>
//   XADD-LUA  the recommended append script: id = max(last + 1, TIME in µs), SET last, XADD log <id>-0 r <payload>
//   XADD-LUA×10  the same script appending 10 records per call (a tick's posts in one call); ops/s and CPU per record
// Without --url it starts its own redis-server on a free port (no persistence;
// --aof: --appendonly yes --appendfsync always) and stops it by PID at the end.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient, RedisScript } from "../../dist/redis/index.js";

const argv = process.argv.slice(2);
const arg = (name, fallback) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const N = Number(arg("n", "100000"));
const SECONDS = Number(arg("seconds", "5"));
const WINDOWS = arg("windows", "1,100,1000,10000").split(",").map(Number);
const SIZE = Number(arg("size", "200"));
const AOF = argv.includes("--aof");

const APPEND = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local id = math.max(last + 1, now)
local text = string.format('%.0f', id)
redis.call('SET', KEYS[2], text)
redis.call('XADD', KEYS[1], text .. '-0', 'r', ARGV[1])
return text
`);

const APPEND_MANY = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local id = math.max(last + 1, now)
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], string.format('%.0f', id + i - 1) .. '-0', 'r', ARGV[i])
end
local text = string.format('%.0f', id + #ARGV - 1)
redis.call('SET', KEYS[2], text)
return text
`);
const BATCH = 10;

async function freePort() {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function ownRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pollchat-bench-redis-"));
  const persistence = AOF ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", dir, "--loglevel", "warning"], { stdio: "ignore" });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new RedisClient({ url, connectTimeoutMs: 500 });
  for (let i = 0; ; i++) {
    try {
      await probe.connect();
      await probe.close();
      break;
    } catch (error) {
      if (i >= 100 || child.exitCode !== null) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function redisCpuSeconds(client) {
  const info = (await client.call("INFO", "cpu")).toString();
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return field("used_cpu_user") + field("used_cpu_sys");
}

/** Runs `issue(i)` N times (or for SECONDS) with at most `window` in flight; returns ops done and the seconds they took. */
async function run(window, issue) {
  let sent = 0;
  let done = 0;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + SECONDS * 1000;
  await new Promise((resolve, reject) => {
    const next = () => {
      if (sent >= N || Date.now() > deadline) {
        if (done === sent) resolve();
        return;
      }
      const i = sent++;
      issue(i).then(() => {
        done++;
        next();
      }, reject);
    };
    for (let k = 0; k < Math.min(window, N); k++) next();
  });
  return { ops: done, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

const redis = arg("url", undefined) === undefined ? await ownRedis() : { url: arg("url"), stop: async () => {} };
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => void redis.stop().finally(() => process.exit(1)));
}
const client = new RedisClient({ url: redis.url });
await client.connect();
const payload = Buffer.alloc(SIZE, "x").toString();
const OPS = {
  SET: (i) => client.call("SET", `bench:set:${i % 1000}`, payload),
  XADD: () => client.call("XADD", "bench:xadd", "*", "r", payload),
  "XADD-LUA": () => client.runScript(APPEND, ["bench:lua", "bench:lua:last"], [payload]),
  [`XADD-LUA×${BATCH}`]: () => client.runScript(APPEND_MANY, ["bench:lua", "bench:lua:last"], Array(BATCH).fill(payload)),
};
/** Records one call appends. */
const RECORDS = { [`XADD-LUA×${BATCH}`]: BATCH };
console.log(`redis append rate: ${N} ops (at most ${SECONDS} s) of ${SIZE} bytes each, one connection, ${AOF ? "appendfsync always" : "no persistence"}, ${redis.url}`);
console.log("| command | in flight | ops/s | Redis CPU µs/op | client CPU µs/op |");
console.log("| --- | ---: | ---: | ---: | ---: |");
try {
  for (const [name, issue] of Object.entries(OPS)) {
    for (const window of WINDOWS) {
      await client.call("DEL", "bench:xadd", "bench:lua", "bench:lua:last");
      const redisBefore = await redisCpuSeconds(client);
      const clientBefore = process.cpuUsage();
      const run1 = await run(window, issue);
      const ops = run1.ops * (RECORDS[name] ?? 1);
      const seconds = run1.seconds;
      const clientCpu = process.cpuUsage(clientBefore);
      const redisCpu = (await redisCpuSeconds(client)) - redisBefore;
      const perOp = (s) => ((s * 1e6) / ops).toFixed(2);
      console.log(`| ${name} | ${window} | ${Math.round(ops / seconds)} | ${perOp(redisCpu)} | ${perOp((clientCpu.user + clientCpu.system) / 1e6)} |`);
    }
  }
  await client.call("DEL", "bench:xadd", "bench:lua", "bench:lua:last");
} finally {
  await client.close();
  await redis.stop();
}
