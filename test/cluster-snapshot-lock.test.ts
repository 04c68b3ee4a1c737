import { afterAll, expect, it } from "vitest";
import { MemorySnapshots, RedisSnapshots } from "../src/cluster/snapshot-store.js";
import { RedisClient, type RedisArg, type RespReply } from "../src/redis/index.js";
import { redisPerFile } from "./redis-harness.js";

const redis = redisPerFile();
const clients: RedisClient[] = [];
afterAll(async () => {
  for (const client of clients) await client.close();
});

/**
 * A saver whose lock expired mid-save (a slow save) while another saver, of a new
 * epoch, took it: the first one's release must not delete the second one's lock,
 * or two saves would run at once.
 */
it("a saver releases the snapshot lock only while it is still its own", async () => {
  const server = await redis();
  const client = new RedisClient({ url: server.url });
  const other = new RedisClient({ url: server.url });
  clients.push(client, other);
  await Promise.all([client.connect(), other.connect()]);
  await client.send(["SET", "p:epoch", "e1"]);
  // While the first chunk is written, the lock expires and another saver takes it.
  const send = client.send.bind(client);
  let swapped = false;
  client.send = async (args: readonly RedisArg[]): Promise<RespReply> => {
    if (!swapped && args[0] === "SET" && String(args[1]).startsWith("p:snapshot:")) {
      swapped = true;
      await other.send(["SET", "p:snapshot-lock", "the other saver", "PX", 30_000]);
    }
    return send(args);
  };
  const snapshots = new RedisSnapshots(client, "p", "p:log", { key: "p:epoch", now: () => "e1" });
  expect(await snapshots.save("5-0", [Buffer.from("state")])).toBe(true);
  expect(swapped).toBe(true);
  const lock = await other.send(["GET", "p:snapshot-lock"]);
  expect(Buffer.isBuffer(lock) ? lock.toString() : lock).toBe("the other saver");
});

/**
 * Two savers decide at once (each asked for the newest snapshot before taking the lock): the one
 * further on saves first. The other's older snapshot must not replace it: the pointer would go
 * back and the log be trimmed past the snapshot it points at (a hole for every process loading it).
 */
it("a snapshot older than the one saved meanwhile is not saved, and the log is not trimmed past the newest", async () => {
  const server = await redis();
  const client = new RedisClient({ url: server.url });
  clients.push(client);
  await client.connect();
  await client.send(["SET", "q:epoch", "e1"]);
  for (const id of ["1-0", "2-0", "3-0", "4-0", "5-0"]) await client.send(["XADD", "q:log", id, "r", "{}"]);
  const snapshots = new RedisSnapshots(client, "q", "q:log", { key: "q:epoch", now: () => "e1" });
  expect(await snapshots.save("2-0", [Buffer.from("at 2")])).toBe(true);
  expect(await snapshots.save("4-0", [Buffer.from("at 4")])).toBe(true); // the saver further on
  expect(await snapshots.save("3-0", [Buffer.from("at 3")])).toBe(false); // the one behind, late
  expect((await snapshots.latest())?.pos).toBe("4-0");
  const ids = (await client.send(["XRANGE", "q:log", "-", "+"])) as [Buffer, unknown][];
  expect(ids.map(([id]) => id.toString())).toEqual(["2-0", "3-0", "4-0", "5-0"]);
  // The same rule for the memory store the other tests use.
  const memory = new MemorySnapshots(() => {});
  expect(await memory.save("4-0", [Buffer.from("at 4")])).toBe(true);
  expect(await memory.save("3-0", [Buffer.from("at 3")])).toBe(false);
  expect((await memory.latest())?.pos).toBe("4-0");
});
