import { spawn } from "node:child_process";
import { once } from "node:events";
import { beforeAll, describe, expect, it } from "vitest";
import { get, seedUrl } from "./core-helpers.js";
import { CLI, cliPerTest, ensureBuilt, postJson, type RunningCli } from "./helpers.js";
import { nowSeconds, SECRET, signJwt } from "./jwt-helpers.js";
import { redisPerTest } from "./redis-harness.js";
import { RedisClient } from "../src/redis/index.js";
import { LineClient } from "./transport-clients.js";

/*
 * --jwt-secret with --redis (spec §4, §10), through real processes on a real
 * Redis: the JWT is verified by the process it comes to, and the name it
 * proves is the cluster's; a request without a proof appends nothing.
 */

const startCli = cliPerTest();
const startRedis = redisPerTest();

beforeAll(ensureBuilt, 60_000);

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const jwtOf = (sub: string, claims: Record<string, unknown> = {}): string => signJwt({ sub, iat: nowSeconds(), exp: nowSeconds() + 300, ...claims });

async function processes(n: number, url: string, extra: string[] = []): Promise<RunningCli[]> {
  return Promise.all(Array.from({ length: n }, () => startCli(CLI, ["--port", "0", "--redis", url, "--log-level", "warn", "--jwt-secret", SECRET, ...extra])));
}

async function streamLength(url: string): Promise<number> {
  const client = new RedisClient({ url });
  await client.connect();
  try {
    return Number(await client.call("XLEN", "pollchat:log"));
  } finally {
    await client.close();
  }
}

