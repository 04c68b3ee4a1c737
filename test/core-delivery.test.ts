import { once } from "node:events";
import { request, type IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULTS, Hub, type ChatMessage } from "../src/index.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { apiPoll, get, nextRequest, seedPollJson, seedPost, seedUrl } from "./core-helpers.js";

/** Delivery (spec §5): nothing lost, nothing out of order, nothing twice. */

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  const s = await startServer(options);
  servers.push(s);
  return s;
}

/** Registers a name and acknowledges its own join; returns the cursor to poll from. */
async function register(base: string, name: string, extra: Record<string, string> = {}): Promise<number> {
  const first = await seedPollJson(base, name, { cursor: 0, timeout: 0, ...extra });
  expect(first.status).toBe(200);
  // Acknowledge the answer by cursor, so later polls without a cursor start from an empty queue.
  const ack = await seedPollJson(base, name, { cursor: first.cursor, timeout: 0 });
  expect(ack.messages).toEqual([]);
  return ack.cursor;
}

/** A poll through node:http, so the test can cut its socket. */
function rawPoll(port: number, path: string): { response: Promise<IncomingMessage>; destroy(): void } {
  const req = request({ host: "127.0.0.1", port, path, agent: false });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.on("response", resolve);
    req.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? undefined : reject(e)));
  });
  req.end();
  return { response, destroy: () => req.destroy() };
}

/** Resolves once the server side of a request's connection has closed. */
async function socketClosed(req: IncomingMessage): Promise<void> {
  if (!req.socket.closed) await once(req.socket, "close");
}

describe("fan-out order", () => {
  it("gives 20 clients the same 250 ids from 5 concurrent posters, in order, with no gap and no duplicate", { timeout: 30_000 }, async () => {
    const s = await start({ rate: 1_000_000, pollTimeoutMs: 1000 });
    const posters = ["p0", "p1", "p2", "p3", "p4"];
    const clients = Array.from({ length: 20 }, (_, i) => `c${i}`);
    for (const p of posters) await register(s.url, p);
    const cursors = new Map<string, number>();
    for (const c of clients) cursors.set(c, await register(s.url, c));
    const TOTAL = posters.length * 50;
    const deadline = Date.now() + 20_000;

    const readers = clients.map(async (name) => {
      const seen: ChatMessage[] = [];
      let cursor = cursors.get(name)!;
      // Bounded: at most 500 polls and 20 s, far above what 250 messages need.
      for (let i = 0; i < 500 && Date.now() < deadline; i++) {
        const r = await seedPollJson(s.url, name, { cursor });
        expect(r.status).toBe(200);
        seen.push(...r.messages);
        cursor = r.cursor;
        if (seen.filter((m) => m.type === "message").length >= TOTAL) break;
      }
      return seen;
    });
    const writers = posters.map(async (p) => {
      const ids: number[] = [];
      for (let i = 0; i < 50; i++) ids.push(await seedPost(s.url, p, `${p} #${i}`));
      return ids;
    });

    const posted = (await Promise.all(writers)).flat().sort((a, b) => a - b);
    expect(new Set(posted).size).toBe(TOTAL);
    const received = await Promise.all(readers);
    for (const [i, seen] of received.entries()) {
      const ids = seen.map((m) => m.id);
      expect(seen.filter((m) => m.type === "gap"), clients[i]).toEqual([]);
      // Strictly increasing over everything received: in order, no duplicate.
      for (let k = 1; k < ids.length; k++) expect(ids[k]).toBeGreaterThan(ids[k - 1]!);
      expect(seen.filter((m) => m.type === "message").map((m) => m.id)).toEqual(posted);
    }
    // Each poster's own messages arrive in the order it posted them.
    const texts = received[0]!.filter((m) => m.from === "p3").map((m) => m.text);
    expect(texts).toEqual(Array.from({ length: 50 }, (_, i) => `p3 #${i}`));
  });
});

