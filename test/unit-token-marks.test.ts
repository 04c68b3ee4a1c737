import { randomBytes } from "node:crypto";
import { afterEach, expect, it } from "vitest";
import type { Session } from "../src/session.js";
import { resolveOptions } from "../src/config.js";
import { createCluster, type Cluster } from "../src/cluster/cluster.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { joinMark, joinSigned, sessionToken, splitMark, splitSigned } from "../src/signed-token.js";
import { AppliedWindow } from "../src/cluster/applied-window.js";
import { sameToken } from "../src/same-token.js";

/**
 * Redis and every process lost together, Redis back from older data (README, Several processes: Faults):
 * a token the cluster signed at a position the log no longer has proves the loss, on the memory log as on Redis;
 * a made-up one changes nothing.
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

const plain = (): string => randomBytes(24).toString("base64url");

it("a signed token is its session's token followed by a position and a signature; it names the session of its first part", () => {
  const base = plain();
  const signed = joinSigned(base, "1700000000000-3", "s".repeat(22))!;
  expect(splitSigned(signed)).toEqual({ base, position: "1700000000000-3", signature: "s".repeat(22) });
  expect(sessionToken(signed)).toBe(base);
  expect(sameToken(base, signed)).toBe(true);
  // Plain tokens, JWT-like strings, and anything not of the form are themselves.
  for (const other of [base, `${base}x`, `${base}12-3`, `${base}12-3${"s".repeat(21)}`, `${base}1-2-3${"s".repeat(22)}`]) {
    expect(sessionToken(other)).toBe(other);
  }
  expect(joinSigned("short", "1-0", "s".repeat(22))).toBeUndefined();
});

it("the whole site lost: a process started on a log that lost its end finds it when a client presents a token signed past it", async () => {
  const log = new MemoryLog(() => 1_700_000_000_000);
  const a = await node(log);
  const token = plain();
  const ann = await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: plain() }, (o) => o as Session);
  const bob = await a.replica.submit({ t: "join", n: "bob", r: "lobby", k: token }, (o) => o as Session);
  const signed = a.replica.tokens.sign(token);
  expect(splitSigned(signed)?.position).toBe(a.replica.madeAt(bob));
  expect(a.replica.tokens.sign(token)).toBe(signed); // one token per session, however often it is handed out
  expect(a.hub.sessionByToken(signed)).toBe(bob);
  await a.close();

  log.loseTail(1); // bob's join is gone, and nobody who read it is left
  const c = await node(log);
  expect(c.hub.sessionByToken(signed)).toBeUndefined();
  expect(c.hub.session("ann")?.name).toBe(ann.name);
  // Made-up tokens change nothing: a changed position, a changed signature, a plain token.
  const parts = splitSigned(signed)!;
  const forged = [joinSigned(parts.base, "1700000009999-0", parts.signature)!, joinSigned(parts.base, parts.position, "A".repeat(22))!];
  forged.push(plain());
  for (const token of forged) c.replica.tokens.unknown(token);
  expect(c.epochResets).toBe(0);
  expect(log.epoch).toBe(1);
  // The one the cluster signed: the log lost its end; a new epoch, ann's session (before the loss) ends too.
  c.replica.tokens.unknown(signed);
  expect(c.epochResets).toBe(1);
  expect(log.epoch).toBe(2);
  expect(c.hub.session("ann")).toBeUndefined();
  // Signed in the old epoch: proves nothing in the new one.
  c.replica.tokens.unknown(signed);
  expect(c.epochResets).toBe(1);
});

it("on an intact log, a signed token of a session that ended proves nothing", async () => {
  const log = new MemoryLog();
  const [a, b] = [await node(log), await node(log)];
  const token = plain();
  await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: token }, (o) => o as Session);
  const signed = a.replica.tokens.sign(token);
  await a.replica.submit({ t: "leave", k: signed }, () => undefined);
  await b.replica.catchUp();
  expect(b.hub.sessionByToken(signed)).toBeUndefined();
  b.replica.tokens.unknown(signed);
  a.replica.tokens.unknown(signed);
  expect([a.epochResets, b.epochResets, log.epoch]).toEqual([0, 0, 1]);
});

it("a poll's mark is a position, a dot and a signature of 22 characters; anything else is no mark", () => {
  const mark = joinMark("1700000000000-3", "s".repeat(22))!;
  expect(mark).toBe(`1700000000000-3.${"s".repeat(22)}`);
  expect(splitMark(mark)).toEqual({ position: "1700000000000-3", signature: "s".repeat(22) });
  const s22 = "s".repeat(22);
  const notMarks = [undefined, "", "garbage", `.${s22}`, `1-2-3.${s22}`, `1-0.${"s".repeat(21)}`, `1-0.${"s".repeat(21)}+`];
  for (const other of [...notMarks, `1-0.${s22}s`, `${"9".repeat(40)}-0.${s22}`]) expect(splitMark(other)).toBeUndefined();
  expect(joinMark("1-2-3", "s".repeat(22))).toBeUndefined();
});

it("a mark is signed for this cluster's key and epoch, never as a token; a changed part or another epoch names nothing", async () => {
  const log = new MemoryLog(() => 1_700_000_000_000);
  const a = await node(log);
  expect(a.replica.marks.mark()).toBeUndefined(); // nothing applied yet: no position to sign
  const token = plain();
  await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: token }, (o) => o as Session);
  const mark = a.replica.marks.mark()!;
  expect(a.replica.tokens.markedPosition(mark)).toBe(a.replica.position);
  const { position, signature } = splitMark(mark)!;
  // The token signed at the same position has another signature: one is never the other.
  expect(splitSigned(a.replica.tokens.sign(token))?.signature).not.toBe(signature);
  for (const forged of [joinMark("1700000009999-0", signature)!, joinMark(position, "A".repeat(22))!, "garbage", undefined]) {
    expect(a.replica.tokens.markedPosition(forged)).toBeUndefined();
  }
  // Another log (another key, another epoch) signs differently.
  const b = await node(new MemoryLog(() => 1_700_000_000_000));
  await b.replica.submit({ t: "join", n: "eve", r: "lobby", k: plain() }, (o) => o as Session);
  expect(b.replica.tokens.markedPosition(mark)).toBeUndefined();
});

it("the whole site lost: a mark inside the span a new process read but never applied proves the loss; a made-up one nothing", async () => {
  let now = 1_700_000_000_000;
  const log = new MemoryLog(() => now);
  const a = await node(log);
  await a.replica.submit({ t: "join", n: "ann", r: "lobby", k: plain() }, (o) => o as Session);
  now += 10;
  await a.replica.submit({ t: "join", n: "bob", r: "lobby", k: plain() }, (o) => o as Session);
  const mark = a.replica.marks.mark()!;
  await a.close();
  log.loseTail(1); // bob's join is gone
  const c = await node(log);
  now += 10;
  // A new entry past the mark's position: c reads past it, never seeing it.
  await c.replica.submit({ t: "join", n: "cy", r: "lobby", k: plain() }, (o) => o as Session);
  expect(c.replica.tokens.markedPosition(mark)).toBeDefined();
  await c.replica.marks.check(joinMark(splitMark(mark)!.position, "A".repeat(22)));
  await c.replica.marks.check(c.replica.marks.mark());
  expect([c.epochResets, log.epoch]).toEqual([0, 1]);
  await c.replica.marks.check(mark);
  expect([c.epochResets, log.epoch]).toEqual([1, 2]);
});

it("the applied window tells a position applied, one it read past without applying, and one before it read", () => {
  const w = new AppliedWindow();
  w.reset("5-0");
  for (const p of ["6-0", "8-0", "9-1"]) w.applied(p);
  expect(["8-0", "7-0", "9-0", "5-0", "4-9"].map((p) => w.judge(p))).toEqual(["seen", "missing", "missing", "unknown", "unknown"]);
});
