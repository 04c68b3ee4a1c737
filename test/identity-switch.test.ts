import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { CLI, cliPerTest, ensureBuilt, postJson, startServer, type RunningCli } from "./helpers.js";
import { nowSeconds, SECRET, signJwt } from "./jwt-helpers.js";
import { metric, redisCommand, redisPerTest, until } from "./redis-harness.js";

/*
 * A switch to an identity source (spec §4): names taken without a proof
 * before --jwt-secret was set end at the start with it, through real processes,
 * on --data-dir and on --redis; a JWT is never handed a session no proof made.
 */

beforeAll(ensureBuilt, 120_000);

const runCli = cliPerTest();
const startRedis = redisPerTest();
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pollchat-switch-"));
  dirs.push(dir);
  return dir;
}

function start(args: string[]): Promise<RunningCli> {
  return runCli(CLI, ["--port", "0", "--host", "127.0.0.1", "--log-level", "warn", ...args]);
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const jwtOf = (sub: string): string => signJwt({ sub, iat: nowSeconds(), exp: nowSeconds() + 300 });

async function post(url: string, token: string, text: string): Promise<number> {
  return (await postJson(`${url}/api/messages`, { text }, bearer(token))).status;
}

async function lobbyHistory(url: string): Promise<{ type: string; from: string; text: string }[]> {
  const res = await fetch(`${url}/api/rooms/lobby/messages?limit=100`);
  return ((await res.json()) as { messages: { type: string; from: string; text: string }[] }).messages;
}

/** After the start with --jwt-secret: the squatter's token is refused, the real owner's JWT gets a session of its own. */
async function expectSwitched(url: string, oldToken: string): Promise<void> {
  expect(await post(url, oldToken, "still me")).toBe(401);
  const joined = await postJson(`${url}/api/join`, {}, bearer(jwtOf("ceo")));
  expect(joined.status).toBe(200);
  expect(joined.body.token).not.toBe(oldToken);
  expect(await post(url, joined.body.token, "the real ceo")).toBe(201);
  expect(await post(url, oldToken, "squatting")).toBe(401);
}

describe("a switch to --jwt-secret ends the sessions no proof made", () => {
  it("--data-dir: ceo claimed with a plain join; after a restart with --jwt-secret its token gets 401 and the JWT a fresh session", async () => {
    const dir = await tempDir();
    const before = await start(["--data-dir", dir]);
    const squat = await postJson(`${before.url}/api/join`, { name: "ceo" });
    expect(squat.status).toBe(200);
    expect(await post(before.url, squat.body.token, "hello")).toBe(201);
    expect(await before.stop()).toBe(0);

    // The log still works without a source: the session came back.
    const plain = await start(["--data-dir", dir]);
    expect(await post(plain.url, squat.body.token, "back")).toBe(201);
    expect(await plain.stop()).toBe(0);

    const after = await start(["--data-dir", dir, "--jwt-secret", SECRET]);
    // It ended as any end does: its leave is in the room's history (once its batch is durable).
    expect(await until(async () => (await lobbyHistory(after.url)).some((m) => m.type === "leave" && m.from === "ceo"))).toBe(true);
    await expectSwitched(after.url, squat.body.token);
    expect(await after.stop()).toBe(0);

    // The proven session comes back proven: its token still works, and the JWT joins it again.
    const proven = await postJson(`${(await start(["--data-dir", dir, "--jwt-secret", SECRET])).url}/api/join`, {}, bearer(jwtOf("ceo")));
    expect(proven.status).toBe(200);
  }, 40_000);

  it("--data-dir: a log written before sessions recorded their proof and address loads, its sessions unproven", async () => {
    const dir = await tempDir();
    const last = Date.now() * 1000;
    const token = "old-format-token-of-twenty-four-bytes-xx";
    const lines = [
      { k: "head", v: 1, last },
      { k: "hist", m: { id: last - 2, type: "message", room: "lobby", from: "ceo", text: "from the old log", ts: Date.now() } },
      { k: "sess", n: "ceo", t: token, s: last - 3, r: ["lobby"], c: "lobby", q: [] },
      { k: "sess", n: "ann", t: "another-old-token-of-twenty-four-bytes", s: last - 1 },
      { k: "join", n: "ann", r: "lobby" },
    ];
    await writeFile(join(dir, "pollchat.log"), lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
    const plain = await start(["--data-dir", dir]);
    expect(plain.stderr()).not.toContain("set aside");
    expect(await post(plain.url, token, "loaded")).toBe(201);
    expect((await lobbyHistory(plain.url)).map((m) => m.text)).toContain("from the old log");
    expect(await plain.stop()).toBe(0);

    const after = await start(["--data-dir", dir, "--jwt-secret", SECRET]);
    await expectSwitched(after.url, token);
    expect(await post(after.url, "another-old-token-of-twenty-four-bytes", "ann")).toBe(401);
  }, 40_000);

  it("--redis: ceo claimed before; processes restarted with --jwt-secret end it alike: its token gets 401 on each, the JWT a fresh session", async () => {
    const redis = await startRedis();
    const before = await start(["--redis", redis.url, "--redis-snapshot-every", "1"]);
    const squat = await postJson(`${before.url}/api/join`, { name: "ceo" });
    expect(squat.status).toBe(200);
    expect((await postJson(`${before.url}/api/join`, { name: "cfo" })).status).toBe(200);
    // Both in a snapshot (the saver looks every 2 s), ceo's post after it in the log.
    expect(await until(async () => (await metric(before.url, "pollchat_redis_snapshots_saved")) >= 1, 15_000)).toBe(true);
    expect(await post(before.url, squat.body.token, "hello")).toBe(201);
    expect(await before.stop()).toBe(0);
    // The limits agreed without a source: an operator who switches stops every process and deletes them (README).
    await redisCommand(redis, ["DEL", "pollchat:limits"]);

    const [a, b] = await Promise.all([0, 1].map(() => start(["--redis", redis.url, "--jwt-secret", SECRET])));
    for (const p of [a!, b!]) expect(await post(p.url, squat.body.token, "still me")).toBe(401);
    await expectSwitched(b!.url, squat.body.token);
    expect(await post(a!.url, squat.body.token, "on a")).toBe(401);
    // cfo's name is free for its proof too, on either process.
    const cfo = await postJson(`${a!.url}/api/join`, {}, bearer(jwtOf("cfo")));
    expect(cfo.status).toBe(200);
    // Every process saw the ends: their leave notices are in the room's history on both.
    for (const p of [a!, b!]) expect((await lobbyHistory(p.url)).filter((m) => m.type === "leave").map((m) => m.from).sort()).toEqual(["ceo", "cfo"]);
  }, 40_000);
});

describe("a --redis snapshot written before sessions recorded their proof", () => {
  /** A log of one entry (of a kind no version knows: skipped), and a snapshot of the older format standing at it. */
  async function oldLog(): Promise<MemoryLog> {
    const log = new MemoryLog();
    const client = log.client();
    await client.append(['{"c":{"t":"from-a-later-version"}}'], client.deadline(5000));
    const pos = log.entries[0]!.id;
    const at = Number(pos.split("-")[0]);
    const lines = [
      { k: "cluster", v: 1, pos, at },
      { k: "head", v: 1, last: at * 1000 },
      { k: "sess", n: "ceo", t: OLD_TOKEN, s: at * 1000 - 5, r: ["lobby"], c: "lobby", q: [] },
      // The address was the cx line's then.
      { k: "cx", n: "ceo", m: pos, a: "203.0.113.7" },
    ];
    await log.snapshots.save(pos, [Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join(""))]);
    return log;
  }
  const OLD_TOKEN = "old-snapshot-token-of-twenty-four-bytes";

  it("loads: its sessions are unproven (they end under --jwt-secret), and count against the address its cx line named", async () => {
    const plain = await startServer({ sharedLog: (await oldLog()).client(), trustProxy: true, maxSessionsPerIp: 1 });
    try {
      expect(await post(plain.url, OLD_TOKEN, "loaded")).toBe(201);
      const over = await postJson(`${plain.url}/api/join`, { name: "ann" }, { "x-forwarded-for": "203.0.113.7" });
      expect([over.status, over.body.error.code]).toEqual([429, "too_many_sessions"]);
    } finally {
      await plain.close();
    }
    const switched = await startServer({ sharedLog: (await oldLog()).client(), jwtSecret: SECRET });
    try {
      await expectSwitched(switched.url, OLD_TOKEN);
    } finally {
      await switched.close();
    }
  });
});
