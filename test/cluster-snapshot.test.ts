import { afterEach, describe, expect, it } from "vitest";
import type { Hub } from "../src/hub.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { ChatOptions } from "../src/config.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";

/** Snapshots of the shared state (issue 12): a process joining late loads one and reads only the entries after it. */

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(log: MemoryLog, options: ChatOptions = {}): Promise<TestServer> {
  const server = await startServer({ ...options, sharedLog: log.client() });
  servers.push(server);
  return server;
}

function stateOf(hub: Hub): unknown {
  const sessions = [...hub.sessions()]
    .map((s) => ({ name: s.name, token: s.token, rooms: [...s.rooms], current: s.currentRoom, address: s.address, buckets: s.bucketStates }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const history = hub.rooms().map(({ name }) => hub.roomWithHistory(name)!.history(Number.MAX_SAFE_INTEGER, 1000).map((e) => e.id));
  return { lastId: hub.lastId, sessions, rooms: hub.rooms(), history, txns: [...hub.txnKeys(Date.now())] };
}

describe("snapshots of the shared state", () => {
  it("a late process loads the newest snapshot, reads only what follows, and serves old cursors and rate limits as the others", async () => {
    const log = new MemoryLog();
    const a = await start(log, { rate: 2 });
    const ann = await joinApi(a.url, "ann");
    const bob = await joinApi(a.url, "bob", "dev");
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await postJson(`${a.url}/api/messages`, { text: `m${i}`, txn: `k${i}` }, i % 2 ? bob.auth : ann.auth);
      if (r.status === 201) ids.push(r.body.id);
      await new Promise((res) => setTimeout(res, 300));
    }
    expect(await a.chat.cluster!.saver()!.check(true)).toBe(true);
    await postJson(`${a.url}/api/messages`, { text: "after-1" }, ann.auth);
    expect(await a.chat.cluster!.saver()!.check(true)).toBe(true);
    // Trimmed below the first snapshot: the log no longer starts at its first entry.
    const first = log.entries[0]!.id;
    const late = await start(log, { rate: 2 });
    expect(stateOf(late.chat.hub)).toEqual(stateOf(a.chat.hub));
    expect(late.chat.cluster!.replica.stats.applied).toBeLessThan(log.entries.length + 1);
    expect(first).not.toBe("0-0");
    // An old cursor, served exactly by the late process.
    const res = await fetch(`${late.url}/api/poll?cursor=${ids[0]}&timeout=0`, { headers: ann.auth });
    const body = (await res.json()) as { messages: { id: number; type: string }[] };
    expect(body.messages.filter((m) => m.type === "message").map((m) => m.id)[0]).toBe(ids[2]);
    // A txn key from before the snapshot still answers the first id, on the late process.
    expect((await postJson(`${late.url}/api/messages`, { text: "m0", txn: "k0" }, ann.auth)).body.id).toBe(ids[0]);
    // A burst right after start: both processes decide alike (the buckets came with the snapshot).
    for (let i = 0; i < 5; i++) await postJson(`${i % 2 ? late.url : a.url}/api/messages`, { text: `b${i}` }, bob.auth);
    await a.chat.cluster!.replica.catchUp();
    await late.chat.cluster!.replica.catchUp();
    expect(stateOf(late.chat.hub)).toEqual(stateOf(a.chat.hub));
  });
});