describe("waking waiting polls", () => {
  it("holds 10,000 waiting clients without a MaxListeners warning, and wakes only recipients", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on("warning", onWarning);
    const hub = new Hub({ ...DEFAULTS, presenceLimit: 0 });
    try {
      const woken = new Set<string>();
      for (let i = 0; i < 10_000; i++) {
        const client = hub.sessionForName(`u${i}`, { room: i < 5 ? "small" : "lobby" });
        hub.open(client).onWake(() => woken.add(client.name));
      }
      expect(hub.sessionCount).toBe(10_000);
      hub.post(hub.session("u0")!, { text: "to the small room" });
      await Promise.resolve(); // wakes run after the turn's publishes
      expect([...woken].sort()).toEqual(["u0", "u1", "u2", "u3", "u4"]);
      hub.post(hub.session("u9999")!, { text: "to everyone in the lobby" });
      await Promise.resolve();
      expect(woken.size).toBe(10_000);
    } finally {
      hub.close();
      // Warnings are emitted on a later tick.
      await new Promise((r) => setImmediate(r));
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
  });
});

describe("with a cursor", () => {
  it("sends again an answer whose socket was destroyed right after its headers", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    await register(s.url, "alice");
    const cursor = await register(s.url, "bob");
    const held = nextRequest(s);
    const poll = rawPoll(s.port, `/?name=bob&cursor=${cursor}`);
    const [serverReq] = await held;
    const id = await seedPost(s.url, "alice", "do not lose me");
    const res = await poll.response;
    expect(res.statusCode).toBe(200);
    expect(res.headers["x-cursor"]).toBe(String(id));
    poll.destroy();
    await socketClosed(serverReq);
    // The next poll with the old cursor gets it again.
    const again = await get(seedUrl(s.url, { name: "bob", cursor, timeout: 0 }));
    expect(again.text).toBe("alice : do not lose me\n");
    // And acknowledging it with the new cursor removes it.
    const after = await get(seedUrl(s.url, { name: "bob", cursor: id, timeout: 0 }));
    expect(after.text).toBe("");
  });

  it("gives an immediate answer lost on the wire again too", async () => {
    const s = await start();
    await register(s.url, "alice");
    const cursor = await register(s.url, "bob");
    await seedPost(s.url, "alice", "one");
    await seedPost(s.url, "alice", "two");
    const held = nextRequest(s);
    const poll = rawPoll(s.port, `/?name=bob&cursor=${cursor}&timeout=0`);
    const [serverReq] = await held;
    await poll.response;
    poll.destroy();
    await socketClosed(serverReq);
    const again = await get(seedUrl(s.url, { name: "bob", cursor, timeout: 0 }));
    expect(again.text).toBe("alice : one\nalice : two\n");
  });

  it("never answers cursor=0 with a gap", async () => {
    const s = await start();
    await seedPost(s.url, "alice", "hi");
    const r = await seedPollJson(s.url, "bob", { cursor: 0, timeout: 0 });
    expect(r.messages.map((m) => m.type)).toEqual(["join"]);
  });

  it("answers a replayed old cursor with a gap first, never silence nor a replay", async () => {
    const s = await start();
    await register(s.url, "alice");
    const c0 = await register(s.url, "bob");
    await seedPost(s.url, "alice", "one");
    const r1 = await seedPollJson(s.url, "bob", { cursor: c0, timeout: 0 });
    await seedPollJson(s.url, "bob", { cursor: r1.cursor, timeout: 0 }); // acknowledges "one"
    await seedPost(s.url, "alice", "two");
    const replay = await seedPollJson(s.url, "bob", { cursor: c0, timeout: 0 });
    expect(replay.messages.map((m) => [m.type, m.text])).toEqual([
      ["gap", "some messages missed"],
      ["message", "two"],
    ]);
    expect(replay.messages[0]!.missed).toBeNull();
  });

  it("clamps a forged cursor from the future, so it cannot swallow later messages", async () => {
    const s = await start();
    await register(s.url, "alice");
    await register(s.url, "bob");
    const forged = await seedPollJson(s.url, "bob", { cursor: "9999999999999999", timeout: 0 });
    expect(forged.status).toBe(200);
    expect(forged.cursor).toBeLessThan(9999999999999999);
    await seedPost(s.url, "alice", "after");
    const r = await seedPollJson(s.url, "bob", { cursor: forged.cursor, timeout: 0 });
    expect(r.messages.map((m) => m.text)).toEqual(["after"]);
  });
});

