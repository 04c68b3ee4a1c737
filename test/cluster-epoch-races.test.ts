import { afterEach, expect, it } from "vitest";
import type { Hub } from "../src/hub.js";
import { ChatError } from "../src/errors.js";
import { resolveOptions } from "../src/config.js";
import { applyCommand } from "../src/cluster/apply-command.js";
import { decodeRecord } from "../src/cluster/commands.js";
import { createCluster, type Cluster } from "../src/cluster/cluster.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { RecordClock } from "../src/cluster/record-clock.js";
import { Replica } from "../src/cluster/replica.js";
import { replicaHub } from "../src/cluster/replica-hub.js";
import { START, type SharedLog } from "../src/cluster/shared-log.js";

/*
 * Races around a new epoch (Redis lost its data), on the memory log: a replica
 * that notices late, and two resets before the first floor was stored.
 */

interface Node {
  hub: Hub;
  replica: Replica;
  clock: RecordClock;
  /** While true, reads fail as RedisLog's do once the epoch key changed and before this process noticed. */
  gate: { stale: boolean };
}
const nodes: Node[] = [];
const clusters: Cluster[] = [];
afterEach(async () => {
  for (const { hub, replica } of nodes.splice(0)) {
    replica.close();
    hub.close();
  }
  for (const cluster of clusters.splice(0)) {
    await cluster.close();
    cluster.hub.close();
  }
});

function gated(log: MemoryLog, gate: { stale: boolean }): SharedLog {
  const client = log.client();
  return new Proxy(client, {
    get(target, prop) {
      if (prop === "read") {
        return async (...args: [string, number, number]) => {
          if (gate.stale) {
            await new Promise((resolve) => setTimeout(resolve, 20));
            throw new Error("not this epoch");
          }
          const entries = await target.read(...args);
          // A read under way when the epoch changed: RedisLog's GET of the epoch behind it throws its entries away.
          if (gate.stale) throw new Error("not this epoch");
          return entries;
        };
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function node(log: MemoryLog, origin: string): Promise<Node> {
  const gate = { stale: false };
  const { hub, clock } = replicaHub(resolveOptions({ rate: 1000 }), { lastId: 0, at: 0 });
  const replica = new Replica(hub, gated(log, gate), clock, { origin, warn: () => {} });
  await replica.start();
  const n = { hub, replica, clock, gate };
  nodes.push(n);
  return n;
}

/** What cluster.ts does when this process notices the new epoch. */
function startOver({ hub, replica, clock, gate }: Node): void {
  const floor = hub.lastId;
  clock.at = 0;
  hub.startOver(0);
  clock.at = undefined;
  gate.stale = false;
  replica.startOver(floor, async () => undefined);
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!check()) throw new Error(`timed out: ${what}`);
}

it("a request with a new epoch's token waiting on a replica that notices late gets 503 (asked again), never 401", async () => {
  const log = new MemoryLog();
  const a = await node(log, "a");
  const b = await node(log, "b");
  await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "old" }, (o) => o);
  await b.replica.catchUp();
  log.loseData();
  // Redis' new stream starts at its clock, past every id of the old one (the memory log's clock goes on too).
  await new Promise((resolve) => setTimeout(resolve, 5));
  b.gate.stale = true; // b has not noticed yet
  startOver(a);
  await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "new" }, (o) => o);
  // A request with the new token reaches b, which catches up first (cluster-http, pre-checks) ...
  const waited = b.replica.catchUp().then(
    () => b.hub.sessionByToken("new")?.name ?? "unknown: 401",
    (error: unknown) => (error instanceof ChatError ? error.code : String(error)),
  );
  await new Promise((resolve) => setTimeout(resolve, 30));
  startOver(b); // ... and b notices the new epoch while it waits.
  expect(await waited).toBe("store_unavailable");
  // Asked again, b has read the new log: the token is known.
  await until(() => b.hub.sessionByToken("new") !== undefined, "b read the new epoch's join");
  await b.replica.catchUp();
  expect(b.hub.sessionByToken("new")?.name).toBe("ann");
});

it("a second reset before the first floor is stored keeps the higher floor", async () => {
  const log = new MemoryLog();
  const a = await node(log, "a");
  a.clock.at = 1000;
  applyCommand({ hub: a.hub, madeAt: () => "0-0", vouchedOnly: false }, { t: "floor", f: 9e15 });
  a.clock.at = undefined;
  expect(a.hub.lastId).toBe(9e15);
  log.loseData();
  startOver(a); // floor 9e15 waits to be appended
  startOver(a); // Redis lost its data again in the same turn: this hub's lastId is 0 now
  await until(() => log.entries.length > 0, "the floor appended");
  const floors = log.entries.map((e) => decodeRecord(e.data)!.c).filter((c) => c.t === "floor");
  expect(floors).toEqual([{ t: "floor", f: 9e15 }]);
});

