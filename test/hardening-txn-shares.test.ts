import { describe, expect, it } from "vitest";
import { decodeRecord } from "../src/cluster/commands.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { resolveOptions } from "../src/config.js";
import { Hub } from "../src/hub.js";
import type { ChatOptions } from "../src/index.js";
import { get, seedUrl } from "./core-helpers.js";
import { metric, until } from "./redis-harness.js";
import { codeOf, postJson, serversPerTest } from "./helpers.js";

/**
 * Retry keys (txn) have a share per address (spec §8, README "Limits against slow
 * and abusive clients"): an address past its share is refused with 429, alone;
 * another address's keyed post still goes through. Keys of an ended session still
 * count against the address that made it, across a --data-dir restart too. A
 * session within --rate never reaches its share, nor a classroom behind one address.
 */

const { start, stop, tempDir } = serversPerTest("txn-shares");

const SHARE = 30;
const BASE: ChatOptions = { rate: 1000, trustProxy: true, maxTxnKeysPerIp: SHARE };

/** Where requests go: one server, or (cluster) two processes on one memory log, taken in turn. */
interface Deployment {
  url(i: number): string;
  /** Entries of the shared log (cluster), to see that a refused post appended nothing. */
  entries(): number;
}

async function deploy(engine: "local" | "cluster", options: ChatOptions = {}): Promise<Deployment> {
  if (engine === "local") {
    const s = await start({ ...BASE, ...options });
    return { url: () => s.url, entries: () => 0 };
  }
  const log = new MemoryLog();
  const a = await start({ ...BASE, ...options, sharedLog: log.client() });
  const b = await start({ ...BASE, ...options, sharedLog: log.client() });
  return { url: (i) => (i % 2 === 0 ? a.url : b.url), entries: () => log.entries.filter((e) => decodeRecord(e.data)?.c.t !== "acks").length };
}

