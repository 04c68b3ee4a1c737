import { expect, it } from "vitest";
import { RedisLog } from "../src/cluster/redis-log.js";
import { redisCommand, redisPerTest } from "./redis-harness.js";

const startRedis = redisPerTest();

/**
 * RedisLog.read against a real Redis: what is in the log is checked (epoch, lost end, trimmed
 * past) and read by one script, so no trim can fall between the check and the read; only a
 * read at the tip waits (XREAD BLOCK), checked again behind it.
 */
it("reads what is there in one checked step, waits at the tip, and refuses (and says so) a read after a trimmed entry", async () => {
  const redis = await startRedis();
  const log = new RedisLog(redis.url, "r");
  try {
    await log.open();
    const trimmed: string[] = [];
    log.onTrimmedPast((reason) => trimmed.push(reason));
    await log.append(["a", "b", "c", "d"], log.deadline(5000));
    await redisCommand(redis, ["CONFIG", "RESETSTAT"]);
    const all = await log.read("0-0", 10, 1000);
    expect(all.map((e) => e.data)).toEqual(["a", "b", "c", "d"]);
    expect((await log.read(all[1]!.id, 2, 1000)).map((e) => e.data)).toEqual(["c", "d"]);
    expect((await log.read(all[0]!.id, 2, 1000)).map((e) => e.data)).toEqual(["b", "c"]);
    expect(String(await redisCommand(redis, ["INFO", "commandstats"]))).not.toContain("cmdstat_xread:");
    // At the tip: it waits for the next entry.
    const waiting = log.read(all[3]!.id, 10, 2000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await log.append(["e"], log.deadline(5000));
    expect((await waiting).map((e) => e.data)).toEqual(["e"]);
    // Trimmed below c: a read after b may have missed entries; it gets none, and the process is told once.
    await redisCommand(redis, ["XTRIM", "r:log", "MINID", all[2]!.id]);
    await expect(log.read(all[1]!.id, 10, 1000)).rejects.toThrow(/trimmed/);
    expect(trimmed).toHaveLength(1);
    // The trim point itself is kept (XTRIM MINID): a read after c goes on.
    expect((await log.read(all[2]!.id, 10, 1000)).map((e) => e.data)).toEqual(["d", "e"]);
    expect(trimmed).toHaveLength(1);
  } finally {
    log.close();
  }
}, 15_000);