it("a new epoch's snapshot that cannot be read at first is read again: the log is never applied from its start over an empty hub", async () => {
  const log = new MemoryLog();
  const a = await node(log, "a");
  const b = await node(log, "b");
  log.loseData();
  startOver(a);
  // In the new epoch: ann joins, then (say) a snapshot is saved there and the log trimmed below it.
  await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "ann-token" }, (o) => o);
  const snapshotAt = log.entries.at(-1)!.id;
  await a.replica.submit({ t: "join", n: "bob", r: "lobby", k: "bob-token" }, (o) => o);
  // b starts over; loading that snapshot fails twice (Redis gone again), then works.
  let calls = 0;
  const floor = b.hub.lastId;
  b.clock.at = 0;
  b.hub.startOver(0);
  b.clock.at = undefined;
  b.replica.startOver(floor, async () => {
    if (++calls <= 2) throw new Error("redis: unreachable");
    return snapshotAt; // what restoreSnapshot returns: the position the snapshot is of
  });
  expect(b.replica.restoring).toBe(true);
  await until(() => b.hub.sessionByToken("bob-token") !== undefined, "b read the new epoch after its snapshot");
  expect(calls).toBe(3);
  expect(b.replica.restoring).toBe(false);
  // Read after the snapshot's position only: ann (in the snapshot, which this test does not load) was not applied from the log.
  expect(b.hub.sessionByToken("ann-token")).toBeUndefined();
});

it("Redis losing its data while a process starts loads no old snapshot: the process starts in the new epoch as the others reset into it", async () => {
  const log = new MemoryLog();
  // An old epoch with a session in its snapshot.
  const a = createCluster(resolveOptions({ rate: 1000 }), log.client(), () => {}, () => {});
  clusters.push(a);
  await a.start();
  await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "old-token" }, (o) => o);
  expect(await a.saver()!.check(true)).toBe(true);
  // C starts: it has the old snapshot in hand when Redis loses its data (the new epoch has no snapshot yet),
  // and notices the new epoch before it loads that snapshot.
  const client = log.client();
  let asked = 0;
  const snapshots = {
    latest: async () => {
      const latest = ++asked === 1 ? await log.snapshots.latest() : undefined;
      if (asked === 1) {
        log.newEpoch(log.epoch);
        await client.read(START, 1, 0).catch(() => undefined); // C's client sees the epoch change: C starts over
      }
      return latest;
    },
  };
  const c = createCluster(resolveOptions({ rate: 1000 }), withSnapshots(client, snapshots), () => {}, () => {});
  clusters.push(c);
  await c.start();
  expect(c.epochResets).toBe(1);
  // The new epoch's state, the same as every other replica's: the old session is not there, a new join is.
  await c.replica.submit({ t: "join", n: "bob", r: "lobby", k: "new-token" }, (o) => o);
  expect(c.hub.sessionByToken("old-token")).toBeUndefined();
  expect(c.hub.session("ann")).toBeUndefined();
  expect(c.hub.sessionByToken("new-token")?.name).toBe("bob");
});

/** `client` with its snapshots' `latest` replaced (everything else as the memory log's). */
function withSnapshots(client: SharedLog, replaced: Pick<SharedLog["snapshots"], "latest">): SharedLog {
  const snapshots = new Proxy(client.snapshots, {
    get: (target, prop) => (prop === "latest" ? replaced.latest : bound(target, prop)),
  });
  return new Proxy(client, { get: (target, prop) => (prop === "snapshots" ? snapshots : bound(target, prop)) });
}

function bound(target: object, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop);
  return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
}

it("a process whose limits differ from those a new epoch's first process set stops (lost, the CLI exits 1); one with the same goes on", async () => {
  const log = new MemoryLog();
  const lost: string[] = [];
  const start = async (rate: number, who: string): Promise<Cluster> => {
    const cluster = createCluster(resolveOptions({ rate }), log.client(), () => {}, (reason) => lost.push(`${who}: ${reason}`));
    clusters.push(cluster);
    await cluster.start();
    return cluster;
  };
  const a = await start(1000, "a");
  const b = await start(1000, "b");
  // Redis flushed: the limits key is gone with the rest; a process with other limits starts first and sets them.
  log.loseData();
  const c = await start(5, "c");
  log.newEpoch(log.epoch);
  await until(() => a.epochResets === 1 && b.epochResets === 1 && c.epochResets === 1, "every process in the new epoch");
  await until(() => lost.length === 2, "a and b told their limits differ");
  expect(lost.sort()).toEqual([expect.stringMatching(/^a: .*rate 1000 \(the cluster's: 5\)/), expect.stringMatching(/^b: .*rate 1000 \(the cluster's: 5\)/)]);
  // C, whose limits are the epoch's, goes on.
  expect(await c.replica.submit({ t: "join", n: "cy", r: "lobby", k: "tok-cy" }, (o) => o)).toBeDefined();
});