async function join(url: string, name: string, address: string): Promise<Record<string, string>> {
  const r = await postJson(`${url}/api/join`, { name }, { "x-forwarded-for": address });
  if (r.status !== 200) throw new Error(`join ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  return { authorization: `Bearer ${r.body.token}` };
}

async function keyed(url: string, auth: Record<string, string>, txn: string): Promise<{ status: number; code?: string; retryAfter: string | null }> {
  const r = await postJson(`${url}/api/messages`, { text: `post ${txn}`, txn }, auth);
  return { status: r.status, code: r.body?.error?.code, retryAfter: r.headers.get("retry-after") };
}

describe.each(["local", "cluster"] as const)("txn key shares (%s)", (engine) => {
  it("addresses flooding fresh keys get 429 past their share, they alone: another address's keyed post succeeds", async () => {
    const d = await deploy(engine);
    let n = 0;
    let firstFlooder: Record<string, string> | undefined;
    for (const address of ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) {
      const sessions = [];
      for (let s = 0; s < 3; s++) sessions.push(await join(d.url(n++), `f${address.slice(-1)}s${s}`, address));
      firstFlooder ??= sessions[0];
      const statuses: number[] = [];
      for (let i = 0; i < 2 * SHARE; i++) {
        const r = await keyed(d.url(i), sessions[i % 3]!, `${address}-${i}`);
        statuses.push(r.status);
        if (r.status === 429) {
          expect(r.code).toBe("rate_limited");
          expect(Number(r.retryAfter)).toBeGreaterThan(0);
        }
      }
      expect(statuses).toEqual([...Array<number>(SHARE).fill(201), ...Array<number>(SHARE).fill(429)]);
    }
    // A refused post appended nothing (cluster: refused before the shared log, by the hub's check).
    const flooder = await join(d.url(0), "late", "203.0.113.1");
    const before = d.entries();
    expect((await keyed(d.url(1), flooder, "fresh")).status).toBe(429);
    expect(d.entries()).toBe(before);
    // Someone else's keyed post, and the flooders' posts without a key, still go through.
    const other = await join(d.url(1), "bystander", "198.51.100.7");
    expect((await keyed(d.url(0), other, "mine")).status).toBe(201);
    expect((await postJson(`${d.url(1)}/api/messages`, { text: "no key" }, flooder)).status).toBe(201);
    // A retry of a key the address made is still answered (its first id), past the share or not.
    const retry = await postJson(`${d.url(1)}/api/messages`, { text: "post 203.0.113.1-0", txn: "203.0.113.1-0" }, firstFlooder!);
    expect(retry.status).toBe(201);
  }, 60_000);

  it("through the seed endpoint too, and keys of ended sessions still count against the address that made them", async () => {
    const d = await deploy(engine);
    const address = { "x-forwarded-for": "203.0.113.4" };
    for (let i = 0; i < SHARE; i++) {
      const r = await get(seedUrl(d.url(i), { name: `seed${i % 5}`, message: "hi", txn: `s${i}` }), address);
      expect(r.status).toBe(200);
    }
    const refused = await get(seedUrl(d.url(0), { name: "seed0", message: "hi", txn: "one-more" }), address);
    expect(refused.status).toBe(429);
    // Every session of that address ends: its keys still count.
    for (let i = 0; i < 5; i++) {
      const r = await postJson(`${d.url(i)}/api/join`, { name: `ender${i}` }, address);
      expect(r.status).toBe(200);
      expect((await postJson(`${d.url(i)}/api/leave`, {}, { authorization: `Bearer ${r.body.token}` })).status).toBeLessThan(300);
    }
    const fresh = await join(d.url(1), "newcomer", "203.0.113.4");
    expect((await keyed(d.url(1), fresh, "after-end")).status).toBe(429);
    const other = await join(d.url(0), "other", "198.51.100.8");
    expect((await keyed(d.url(0), other, "after-end")).status).toBe(201);
  }, 60_000);
});

describe.each(["local", "cluster"] as const)("txn keys past the total (%s)", (engine) => {
  it("addresses under their share fill the total: they get 429, a third address holding no keys still posts with a new key", async () => {
    // A total of 40 (hard cap 50), each flooder at 20: under its share of 30, so only the total refuses them.
    const d = await deploy(engine, { maxTxnKeys: 40 });
    const flooders = [await join(d.url(0), "fx", "203.0.113.11"), await join(d.url(1), "fy", "2001:db8:1::1")];
    for (let i = 0; i < 20; i++) {
      for (const [f, auth] of flooders.entries()) expect((await keyed(d.url(i + f), auth, `f${f}-${i}`)).status).toBe(201);
    }
    const before = d.entries();
    for (const [f, auth] of flooders.entries()) {
      const r = await keyed(d.url(f), auth, "one-more");
      expect(r.status).toBe(429);
      expect(r.code).toBe("rate_limited");
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
    }
    expect(d.entries()).toBe(before); // refused before the shared log
    // Someone else gets the key the flooders are refused, on either process, more than once.
    const bystander = await join(d.url(0), "bystander", "198.51.100.77");
    for (let i = 0; i < 2; i++) expect((await keyed(d.url(i), bystander, `mine-${i}`)).status).toBe(201);
    // A flooder's known key is still answered; past the total it stays refused a new one.
    expect((await postJson(`${d.url(1)}/api/messages`, { text: "post f0-0", txn: "f0-0" }, flooders[0]!)).status).toBe(201);
    expect((await keyed(d.url(0), flooders[1]!, "again")).status).toBe(429);
  }, 60_000);
});

describe("txn key shares across a --data-dir restart", () => {
  it("restored keys still count against the address that made them", async () => {
    const dir = await tempDir();
    let s = await start({ ...BASE, dataDir: dir });
    const first = await join(s.url, "first", "203.0.113.5");
    for (let i = 0; i < SHARE; i++) expect((await keyed(s.url, first, `k${i}`)).status).toBe(201);
    await stop(s);
    s = await start({ ...BASE, dataDir: dir });
    const again = await join(s.url, "again", "203.0.113.5");
    expect((await keyed(s.url, again, "fresh")).status).toBe(429);
    // The keys are still answered, and another address posts.
    expect((await postJson(`${s.url}/api/messages`, { text: "post k0", txn: "k0" }, first)).status).toBe(201);
    expect((await keyed(s.url, await join(s.url, "other", "198.51.100.9"), "fresh")).status).toBe(201);
  }, 30_000);
});

describe("txn key shares in a cluster's snapshot", () => {
  it("a process that starts from a snapshot counts the keys in it against their address, as the others do", async () => {
    const log = new MemoryLog();
    const a = await start({ ...BASE, sharedLog: log.client(), redisSnapshotEvery: 5 });
    const flooder = await join(a.url, "flooder", "203.0.113.6");
    for (let i = 0; i < SHARE; i++) expect((await keyed(a.url, flooder, `k${i}`)).status).toBe(201);
    // Five entries more, then the next snapshot (a check every 2 s) holds every key.
    const saved = await metric(a.url, "pollchat_redis_snapshots_saved");
    for (let i = 0; i < 5; i++) expect((await postJson(`${a.url}/api/messages`, { text: "more" }, flooder)).status).toBe(201);
    expect(await until(async () => (await metric(a.url, "pollchat_redis_snapshots_saved")) > saved, 10_000)).toBe(true);
    // B loads the newest snapshot (most of the keys) and reads the log after it.
    const b = await start({ ...BASE, sharedLog: log.client(), redisSnapshotEvery: 5 });
    const again = await join(b.url, "again", "203.0.113.6");
    expect((await keyed(b.url, again, "fresh")).status).toBe(429);
    const other = await join(b.url, "other", "198.51.100.10");
    expect((await keyed(b.url, other, "fresh")).status).toBe(201);
  }, 30_000);
});

describe("the defaults let clients within their rate keep every key (injected clock)", () => {
  it("a session posting at --rate for 12 minutes, and a classroom of 30 behind one address posting every 2 s, are never refused", () => {
    let now = 1_000_000;
    const hub = new Hub(resolveOptions({}), { now: () => now, sweep: false });
    const fast = hub.joinWithToken("fast", "lobby", { address: "192.0.2.1" });
    const pupils = Array.from({ length: 30 }, (_, i) => hub.joinWithToken(`pupil${i}`, "class", { address: "192.0.2.2" }));
    const rate = resolveOptions({}).rate;
    let refused = 0;
    let posted = 0;
    // 100 ms a step: `fast` posts once a step (--rate 10/s), each pupil once every 20 steps (2 s), staggered.
    for (let step = 0; step < 12 * 60 * rate; step++) {
      now += 1000 / rate;
      const due = [fast, ...pupils.filter((_, i) => step % 20 === i % 20)];
      for (const client of due) {
        if (codeOf(() => hub.post(client, { text: "hi", txn: `${client.name}-${step}` })) === undefined) posted++;
        else refused++;
      }
    }
    expect(refused).toBe(0);
    expect(posted).toBe(12 * 60 * rate * 2.5);
    hub.close();
  });
});
