import { beforeAll, describe, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt } from "./helpers.js";
import { redisCommand, redisPerTest, type RedisServer } from "./redis-harness.js";

/*
 * With --redis, a seed post or poll under a name with no session yet makes the session: its refusals
 * by the address's shares (--rate-per-ip, --max-sessions-per-ip: README "Limits against slow and
 * abusive clients") are made before anything is appended to the shared log (spec §10), as a
 * session's posts are, since every entry costs a Redis write and an apply on every process.
 * Addresses are told apart by X-Forwarded-For behind --trust-proxy.
 */

beforeAll(ensureBuilt, 120_000);

const runCli = cliPerTest();
const startRedis = redisPerTest();

const BASE = ["--port", "0", "--host", "127.0.0.1", "--log-level", "warn", "--trust-proxy"];

const logLength = async (redis: RedisServer): Promise<number> => Number(await redisCommand(redis, ["XLEN", "pollchat:log"]));

interface Answer {
  status: number;
  retryAfter: number;
  code: string | undefined;
}

async function seed(url: string, name: string, address: string, message: string | undefined): Promise<Answer> {
  const query = message === undefined ? "timeout=0" : `message=${encodeURIComponent(message)}`;
  const r = await fetch(`${url}/?name=${name}&${query}&format=json`, { headers: { "x-forwarded-for": address } });
  const body = (await r.json()) as { error?: { code: string } };
  return { status: r.status, retryAfter: Number(r.headers.get("retry-after")), code: body.error?.code };
}

/** `count` seed posts from `address`, each under a fresh name: every one would make a session. */
async function seedFlood(url: string, prefix: string, count: number, address: string): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < count; i++) answers.push(await seed(url, `${prefix}${i}`, address, `flood ${i}`));
  return answers;
}

describe("--redis: seed requests under fresh names are refused by their address's shares before the log", () => {
  it("--rate-per-ip 1: 40 seed posts of one address append at most the burst and refill; the rest get 429 rate_limited", async () => {
    const redis = await startRedis();
    const server = await runCli(CLI, [...BASE, "--redis", redis.url, "--rate-per-ip", "1"]);
    const before = await logLength(redis);
    const started = Date.now();
    const answers = await seedFlood(server.url, "fresh", 40, "203.0.113.7");
    const refilled = Math.ceil((Date.now() - started) / 1000);
    const accepted = answers.filter((a) => a.status === 200).length;
    for (const refused of answers.filter((a) => a.status !== 200)) {
      expect(refused).toMatchObject({ status: 429, code: "rate_limited" });
      expect(refused.retryAfter).toBeGreaterThanOrEqual(1);
    }
    // Bursts of twice --rate-per-ip: 2, then 1/s.
    expect(accepted).toBeGreaterThanOrEqual(2);
    expect(accepted).toBeLessThanOrEqual(2 + refilled);
    expect((await logLength(redis)) - before).toBeLessThanOrEqual(2 + refilled);
    // Another address posts.
    expect((await seed(server.url, "other", "198.51.100.9", "mine")).status).toBe(200);
  }, 30_000);

  it("--max-sessions-per-ip 3: seed posts and polls past it get 429 too_many_sessions, append nothing; another address posts", async () => {
    const redis = await startRedis();
    const server = await runCli(CLI, [...BASE, "--redis", redis.url, "--rate-per-ip", "0", "--max-sessions-per-ip", "3"]);
    const before = await logLength(redis);
    const answers = await seedFlood(server.url, "fresh", 20, "203.0.113.7");
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([200, 200, 200]);
    for (const refused of answers.slice(3)) {
      expect(refused).toMatchObject({ status: 429, code: "too_many_sessions" });
      expect(refused.retryAfter).toBeGreaterThanOrEqual(1);
    }
    for (let i = 0; i < 5; i++) {
      expect(await seed(server.url, `poller${i}`, "203.0.113.7", undefined)).toMatchObject({ status: 429, code: "too_many_sessions" });
    }
    expect((await logLength(redis)) - before).toBe(3);
    expect((await seed(server.url, "other", "198.51.100.9", "mine")).status).toBe(200);
    expect((await logLength(redis)) - before).toBe(4);
  }, 30_000);

  it("--max-sessions-per-ip 3: joins under fresh names past it get 429 too_many_sessions and append nothing", async () => {
    const redis = await startRedis();
    const server = await runCli(CLI, [...BASE, "--redis", redis.url, "--rate-per-ip", "0", "--max-sessions-per-ip", "3"]);
    const before = await logLength(redis);
    const join = async (name: string, address: string): Promise<Answer> => {
      const r = await fetch(`${server.url}/api/join`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": address },
        body: JSON.stringify({ name }),
      });
      const body = (await r.json()) as { error?: { code: string } };
      return { status: r.status, retryAfter: Number(r.headers.get("retry-after")), code: body.error?.code };
    };
    const answers: Answer[] = [];
    for (let i = 0; i < 20; i++) answers.push(await join(`joiner${i}`, "203.0.113.7"));
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([200, 200, 200]);
    for (const refused of answers.slice(3)) expect(refused).toMatchObject({ status: 429, code: "too_many_sessions" });
    expect((await logLength(redis)) - before).toBe(3);
    expect((await join("other", "198.51.100.9")).status).toBe(200);
    expect((await logLength(redis)) - before).toBe(4);
  }, 30_000);
});