/** The TCP gateway's port, from the line the CLI prints after its listening line. */
async function tcpPortOf(cli: RunningCli): Promise<number> {
  const line = /^pollchat tcp gateway on \S+:(\d+)$/m;
  const deadline = Date.now() + 5000;
  while (!line.test(cli.stdout())) {
    if (Date.now() > deadline) throw new Error(`no TCP line; stdout: ${cli.stdout()}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 50);
      cli.child.stdout!.once("data", () => (clearTimeout(timer), resolve()));
    });
  }
  return Number(line.exec(cli.stdout())![1]);
}

async function runToExit(args: string[]): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, err };
}

describe("--jwt-secret with --redis", () => {
  it("a name proven on A is the cluster's: its token on B, a second JWT on B joins it; no proof, forged or expired: 401 on both, nothing appended", async () => {
    const redis = await startRedis();
    const [a, b] = (await processes(2, redis.url)).map((p) => p.url);
    const joined = await postJson(`${a}/api/join`, {}, bearer(jwtOf("carol")));
    expect(joined.status).toBe(200);
    const auth = bearer(joined.body.token);
    const posted = await postJson(`${b}/api/messages`, { text: "via b" }, auth);
    expect(posted.status).toBe(201);
    const polled = await fetch(`${b}/api/poll?cursor=${joined.body.cursor}&timeout=0`, { headers: auth });
    expect(((await polled.json()) as { messages: { text: string }[] }).messages.map((m) => m.text)).toContain("via b");
    const again = await postJson(`${b}/api/join`, { jwt: jwtOf("carol") });
    expect(again.status).toBe(200);
    expect(again.body.token).toBe(joined.body.token);

    const before = await streamLength(redis.url);
    const expired = jwtOf("carol", { exp: nowSeconds() - 120 });
    const forged = signJwt({ sub: "carol", exp: nowSeconds() + 300 }, "another-secret-that-is-32-bytes-long");
    for (const url of [a!, b!]) {
      expect((await postJson(`${url}/api/join`, { name: "dave" })).status).toBe(401);
      expect((await get(seedUrl(url, { name: "dave", timeout: "0" }))).status).toBe(401);
      expect((await get(seedUrl(url, { name: "carol", message: "spoof" }))).status).toBe(401);
      for (const jwt of [expired, forged]) {
        expect((await postJson(`${url}/api/join`, {}, bearer(jwt))).status).toBe(401);
        expect((await get(seedUrl(url, { name: "carol", message: "x" }), bearer(jwt))).status).toBe(401);
      }
    }
    expect(await streamLength(redis.url)).toBe(before);
  }, 20_000);

  it("the rooms claim of a join on A holds on B, and on C started late from a snapshot", async () => {
    const redis = await startRedis();
    const [a, b] = (await processes(2, redis.url, ["--redis-snapshot-every", "5", "--rate", "1000"])).map((p) => p.url);
    const joined = await postJson(`${a}/api/join`, {}, bearer(jwtOf("carol", { rooms: ["dev", "ops"] })));
    expect(joined.body.room).toBe("dev");
    const auth = bearer(joined.body.token);
    const refusedOn = async (url: string): Promise<void> => {
      expect((await postJson(`${url}/api/join`, { room: "sales" }, auth)).status).toBe(403);
      expect((await get(seedUrl(url, { name: "carol", room: "sales", timeout: "0" }), auth)).status).toBe(403);
      expect((await postJson(`${url}/api/join`, { room: "sales" }, bearer(jwtOf("carol")))).status).toBe(403);
    };
    await refusedOn(b!);
    // Posts until two snapshots were saved: the second trims the log below the first, carol's join with it.
    let saved = 0;
    // (Two saves take ~5 s with the saver looking every 2 s: room for a busy machine.)
    const deadline = Date.now() + 15_000;
    while (saved < 2 && Date.now() < deadline) {
      for (let i = 0; i < 5; i++) expect((await postJson(`${a}/api/messages`, { text: `m${i}` }, auth)).status).toBe(201);
      // Saved by either process (one at a time, whichever gets the lock).
      saved = 0;
      for (const url of [a, b!]) saved += Number(/pollchat_redis_snapshots_saved (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);
    }
    expect(saved).toBeGreaterThanOrEqual(2);
    const [c] = (await processes(1, redis.url, ["--redis-snapshot-every", "5", "--rate", "1000"])).map((p) => p.url);
    await refusedOn(c!);
    expect((await postJson(`${c}/api/join`, { room: "ops" }, auth)).status).toBe(200);
  }, 40_000);

  it("TCP /token <jwt> on B speaks as the session joined on A", async () => {
    const redis = await startRedis();
    const [a, b] = await processes(2, redis.url, ["--tcp-port", "0"]);
    const joined = await postJson(`${a!.url}/api/join`, {}, bearer(jwtOf("carol")));
    const line = new LineClient(await tcpPortOf(b!));
    try {
      await line.waitFor((l) => l.startsWith("Send your token"), "the token prompt");
      line.send(`/token ${jwtOf("carol")}\n`);
      await line.waitFor((l) => l === "* you are carol, in lobby", "who it is");
      line.send("over tcp\n");
      const deadline = Date.now() + 5000;
      let cursor = joined.body.cursor as number;
      let texts: string[] = [];
      while (!texts.includes("over tcp") && Date.now() < deadline) {
        const res = await fetch(`${a!.url}/api/poll?cursor=${cursor}&timeout=500`, { headers: bearer(joined.body.token) });
        const body = (await res.json()) as { messages: { text: string }[]; cursor: number };
        texts = texts.concat(body.messages.map((m) => m.text));
        cursor = body.cursor;
      }
      expect(texts).toContain("over tcp");
    } finally {
      line.socket.destroy();
    }
  }, 20_000);

  it("processes with and without an identity source refuse to share a Redis: exit 1, one line", async () => {
    const redis = await startRedis();
    await processes(1, redis.url);
    const without = await runToExit(["--port", "0", "--redis", redis.url]);
    expect(without.code).toBe(1);
    expect(without.err.trim().split("\n").length).toBe(1);
    expect(without.err).toMatch(/identity off \(the cluster's: on\)/);
    const other = await startRedis();
    await startCli(CLI, ["--port", "0", "--redis", other.url, "--log-level", "warn"]);
    const withJwt = await runToExit(["--port", "0", "--redis", other.url, "--jwt-secret", SECRET]);
    expect(withJwt.code).toBe(1);
    expect(withJwt.err).toMatch(/identity on \(the cluster's: off\)/);
    expect(withJwt.err).not.toContain(SECRET);
  }, 20_000);
});
