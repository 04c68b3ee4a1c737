import { afterEach, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { ChatOptions } from "../src/config.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { randomClients } from "./cluster-clients.js";

/** Several servers of one process sharing one log (issue 12), through real sockets: any server answers any request. */

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function cluster(n: number, log = new MemoryLog(), options: ChatOptions = {}): Promise<string[]> {
  const urls: string[] = [];
  for (let i = 0; i < n; i++) {
    const server = await startServer({ ...options, sharedLog: log.client() });
    servers.push(server);
    urls.push(server.url);
  }
  return urls;
}

describe("servers sharing one log", () => {
  it("clients picking a random server per request get every message exactly once, in one order", async () => {
    const urls = await cluster(3);
    const { ids } = await randomClients(urls, { clients: 4, posts: 6 });
    expect(ids.length).toBe(24);
  });

  it("a name taken on one server is refused on another; a token from one works on another", async () => {
    const [a, b] = await cluster(2);
    const ann = await joinApi(a!, "ann");
    expect((await postJson(`${b}/api/join`, { name: "ANN" })).status).toBe(409);
    const posted = await postJson(`${b}/api/messages`, { text: "hello" }, ann.auth);
    expect(posted.status).toBe(201);
    const res = await fetch(`${b}/api/poll?cursor=${ann.cursor}&timeout=0`, { headers: ann.auth });
    const body = (await res.json()) as { messages: { id: number; text: string }[] };
    expect(body.messages.map((m) => m.text)).toContain("hello");
  });

  it("the seed endpoint: a name posting on one server is polled on another", async () => {
    const [a, b] = await cluster(2);
    expect(await (await fetch(`${a}/?name=zed&timeout=0`)).text()).toContain("zed joined lobby");
    const ok = await (await fetch(`${b}/?name=yan&message=hey`)).text();
    expect(ok).toMatch(/^ok \d+\n$/);
    const lines = await (await fetch(`${a}/?name=zed&timeout=0`)).text();
    expect(lines).toContain("yan : hey");
  });

  it("a late server serves an old cursor exactly", async () => {
    const log = new MemoryLog();
    const [a] = await cluster(1, log);
    const ivy = await joinApi(a!, "ivy");
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await postJson(`${a}/api/messages`, { text: `m${i}` }, ivy.auth)).body.id);
    const [late] = await cluster(1, log);
    const res = await fetch(`${late}/api/poll?cursor=${ids[1]}&timeout=0`, { headers: ivy.auth });
    const body = (await res.json()) as { messages: { id: number }[] };
    expect(body.messages.map((m) => m.id)).toEqual(ids.slice(2));
  });

  it("posts and joins answer 503 store_unavailable while the log is unreachable, /healthz says so, and all resumes", async () => {
    const log = new MemoryLog();
    const [a] = await cluster(1, log);
    const kim = await joinApi(a!, "kim");
    log.down();
    const refused = await postJson(`${a}/api/messages`, { text: "x" }, kim.auth);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe("store_unavailable");
    expect(refused.headers.get("retry-after")).not.toBeNull();
    expect((await postJson(`${a}/api/join`, { name: "lee" })).status).toBe(503);
    expect((await fetch(`${a}/healthz`)).status).toBe(503);
    expect(await (await fetch(`${a}/metrics`)).text()).toMatch(/pollchat_redis_connected 0/);
    log.up();
    expect((await fetch(`${a}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${a}/metrics`)).text();
    for (const name of ["pollchat_redis_connected 1", "pollchat_redis_lag_seconds", "pollchat_redis_reconnects", "pollchat_redis_applied_total"]) expect(metrics).toContain(name);
    expect((await postJson(`${a}/api/messages`, { text: "y" }, kim.auth)).status).toBe(201);
  });

  it("a client polling only on B stays present for A; one that stops gets exactly one leave", async () => {
    // A TTL far above any pause of a busy machine between two of busy's polls (one that long would rightly end it).
    const [a, b] = await cluster(2, new MemoryLog(), { sessionTtlMs: 1500 });
    const watcher = await joinApi(a!, "watcher");
    const busy = await joinApi(a!, "busy");
    await joinApi(b!, "idle");
    const lines: string[] = [];
    // For four TTLs `busy` polls only on B, the watcher only on A, collecting what it gets; `idle` never polls
    // (its leave comes after one TTL and a sweep or two, ~2 s).
    const end = Date.now() + 6000;
    const pollUntilEnd = async (url: string, who: { cursor: number; auth: Record<string, string> }, seen?: string[]): Promise<void> => {
      let cursor = who.cursor;
      while (Date.now() < end) {
        const res = await fetch(`${url}/api/poll?cursor=${cursor}&timeout=200`, { headers: who.auth });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { messages: { type: string; from: string }[]; cursor: number };
        for (const m of body.messages) seen?.push(`${m.type} ${m.from}`);
        cursor = body.cursor;
      }
    };
    await Promise.all([pollUntilEnd(b!, busy), pollUntilEnd(a!, watcher, lines)]);
    expect(lines.filter((l) => l === "leave idle").length).toBe(1);
    expect(lines).not.toContain("leave busy");
  }, 15_000);
});