describe("without a cursor (the seed's way)", () => {
  it("keeps messages for the next poll when a held poll's client went away first", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    await register(s.url, "alice");
    await register(s.url, "bob");
    const held = nextRequest(s);
    const poll = rawPoll(s.port, "/?name=bob");
    const [, serverRes] = await held;
    expect(s.chat.hub.session("bob")!.presenceHolds).toBe(1);
    poll.destroy();
    await once(serverRes, "close");
    expect(s.chat.hub.session("bob")!.presenceHolds).toBe(0);
    await seedPost(s.url, "alice", "you were away");
    const next = await get(seedUrl(s.url, { name: "bob", timeout: 0 }));
    expect(next.text).toBe("alice : you were away\n");
  });

  it("drops a message from the queue once its answer was completely written", async () => {
    const s = await start();
    await register(s.url, "alice");
    await register(s.url, "bob");
    await seedPost(s.url, "alice", "once");
    const served = nextRequest(s);
    const first = get(seedUrl(s.url, { name: "bob", timeout: 0 }));
    const [, serverRes] = await served;
    expect((await first).text).toBe("alice : once\n");
    if (!serverRes.writableFinished) await once(serverRes, "finish");
    const second = await get(seedUrl(s.url, { name: "bob", timeout: 0 }));
    expect(second.text).toBe("");
  });

  it("answers every held poll of one name (two tabs)", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    await register(s.url, "alice");
    await register(s.url, "bob");
    const h1 = nextRequest(s);
    const tab1 = get(seedUrl(s.url, { name: "bob" }));
    await h1;
    const h2 = nextRequest(s);
    const tab2 = get(seedUrl(s.url, { name: "bob" }));
    await h2;
    await seedPost(s.url, "alice", "both");
    expect((await tab1).text).toBe("alice : both\n");
    expect((await tab2).text).toBe("alice : both\n");
  });
});

describe("txn", () => {
  it("answers a retried seed post with the first id and posts it once", async () => {
    const s = await start();
    const cursor = await register(s.url, "bob");
    const a = await seedPost(s.url, "alice", "only once", { txn: "k-1" });
    const b = await seedPost(s.url, "alice", "only once", { txn: "k-1" });
    expect(b).toBe(a);
    const c = await seedPost(s.url, "alice", "only once", { txn: "k-2" });
    expect(c).toBeGreaterThan(a);
    const r = await get(seedUrl(s.url, { name: "bob", cursor, timeout: 0 }));
    expect(r.text).toBe("* alice joined lobby\nalice : only once\nalice : only once\n");
  });

  it("answers a retried JSON post with the first id and posts it once", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    const first = await postJson(`${s.url}/api/messages`, { text: "hello", txn: "abc" }, dave.auth);
    const retry = await postJson(`${s.url}/api/messages`, { text: "hello", txn: "abc" }, dave.auth);
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    const r = await apiPoll(s.url, dave.auth, { cursor: dave.cursor, timeout: 0 });
    expect(r.messages.filter((m) => m.type === "message").map((m) => m.id)).toEqual([first.body.id]);
  });
});

describe("restarts", () => {
  it("answers a cursor from before a restart with a gap, and never repeats an id", async () => {
    const s1 = await start();
    await register(s1.url, "alice");
    const bobCursor = await register(s1.url, "bob");
    const oldId = await seedPost(s1.url, "alice", "before");
    const before = await seedPollJson(s1.url, "bob", { cursor: bobCursor, timeout: 0 });
    expect(before.cursor).toBe(oldId);
    await s1.close();
    servers.splice(servers.indexOf(s1), 1);

    const s2 = await start();
    const after = await seedPollJson(s2.url, "bob", { cursor: before.cursor, timeout: 0 });
    expect(after.messages[0]).toMatchObject({ type: "gap", missed: null });
    expect(after.messages.slice(1).map((m) => m.type)).toEqual(["join"]);
    for (const m of after.messages) expect(m.id).toBeGreaterThan(oldId);
    const text = await get(seedUrl(s2.url, { name: "carol", cursor: before.cursor, timeout: 0 }));
    expect(text.text).toBe("* some messages missed\n* carol joined lobby\n");
    const newId = await seedPost(s2.url, "alice", "after");
    expect(newId).toBeGreaterThan(oldId);
  });
});

