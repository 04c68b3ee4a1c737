import { beforeAll, describe, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson } from "./helpers.js";
import { redisPerTest } from "./redis-harness.js";
import { randomClients } from "./cluster-clients.js";

/** Real pollchat processes sharing a real Redis (issue 12, spec §10): any process serves any request. */

const startCli = cliPerTest();
const startRedis = redisPerTest();

beforeAll(ensureBuilt, 60_000);

async function processes(n: number, url: string, extra: string[] = []): Promise<string[]> {
  const started = await Promise.all(Array.from({ length: n }, () => startCli(CLI, ["--port", "0", "--redis", url, "--log-level", "warn", ...extra])));
  return started.map((p) => p.url);
}

describe("several processes on one Redis", () => {
  it("clients picking a random process per request (posts with txn, polls with cursors) get every message exactly once, in one order", async () => {
    const redis = await startRedis();
    const urls = await processes(3, redis.url);
    const { ids } = await randomClients(urls, { clients: 5, posts: 8 });
    expect(ids.length).toBe(40);
  });

  it("a name taken on one process is refused on another; a rate limit holds across processes", async () => {
    const redis = await startRedis();
    const [a, b, c] = await processes(3, redis.url, ["--rate", "1"]);
    const ann = await joinApi(a!, "ann");
    expect((await postJson(`${b}/api/join`, { name: "Ann" })).status).toBe(409);
    // --rate 1: bursts of 2, over three processes.
    const statuses: number[] = [];
    for (const url of [a, b, c, a]) statuses.push((await postJson(`${url}/api/messages`, { text: "x" }, ann.auth)).status);
    expect(statuses.filter((s) => s === 201).length).toBe(2);
    expect(statuses.filter((s) => s === 429).length).toBe(2);
  });
});
