import { afterEach, expect, it } from "vitest";
import type { Session } from "../src/session.js";
import { resolveOptions } from "../src/config.js";
import { createCluster, type Cluster } from "../src/cluster/cluster.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { SharedPresence } from "../src/cluster/shared-presence.js";
import { decodeSpan, encodeSpan, MAX_SPANS, unseenFor } from "../src/cluster/unrecorded-time.js";

/** Time during which presence could not be recorded counts against no session (README, Several processes: Presence). */

const clusters: Cluster[] = [];
const sweepers: SharedPresence[] = [];
afterEach(async () => {
  for (const p of sweepers.splice(0)) p.close();
  for (const c of clusters.splice(0)) {
    await c.close();
    c.hub.close();
  }
});

const TTL = 60_000;

async function node(log: MemoryLog): Promise<Cluster> {
  const cluster = createCluster(resolveOptions({ sessionTtlMs: TTL }), log.client(), () => {}, () => {});
  clusters.push(cluster);
  await cluster.start();
  return cluster;
}

it("unseenFor leaves out the spans (their union once) between the last sighting and now", () => {
  expect(unseenFor(100, 200, [])).toBe(100);
  expect(unseenFor(100, 200, [[120, 150]])).toBe(70);
  expect(unseenFor(100, 200, [[120, 150], [140, 160], [130, 135]])).toBe(60);
  // Parts outside [seen, now] do not count; a span covering it all leaves nothing.
  expect(unseenFor(100, 200, [[0, 110], [190, 500]])).toBe(80);
  expect(unseenFor(100, 200, [[50, 250]])).toBe(0);
  expect(unseenFor(300, 200, [])).toBe(0);
  expect(decodeSpan(encodeSpan([5, 9]))).toEqual([5, 9]);
  for (const bad of ["9-5", "x-1", "1-", "1-2-3", "1".repeat(16) + "-2"]) expect(decodeSpan(bad)).toBeUndefined();
});

it("a failed sweep says so once the store is back, and no process counts that time: the session ends a TTL after", async () => {
  const log = new MemoryLog();
  const [a, b] = [await node(log), await node(log)];
  const ann = await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "tok-ann" }, (o) => o as Session);
  await b.replica.catchUp();
  // Times far ahead of the clusters' own sweeps (which run on the real clock, with a TTL they never reach here).
  const t0 = Date.now() + 10 * TTL;
  const onA = new SharedPresence(a.hub, a.replica, log.presence, { sessionTtlMs: TTL, now: t0 });
  const onB = new SharedPresence(b.hub, b.replica, log.presence, { sessionTtlMs: TTL, now: t0 });
  sweepers.push(onA, onB);
  ann.lastSeen = t0; // seen on A at t0
  await onA.sweep(t0);
  expect(await log.presence.lastSeen(["ann"])).toEqual([t0]);

  // The store is gone for longer than the TTL: sweeps fail meanwhile, on both (each asks the store on every sweep).
  // ann polled on A before it noticed: only A knows.
  log.down();
  ann.lastSeen = t0 + 900;
  await onA.sweep(t0 + 1000);
  await onB.sweep(t0 + 1000);
  log.up();
  const back = t0 + 2 * TTL;
  await onA.sweep(back); // says [t0, back] could not be recorded
  expect(await log.presence.unrecordedSince(t0)).toEqual([[t0, back]]);
  // B, back later, counts A's span out too (and its own): ann is not ended.
  await onB.sweep(back + 1);
  await onA.sweep(back + 2);
  await Promise.all([a.replica.catchUp(), b.replica.catchUp()]);
  expect(a.hub.sessionByToken("tok-ann")?.name).toBe("ann");
  expect(b.hub.sessionByToken("tok-ann")?.name).toBe("ann");

  expect(await log.presence.lastSeen(["ann"])).toEqual([t0 + 900]);
  // Unseen for a TTL of recordable time after it: ended, once.
  await onB.sweep(back + 1 + TTL);
  await Promise.all([a.replica.catchUp(), b.replica.catchUp()]);
  expect(a.hub.sessionByToken("tok-ann")).toBeUndefined();
  expect(b.hub.sessionByToken("tok-ann")).toBeUndefined();
  // Spans that ended two TTLs ago are forgotten with the names.
  await log.presence.forget(back + 2);
  expect(await log.presence.unrecordedSince(0)).toEqual([]);
});

it("a process whose sweeps never failed counts out the span another one said; one just started waits before ending anyone", async () => {
  const log = new MemoryLog();
  const [a, b] = [await node(log), await node(log)];
  const ann = await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: "tok-ann" }, (o) => o as Session);
  await b.replica.catchUp();
  const t0 = Date.now() + 10 * TTL;
  ann.lastSeen = t0;
  const onA = new SharedPresence(a.hub, a.replica, log.presence, { sessionTtlMs: TTL, now: t0 });
  sweepers.push(onA);
  await onA.sweep(t0);
  await log.presence.unrecorded([t0 + 10, t0 + 2 * TTL]);
  // B starts after the outage: within its first seconds it ends nobody, after them it counts the span out.
  const onB = new SharedPresence(b.hub, b.replica, log.presence, { sessionTtlMs: TTL, now: t0 + 2 * TTL });
  sweepers.push(onB);
  await onB.sweep(t0 + 2 * TTL + 20_000);
  await b.replica.catchUp();
  expect(b.hub.sessionByToken("tok-ann")?.name).toBe("ann");
  await onB.sweep(t0 + 3 * TTL + 20);
  await Promise.all([a.replica.catchUp(), b.replica.catchUp()]);
  expect(b.hub.sessionByToken("tok-ann")).toBeUndefined();
});

it("the spans kept are bounded: the newest 256", async () => {
  const log = new MemoryLog();
  for (let i = 0; i < 300; i++) await log.presence.unrecorded([i * 10, i * 10 + 5]);
  const kept = await log.presence.unrecordedSince(0);
  expect(kept.length).toBe(MAX_SPANS);
  expect(kept[0]).toEqual([440, 445]);
});
