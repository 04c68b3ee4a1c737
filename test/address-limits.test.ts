import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { ChatOptions } from "../src/config.js";
import { CLI, cliPerTest, ensureBuilt, postJson, startServer, type TestServer } from "./helpers.js";
import { metric, redisPerTest, until } from "./redis-harness.js";

/*
 * The shares of one address (spec §8, README "Limits against slow and abusive clients"):
 * the posts of all sessions it created (--rate-per-ip), and its sessions counted
 * against it after a restart too (--max-sessions-per-ip), on one process, with
 * --data-dir and with --redis. Addresses are told apart by X-Forwarded-For behind --trust-proxy.
 */

beforeAll(ensureBuilt, 120_000);

const runCli = cliPerTest();
const startRedis = redisPerTest();
const servers: TestServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function start(options: ChatOptions): Promise<TestServer> {
  const server = await startServer({ trustProxy: true, ...options });
  servers.push(server);
  return server;
}

const from = (address: string, token?: string): Record<string, string> => ({
  "x-forwarded-for": address,
  ...(token !== undefined && { authorization: `Bearer ${token}` }),
});

async function join(url: string, name: string, address: string): Promise<{ status: number; token: string; error: string | undefined }> {
  const r = await postJson(`${url}/api/join`, { name }, from(address));
  return { status: r.status, token: r.body?.token, error: r.body?.error?.code };
}

async function joinAll(url: string, prefix: string, count: number, address: string): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const joined = await join(url, `${prefix}${i}`, address);
    expect(joined.status).toBe(200);
    tokens.push(joined.token);
  }
  return tokens;
}

/**
 * Posts through the sessions in turn (on the servers in turn) until one is refused, at most `max`:
 * each session is far below its own --rate, so only the address's bucket can refuse.
 */
async function postUntilRefused(urls: string[], tokens: string[], address: string, max = 60) {
  for (let i = 0; i < max; i++) {
    const r = await postJson(`${urls[i % urls.length]}/api/messages`, { text: `m${i}` }, from(address, tokens[i % tokens.length]));
    if (r.status !== 201) return { posted: i, refused: r };
  }
  return { posted: max, refused: undefined };
}

async function expectAddressRate(urls: string[]): Promise<void> {
  const tokens = await joinAll(urls[0]!, "x", 6, "203.0.113.7");
  const { posted, refused } = await postUntilRefused(urls, tokens, "203.0.113.7");
  // Bursts of twice --rate-per-ip (2 here), then its rate: far fewer than 6 sessions of --rate 1000 could post.
  expect(refused?.status).toBe(429);
  expect(refused?.body.error.code).toBe("rate_limited");
  expect(Number(refused?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect(posted).toBeGreaterThanOrEqual(4);
  expect(posted).toBeLessThan(20);
  // Another address is not touched by it, on every process.
  const other = await join(urls.at(-1)!, "y0", "198.51.100.9");
  for (const url of urls) expect((await postJson(`${url}/api/messages`, { text: "mine" }, from("198.51.100.9", other.token))).status).toBe(201);
}

describe("--rate-per-ip: the posts of every session one address created", () => {
  it("one process: six sessions of one address get 429 rate_limited with Retry-After past the address's rate; another address posts", async () => {
    const s = await start({ rate: 1000, ratePerIp: 2 });
    await expectAddressRate([s.url]);
  });

  it("0 turns it off: the same posts all pass", async () => {
    const s = await start({ rate: 1000, ratePerIp: 0 });
    const tokens = await joinAll(s.url, "x", 6, "203.0.113.7");
    expect((await postUntilRefused([s.url], tokens, "203.0.113.7", 30)).refused).toBeUndefined();
  });

  it("--redis: through two processes, refused alike; another address posts on both", async () => {
    const redis = await startRedis();
    const args = ["--port", "0", "--host", "127.0.0.1", "--redis", redis.url, "--log-level", "warn", "--trust-proxy", "--rate", "1000", "--rate-per-ip", "2"];
    const [a, b] = await Promise.all([runCli(CLI, args), runCli(CLI, args)]);
    await expectAddressRate([a!.url, b!.url]);
  }, 30_000);

  it("a process started late from a snapshot has the addresses' buckets as the others", async () => {
    const log = new MemoryLog();
    const options = { sharedLog: log.client(), rate: 1000, ratePerIp: 2 };
    const a = await start(options);
    const tokens = await joinAll(a.url, "x", 3, "203.0.113.7");
    expect((await postUntilRefused([a.url], tokens, "203.0.113.7")).refused?.status).toBe(429);
    expect(await a.chat.cluster!.saver()!.check(true)).toBe(true);
    const late = await start({ ...options, sharedLog: log.client() });
    expect([...late.chat.hub.addressBuckets()]).toEqual([...a.chat.hub.addressBuckets()]);
    expect([...a.chat.hub.addressBuckets()].map(([address]) => address)).toEqual(["203.0.113.7"]);
  });
});

describe("sessions brought back count against the address that made them", () => {
  it("--data-dir: after a restart the 101st session of an address is refused 429 too_many_sessions; another address joins; an end frees a slot", async () => {
    const dir = await mkdtemp(joinPath(tmpdir(), "pollchat-address-"));
    dirs.push(dir);
    const first = await start({ dataDir: dir });
    const tokens = await joinAll(first.url, "x", 100, "203.0.113.7");
    expect((await join(first.url, "over", "203.0.113.7")).status).toBe(429);
    await first.close();
    servers.splice(0);

    const again = await start({ dataDir: dir });
    const refused = await join(again.url, "over", "203.0.113.7");
    expect([refused.status, refused.error]).toEqual([429, "too_many_sessions"]);
    expect((await join(again.url, "other", "198.51.100.9")).status).toBe(200);
    expect((await postJson(`${again.url}/api/leave`, {}, from("203.0.113.7", tokens[0]))).status).toBe(200);
    expect((await join(again.url, "over", "203.0.113.7")).status).toBe(200);
  }, 30_000);

  it("--redis: a process started after the others stopped counts the sessions of the snapshot and the log against their address", async () => {
    const redis = await startRedis();
    const args = ["--port", "0", "--host", "127.0.0.1", "--redis", redis.url, "--log-level", "warn", "--trust-proxy", "--max-sessions-per-ip", "4"];
    const before = await runCli(CLI, [...args, "--redis-snapshot-every", "1"]);
    await joinAll(before.url, "x", 2, "203.0.113.7");
    // Two in a snapshot (the saver looks every 2 s), two after it in the log.
    expect(await until(async () => (await metric(before.url, "pollchat_redis_snapshots_saved")) >= 1, 15_000)).toBe(true);
    await joinAll(before.url, "z", 2, "203.0.113.7");
    expect(await before.stop()).toBe(0);
    const after = await runCli(CLI, [...args, "--redis-snapshot-every", "1"]);
    const refused = await join(after.url, "over", "203.0.113.7");
    expect([refused.status, refused.error]).toEqual([429, "too_many_sessions"]);
    expect((await join(after.url, "other", "198.51.100.9")).status).toBe(200);
  }, 40_000);
});