describe("--max-queue", () => {
  it("drops the oldest past the bound and gives one gap entry with the missed count", async () => {
    const s = await start({ maxQueue: 3 });
    await register(s.url, "alice");
    const cursor = await register(s.url, "bob");
    const ids: number[] = [];
    for (let i = 1; i <= 5; i++) ids.push(await seedPost(s.url, "alice", `m${i}`));
    const r = await seedPollJson(s.url, "bob", { cursor, timeout: 0 });
    expect(r.messages.map((m) => [m.type, m.text, m.missed])).toEqual([
      ["gap", "2 messages missed", 2],
      ["message", "m3", undefined],
      ["message", "m4", undefined],
      ["message", "m5", undefined],
    ]);
    expect(r.messages[0]!.id).toBe(ids[1]);
    const text = await get(seedUrl(s.url, { name: "bob", cursor, timeout: 0 }));
    expect(text.text).toBe("* 2 messages missed\nalice : m3\nalice : m4\nalice : m5\n");
    // More overflow adds to the one gap entry instead of a second one.
    for (let i = 6; i <= 7; i++) await seedPost(s.url, "alice", `m${i}`);
    const more = await seedPollJson(s.url, "bob", { cursor, timeout: 0 });
    expect(more.messages.map((m) => m.text)).toEqual(["4 messages missed", "m5", "m6", "m7"]);
    const acked = await seedPollJson(s.url, "bob", { cursor: more.cursor, timeout: 0 });
    expect(acked.messages).toEqual([]);
  });
});

describe("--session-ttl", () => {
  it("removes a client that stops polling and sends its rooms a leave", async () => {
    // A TTL above any pause of a busy machine between bob's register and his first held poll.
    const s = await start({ sessionTtlMs: 800, pollTimeoutMs: 5000 });
    let cursor = await register(s.url, "bob");
    await register(s.url, "alice");
    const started = Date.now();
    const seen: ChatMessage[] = [];
    // Bob keeps polling (so he stays); alice went quiet. Bounded: 10 polls.
    for (let i = 0; i < 10 && !seen.some((m) => m.type === "leave"); i++) {
      const r = await seedPollJson(s.url, "bob", { cursor });
      seen.push(...r.messages);
      cursor = r.cursor;
    }
    expect(seen.map((m) => [m.type, m.from])).toEqual([
      ["join", "alice"],
      ["leave", "alice"],
    ]);
    // The leave woke bob's held poll (TTL and a sweep, ~1 s), not the end of the poll (5 s).
    expect(Date.now() - started).toBeLessThan(4000);
    expect(s.chat.hub.session("alice")).toBeUndefined();
    expect(s.chat.hub.session("bob")).toBeDefined();
    // The name is free again.
    const dave = await postJson(`${s.url}/api/join`, { name: "alice" });
    expect(dave.status).toBe(200);
  }, 15_000);

  it("keeps a client whose poll is held longer than the ttl", async () => {
    // The poll is held four TTLs; the TTL is above any pause of a busy machine between bob's register and the poll.
    const s = await start({ sessionTtlMs: 500, pollTimeoutMs: 2000 });
    // Alice is in another room: her leave when she expires does not end bob's poll early.
    await register(s.url, "alice", { room: "den" });
    const cursor = await register(s.url, "bob");
    const started = Date.now();
    const r = await get(seedUrl(s.url, { name: "bob", cursor }));
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(s.chat.hub.session("bob")).toBeDefined();
  });
});

describe("--presence-limit", () => {
  it("suppresses join notices in rooms above the limit while /who stays exact", async () => {
    const s = await start({ presenceLimit: 2 });
    const a = await register(s.url, "a1");
    await register(s.url, "a2");
    await register(s.url, "a3");
    await seedPost(s.url, "a1", "/who");
    const r = await get(seedUrl(s.url, { name: "a1", cursor: a, timeout: 0 }));
    expect(r.text).toBe("* a2 joined lobby\n* members of lobby: a1, a2, a3\n");
    const room = await fetch(`${s.url}/api/rooms/lobby`);
    expect(await room.json()).toEqual({ name: "lobby", members: ["a1", "a2", "a3"] });
  });
});
