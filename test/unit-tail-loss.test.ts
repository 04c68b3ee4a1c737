import { afterEach, expect, it } from "vitest";
import type { Session } from "../src/session.js";
import { resolveOptions } from "../src/config.js";
import { createCluster, type Cluster } from "../src/cluster/cluster.js";
import { MemoryLog } from "../src/cluster/memory-log.js";

/**
 * Redis came back with the end of the shared log missing but its epoch key kept (an older RDB/AOF,
 * a lagging replica promoted): a process that had read the lost entries notices, sets a new epoch,
 * and every process starts over in it, so a process started after the loss and the old ones agree again.
 */

const clusters: Cluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) {
    await c.close();
    c.hub.close();
  }
});

async function node(log: MemoryLog): Promise<Cluster> {
  const cluster = createCluster(resolveOptions({ rate: 1000 }), log.client(), () => {}, () => {});
  clusters.push(cluster);
  await cluster.start();
  return cluster;
}

const token = (o: unknown): string => String((o as Session).token);

async function until(ok: () => boolean, deadlineMs = 5000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return ok();
}

it("a process that read entries the log lost starts a new epoch, and every process (one started after the loss too) resets into it", async () => {
  // One millisecond for everything: the ids after the loss must still not be the lost ones.
  const log = new MemoryLog(() => 1_700_000_000_000);
  const a = await node(log);
  await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "tok-ann" }, token);
  await a.replica.submit({ t: "join", n: "bob", r: "lobby", k: "tok-bob" }, token);
  const before = a.hub.lastId;
  log.loseTail(1); // bob's join is gone; the epoch is not
  const c = await node(log);
  // C, which never saw bob, lets a second bob join: A (which applied the first) finds its newest entry gone.
  await c.replica.submit({ t: "join", n: "bob", r: "lobby", k: "tok-bob2" }, token).catch(() => undefined);
  expect(await until(() => a.epochResets === 1 && c.epochResets === 1)).toBe(true);
  expect(log.epoch).toBe(2);

  // One state everywhere: the old sessions are gone on both, a join on C is known by token on A.
  const bob = await c.replica.submit({ t: "join", n: "bob", r: "lobby", k: "tok-bob3" }, token);
  await a.replica.catchUp();
  await c.replica.catchUp();
  for (const p of [a, c]) {
    expect(p.hub.sessionByToken("tok-ann")).toBeUndefined();
    expect(p.hub.sessionByToken("tok-bob")).toBeUndefined();
    expect(p.hub.sessionByToken("tok-bob2")).toBeUndefined();
    expect(p.hub.sessionByToken(bob)?.name).toBe("bob");
  }
  const ann = await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "tok-ann2" }, token);
  await c.replica.catchUp();
  expect(c.hub.sessionByToken(ann)?.name).toBe("ann");
  // Ids go on above every id issued before.
  expect(a.hub.lastId).toBeGreaterThan(before);
  expect(c.hub.lastId).toBe(a.hub.lastId);
  // The log stays in the new epoch: no more resets.
  await new Promise((r) => setTimeout(r, 50));
  expect([a.epochResets, c.epochResets]).toEqual([1, 1]);
});
