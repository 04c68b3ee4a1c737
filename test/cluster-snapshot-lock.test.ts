import { afterAll, expect, it } from "vitest";
import { RedisSnapshots } from "../src/cluster/snapshot-store.js";
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
