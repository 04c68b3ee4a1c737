import { afterEach, describe, expect, it } from "vitest";
import type { Session } from "../src/session.js";
import type { Hub } from "../src/hub.js";
import { resolveOptions } from "../src/config.js";
import { applyCommand } from "../src/cluster/apply-command.js";
import { decodeRecord, encodeRecord } from "../src/cluster/commands.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { RecordClock } from "../src/cluster/record-clock.js";
import { Replica } from "../src/cluster/replica.js";
import { replicaHub } from "../src/cluster/replica-hub.js";

/** A new epoch (Redis lost its data, issue 12): the floor record, and replicas that start over in place alike. */

interface Node {
  hub: Hub;
  replica: Replica;
  clock: RecordClock;
}

const nodes: Node[] = [];
afterEach(() => {
  for (const { hub, replica } of nodes.splice(0)) {
    replica.close();
    hub.close();
  }
});

async function node(log: MemoryLog, origin: string): Promise<Node> {
  const { hub, clock } = replicaHub(resolveOptions({ rate: 1000 }), { lastId: 0, at: 0 });
  const replica = new Replica(hub, log.client(), clock, { origin, warn: () => {} });
  await replica.start();
  const made = { hub, replica, clock };
  nodes.push(made);
  return made;
}

/** What cluster.ts does when Redis lost its data: the hub empty as a new replica's, reading from the new log's start, the floor first. */
function startOver({ hub, replica, clock }: Node): void {
  const floor = hub.lastId;
  clock.at = 0;
  hub.startOver(0);
  clock.at = undefined;
  replica.startOver(floor, async () => undefined);
}

const session = (o: unknown): Session => o as Session;
const id = (o: unknown): number => o as number;

async function settled(nodesToWait: Node[]): Promise<void> {
  for (const n of nodesToWait) await n.replica.catchUp();
}

describe("the floor record", () => {
  it("raises the ids every replica issues above it, and a record that is not a whole number changes nothing", () => {
    const { hub, clock } = replicaHub(resolveOptions({}), { lastId: 0, at: 0 });
    const ctx = { hub, madeAt: () => "0-0", vouchedOnly: false };
    const floor = 5_000_000_000_000_000;
    clock.at = 1000;
    for (const f of [Number.NaN, -1, 0, 1.5, Number.MAX_VALUE]) applyCommand(ctx, decodeRecord(encodeRecord({ c: { t: "floor", f } }))?.c ?? { t: "floor", f });
    expect(hub.lastId).toBe(0);
    applyCommand(ctx, { t: "floor", f: floor });
    applyCommand(ctx, { t: "floor", f: floor - 5 });
    expect(hub.lastId).toBe(floor);
    expect(hub.deliveredUpTo).toBe(floor);
    const ann = session(applyCommand(ctx, { t: "join", n: "ann", r: "lobby", k: "tok" }));
    expect(ann.queue.since).toBeGreaterThan(floor);
    const posted = id(applyCommand(ctx, { t: "post", k: "tok", x: "hi" }));
    expect(posted).toBeGreaterThan(ann.queue.since);
    clock.at = undefined;
    hub.close();
  });
});

describe("replicas that start over in a new epoch", () => {
  it("end every old session without a record, read the new log from its start, and compute the same ids above all before as a replica started later", async () => {
    const log = new MemoryLog();
    const a = await node(log, "a");
    const b = await node(log, "b");
    const ann = session(await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "tok-ann" }, (o) => o));
    for (let i = 0; i < 5; i++) await b.replica.submit({ t: "post", k: "tok-ann", x: `old${i}` }, id);
    await settled([a, b]);
    const before = Math.max(a.hub.lastId, b.hub.lastId);
    const woken: string[] = [];
    ann.addWaker({ wake: () => woken.push("ann") });

    log.loseData();
    startOver(a);
    startOver(b);
    expect(ann.ended).toBe(true);
    expect(woken).toEqual(["ann"]);
    expect([a.hub.sessionCount, b.hub.sessionCount, a.hub.roomCount, b.hub.lastId]).toEqual([0, 0, 0, 0]);
    expect(a.hub.sessionByToken("tok-ann")).toBeUndefined();

    const bob = session(await b.replica.submit({ t: "join", n: "bob", r: "lobby", k: "tok-bob" }, (o) => o));
    expect(bob.queue.since).toBeGreaterThan(before);
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push(await (i % 2 ? a : b).replica.submit({ t: "post", k: "tok-bob", x: `new${i}` }, id));
    for (const x of ids) expect(x).toBeGreaterThan(before);
    const late = await node(log, "c");
    await settled([a, b, late]);
    // Nothing of the old epoch reached the new log: two floors, a join, four posts.
    const kinds = log.entries.map((e) => decodeRecord(e.data)!.c.t).filter((t) => t !== "acks");
    expect(kinds.slice(0, 2)).toEqual(["floor", "floor"]);
    expect(kinds.filter((t) => t !== "floor")).toEqual(["join", "post", "post", "post", "post"]);
    const queueOf = (n: Node): number[] =>
      n.hub
        .session("bob")!
        .queue.peek()
        .filter((e) => e.message.type === "message")
        .map((e) => e.id);
    expect(queueOf(a)).toEqual(ids);
    expect(queueOf(b)).toEqual(ids);
    expect(queueOf(late)).toEqual(ids);
    expect(new Set([a.hub.lastId, b.hub.lastId, late.hub.lastId]).size).toBe(1);
  });

  it("a request waiting for its entry of the old log gets 503, never an id", async () => {
    const log = new MemoryLog();
    const a = await node(log, "a");
    await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "tok-ann" }, (o) => o);
    const waiting = a.replica.submit({ t: "post", k: "tok-ann", x: "lost" }, id).catch((error: { code?: string }) => error.code);
    // In the same turn: its command was not appended yet, and never will be.
    log.loseData();
    startOver(a);
    expect(await waiting).toBe("store_unavailable");
    for (let i = 0; i < 100 && log.entries.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(log.entries.map((e) => decodeRecord(e.data)!.c.t)).toEqual(["floor"]);
  });
});
