import { beforeAll, expect, it } from "vitest";
import { RedisLog } from "../src/cluster/redis-log.js";
import { NotStored } from "../src/cluster/shared-log.js";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson, type RunningCli } from "./helpers.js";
import { metric, redisCommand, redisPerTest, until } from "./redis-harness.js";

/**
 * Redis that comes back with the end of the shared log missing but its epoch key kept
 * (restarted from an older RDB after kill -9): counts as having lost its data (spec §10).
 * The processes that read the lost entries set a new epoch, and every process resets in place.
 */

const startCli = cliPerTest();
const startRedis = redisPerTest();

beforeAll(ensureBuilt, 60_000);

async function processes(n: number, url: string): Promise<RunningCli[]> {
  return Promise.all(Array.from({ length: n }, () => startCli(CLI, ["--port", "0", "--redis", url, "--log-level", "warn", "--rate", "1000"])));
}

it("kill -9 of Redis restarted from an older RDB (the log's end lost, the epoch kept): every process resets, old tokens 401, new ids above all before, one state everywhere", async () => {
  const redis = await startRedis();
  const [a, b] = await processes(2, redis.url);
  const ann = await joinApi(a!.url, "ann");
  const bob = await joinApi(b!.url, "bob");
  let highest = Math.max(ann.cursor, bob.cursor);
  const post = async (url: string, auth: Record<string, string>, text: string): Promise<void> => {
    const r = await postJson(`${url}/api/messages`, { text }, auth);
    expect(r.status).toBe(201);
    highest = Math.max(highest, r.body.id as number);
  };
  for (let i = 0; i < 4; i++) await post(i % 2 === 0 ? a!.url : b!.url, i % 2 === 0 ? ann.auth : bob.auth, `saved${i}`);
  expect(await redisCommand(redis, ["SAVE"])).toBe("OK");
  // Answered after the last save: lost with the crash. Both processes have applied them.
  for (let i = 0; i < 4; i++) await post(i % 2 === 0 ? a!.url : b!.url, i % 2 === 0 ? ann.auth : bob.auth, `lost${i}`);
  expect(await until(async () => (await metric(b!.url, "pollchat_redis_applied_total")) >= 10 && (await metric(a!.url, "pollchat_redis_applied_total")) >= 10)).toBe(true);
  await redis.stop("SIGKILL");
  await redis.restart(); // loads dump.rdb: the epoch key and the log up to the save
  expect(await redisCommand(redis, ["EXISTS", "pollchat:epoch"])).toBe(1);

  for (const p of [a!, b!]) {
    expect(await until(async () => (await metric(p.url, "pollchat_redis_epoch_resets")) >= 1)).toBe(true);
    expect(await until(async () => (await fetch(`${p.url}/healthz`)).status === 200)).toBe(true);
  }
  expect(a!.stderr() + b!.stderr()).toMatch(/lost its data/);
  expect([a!.child.exitCode, b!.child.exitCode]).toEqual([null, null]);
  // Old sessions are gone on both, though their joins were in the saved part of the log.
  for (const p of [a!, b!]) for (const who of [ann, bob]) expect((await fetch(`${p.url}/api/poll?timeout=0`, { headers: who.auth })).status).toBe(401);
  // A fresh join on A is known on B, and a process started now agrees; new ids above every id before.
  const carl = await joinApi(a!.url, "carl");
  expect(carl.cursor).toBeGreaterThan(highest);
  const [c] = await processes(1, redis.url);
  for (const p of [b!, c!]) expect((await fetch(`${p.url}/api/poll?cursor=${carl.cursor}&timeout=0`, { headers: carl.auth })).status).toBe(200);
  const r = await postJson(`${b!.url}/api/messages`, { text: "new" }, carl.auth);
  expect(r.status).toBe(201);
  expect(r.body.id).toBeGreaterThan(highest);
  // bob's name is free again everywhere (his join was of the old epoch): taken on C, refused on A.
  expect((await postJson(`${c!.url}/api/join`, { name: "bob" })).status).toBe(200);
  expect((await postJson(`${a!.url}/api/join`, { name: "bob" })).status).toBe(409);
  expect(await metric(a!.url, "pollchat_redis_epoch_resets")).toBe(1);
  expect(await metric(b!.url, "pollchat_redis_epoch_resets")).toBe(1);
}, 20_000);

it("a process whose newest read entry is gone while older ones are kept and newer ids were made (a lagging process appended first) still finds the loss: one new epoch for all", async () => {
  const redis = await startRedis();
  const [reader, lagging] = [new RedisLog(redis.url, "t"), new RedisLog(redis.url, "t")];
  try {
    await Promise.all([reader.open(), lagging.open()]);
    const told: string[] = [];
    reader.onNewEpoch(() => told.push("reader"));
    lagging.onNewEpoch(() => told.push("lagging"));
    await reader.append(["x1", "x2", "x3"], reader.deadline(5000));
    const read = await reader.read("0-0", 10, 0);
    expect(read.map((e) => e.data)).toEqual(["x1", "x2", "x3"]);
    // The shape of a restart from older data after which a process that never read x2, x3 appended:
    // x1 kept, x2 and x3 gone, last-generated-id above them.
    await lagging.append(["y"], lagging.deadline(5000));
    expect(await redisCommand(redis, ["XDEL", "t:log", read[1]!.id, read[2]!.id])).toBe(2);
    const epoch = await redisCommand(redis, ["GET", "t:epoch"]);
    await expect(reader.append(["z"], reader.deadline(5000))).rejects.toBeInstanceOf(NotStored);
    expect(await until(async () => told.length === 2)).toBe(true);
    expect(told.sort()).toEqual(["lagging", "reader"]);
    expect(await redisCommand(redis, ["GET", "t:epoch"])).not.toEqual(epoch);
    // The old epoch's entries are dropped; appends of the new epoch go through.
    expect(await redisCommand(redis, ["XLEN", "t:log"])).toBe(0);
    await reader.append(["new"], reader.deadline(5000));
    await lagging.append(["new2"], lagging.deadline(5000));
    expect((await lagging.read("0-0", 10, 0)).map((e) => e.data)).toEqual(["new", "new2"]);
  } finally {
    reader.close();
    lagging.close();
  }
}, 20_000);
