import type { IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { encodeRecord, type Command } from "../src/cluster/commands.js";
import type { ChatOptions } from "../src/config.js";
import { get, seedUrl } from "./core-helpers.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { nowSeconds, SECRET, signJwt } from "./jwt-helpers.js";
import { slowLog } from "./cluster-log-wrappers.js";
import { LineClient, SseClient } from "./transport-clients.js";

/*
 * Identity from the host (spec §4) with servers sharing one log (spec §10):
 * the proof is checked where a request comes in, and the record carries its
 * outcome; every replica applies it alike and refuses alike a record that would
 * claim a name without it. The library's authenticate hook, JWTs on every way in.
 */

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(log: MemoryLog, options: ChatOptions): Promise<TestServer> {
  const server = await startServer({ ...options, sharedLog: log.client() });
  servers.push(server);
  return server;
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const jwtOf = (sub: string, claims: Record<string, unknown> = {}): string => signJwt({ sub, iat: nowSeconds(), exp: nowSeconds() + 300, ...claims });

/** Polls with a cursor until a message with this text comes (or 5 s pass). */
async function receive(url: string, auth: Record<string, string>, cursor: number, text: string): Promise<boolean> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/api/poll?cursor=${cursor}&timeout=500`, { headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { messages: { text: string }[]; cursor: number };
    if (body.messages.some((m) => m.text === text)) return true;
    cursor = body.cursor;
  }
  return false;
}

describe("authenticate(req) with servers sharing one log", () => {
  /** X-User stands in for the host's login; each server counts its own calls. */
  function login(calls: { n: number }): ChatOptions["authenticate"] {
    return (req: IncomingMessage) => {
      calls.n++;
      const user = req.headers["x-user"];
      return typeof user === "string" ? user : undefined;
    };
  }

  it("asks the hook where the request comes in; the session is every server's; a second login joins it; no login appends nothing", async () => {
    const log = new MemoryLog();
    const [callsA, callsB] = [{ n: 0 }, { n: 0 }];
    const a = await start(log, { authenticate: login(callsA) });
    const b = await start(log, { authenticate: login(callsB) });
    const first = await postJson(`${a.url}/api/join`, {}, { "x-user": "ann" });
    expect(first.status).toBe(200);
    expect(first.body.name).toBe("ann");
    expect([callsA.n, callsB.n]).toEqual([1, 0]);
    // Its token on B, and B's login for the same user: the same session, not 409.
    const again = await postJson(`${b.url}/api/join`, { room: "dev" }, { "x-user": "ann" });
    expect(again.status).toBe(200);
    expect(again.body.token).toBe(first.body.token);
    expect(callsB.n).toBe(1);
    const posted = await postJson(`${b.url}/api/messages`, { text: "hi from b", room: "dev" }, bearer(first.body.token));
    expect(posted.status).toBe(201);
    expect(await receive(a.url, bearer(first.body.token), first.body.cursor, "hi from b")).toBe(true);
    // No login: 401 on either, before anything is appended.
    const before = log.entries.length;
    for (const url of [a.url, b.url]) {
      const refused = await postJson(`${url}/api/join`, { name: "bob" });
      expect(refused.status).toBe(401);
      expect((await get(seedUrl(url, { name: "bob", timeout: "0" }))).status).toBe(401);
      expect((await get(seedUrl(url, { name: "ann", message: "spoof" }))).status).toBe(401);
    }
    expect(log.entries.length).toBe(before);
    expect(a.chat.hub.session("bob")).toBeUndefined();
    expect(b.chat.hub.session("bob")).toBeUndefined();
  });

  it("the hook's name in a seed poll on one server is the session on the other", async () => {
    const log = new MemoryLog();
    const a = await start(log, { authenticate: login({ n: 0 }) });
    const b = await start(log, { authenticate: login({ n: 0 }) });
    const polled = await fetch(seedUrl(a.url, { name: "cy", timeout: "0" }), { headers: { "x-user": "cy" } });
    expect(polled.status).toBe(200);
    expect(await polled.text()).toContain("cy joined lobby");
    const cy = b.chat.hub.session("cy");
    expect(cy?.token).toBeDefined();
    expect(a.chat.hub.session("cy")?.token).toBe(cy!.token);
  });
});

describe("--jwt-secret with servers sharing one log", () => {
  it("records that would claim a name without the proof's outcome are refused by every replica", async () => {
    const log = new MemoryLog();
    const a = await start(log, { jwtSecret: SECRET });
    const b = await start(log, { jwtSecret: SECRET });
    const forged: Command[] = [
      { t: "join", n: "mallory", r: "lobby", k: "forged-token-1" },
      { t: "join", n: "mallory", r: "lobby", k: "forged-token-2", tcp: 1 },
      { t: "seed", n: "mallory" },
      { t: "seed", n: "mallory", x: "hello" },
    ];
    log.append(forged.map((c) => encodeRecord({ c })));
    // The same records after them, proven: applied, so the forged ones before were read (and refused).
    log.append([encodeRecord({ c: { t: "vouch", n: "trent", j: 1, k: "trent-token" } })]);
    for (const server of [a, b]) {
      const deadline = Date.now() + 3000;
      while (server.chat.hub.session("trent") === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(server.chat.hub.session("trent")?.token).toBe("trent-token");
      expect(server.chat.hub.session("mallory")).toBeUndefined();
    }
  });

  it("a server without an identity source takes no vouched record", async () => {
    const log = new MemoryLog();
    const a = await start(log, {});
    log.append([encodeRecord({ c: { t: "vouch", n: "mallory", j: 1, k: "t1" } }), encodeRecord({ c: { t: "seed", n: "mallory", v: 1, nk: "t2" } })]);
    await joinApi(a.url, "zed");
    expect(a.chat.hub.session("mallory")).toBeUndefined();
  });

  it("a JWT on A, its token on B, a second JWT on B joins the same session; forged and expired refused on both with nothing appended", async () => {
    const log = new MemoryLog();
    const a = await start(log, { jwtSecret: SECRET });
    const b = await start(log, { jwtSecret: SECRET });
    const joined = await postJson(`${a.url}/api/join`, {}, bearer(jwtOf("carol")));
    expect(joined.status).toBe(200);
    const again = await postJson(`${b.url}/api/join`, { jwt: jwtOf("carol") });
    expect(again.status).toBe(200);
    expect(again.body.token).toBe(joined.body.token);
    expect((await postJson(`${b.url}/api/messages`, { text: "hello" }, bearer(joined.body.token))).status).toBe(201);
    const before = log.entries.length;
    const expired = jwtOf("carol", { exp: nowSeconds() - 120 });
    const forged = signJwt({ sub: "carol" }, "another-secret-that-is-32-bytes-long");
    for (const url of [a.url, b.url]) {
      for (const jwt of [expired, forged]) {
        expect((await postJson(`${url}/api/join`, {}, bearer(jwt))).status).toBe(401);
        expect((await get(seedUrl(url, { name: "carol", message: "x" }), bearer(jwt))).status).toBe(401);
        expect((await fetch(`${url}/api/events`, { headers: bearer(jwt) })).status).toBe(401);
      }
      expect((await postJson(`${url}/api/join`, { name: "dave" })).status).toBe(401);
    }
    expect(log.entries.length).toBe(before);
  });

  it("the rooms claim holds on every server and after a late server starts from a snapshot", async () => {
    const log = new MemoryLog();
    const a = await start(log, { jwtSecret: SECRET });
    const b = await start(log, { jwtSecret: SECRET });
    const joined = await postJson(`${a.url}/api/join`, {}, bearer(jwtOf("carol", { rooms: ["dev", "ops"] })));
    expect(joined.status).toBe(200);
    expect(joined.body.room).toBe("dev");
    const auth = bearer(joined.body.token);
    const check = async (url: string): Promise<void> => {
      expect((await postJson(`${url}/api/join`, { room: "sales" }, auth)).body.error.code).toBe("room_not_allowed");
      expect((await get(seedUrl(url, { name: "carol", room: "sales", timeout: "0" }), auth)).status).toBe(403);
      expect((await get(seedUrl(url, { name: "carol", room: "hr", message: "x" }), auth)).status).toBe(403);
      // A second JWT without the claim joins the session, which keeps its own.
      expect((await postJson(`${url}/api/join`, { room: "sales" }, bearer(jwtOf("carol")))).status).toBe(403);
      const ops = await postJson(`${url}/api/join`, { room: "ops" }, auth);
      expect(ops.status).toBe(200);
    };
    await check(b.url);
    expect(await a.chat.cluster!.saver()!.check(true)).toBe(true);
    const c = await start(log, { jwtSecret: SECRET });
    expect([...c.chat.hub.session("carol")!.allowedRooms!]).toEqual(["dev", "ops"]);
    await check(c.url);
    // A claim on a new session made by the seed endpoint, on another server than it is checked on.
    expect((await get(seedUrl(b.url, { name: "erin", room: "dev", message: "hi" }), bearer(jwtOf("erin", { rooms: ["dev"] })))).status).toBe(200);
    expect((await get(seedUrl(c.url, { name: "erin", room: "ops", timeout: "0" }), bearer(jwtOf("erin")))).status).toBe(403);
  });

  it("a seed poll and post with the JWT instead of the token, and SSE with it, work on every server", async () => {
    const log = new MemoryLog();
    const a = await start(log, { jwtSecret: SECRET });
    const b = await start(log, { jwtSecret: SECRET });
    const jwt = bearer(jwtOf("carol"));
    const stream = new SseClient(`${b.url}/api/events`, jwt);
    expect(await stream.status).toBe(200);
    await stream.waitFor((e) => e.event === "join" && e.data.includes("carol"), "carol's join");
    const polled = await get(seedUrl(a.url, { name: "carol", timeout: "0" }), jwt);
    expect(polled.status).toBe(200);
    const entries = log.entries.length;
    // The session is known: a JWT poll reads it without an entry.
    expect((await get(seedUrl(b.url, { name: "carol", timeout: "0" }), jwt)).status).toBe(200);
    expect(log.entries.length).toBe(entries);
    const posted = await get(seedUrl(a.url, { name: "carol", message: "from a" }), jwt);
    expect(posted.status).toBe(200);
    await stream.waitFor((e) => e.event === "message" && e.data.includes("from a"), "the post");
    stream.close();
    expect(a.chat.hub.session("carol")!.token).toBe(b.chat.hub.session("carol")!.token);
  });

  it("an SSE stream by JWT with a cursor from a server further on waits until this one caught up: no replay", async () => {
    const log = new MemoryLog();
    const a = await start(log, { jwtSecret: SECRET });
    const slow = slowLog(log.client(), { readDelayMs: 300 });
    const b = await startServer({ jwtSecret: SECRET, sharedLog: slow });
    servers.push(b);
    const joined = await postJson(`${a.url}/api/join`, {}, bearer(jwtOf("carol")));
    const deadline = Date.now() + 3000;
    while (b.chat.hub.session("carol") === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(b.chat.hub.session("carol")).toBeDefined();
    const seen = (await postJson(`${a.url}/api/messages`, { text: "seen on a" }, bearer(joined.body.token))).body.id as number;
    // B reads that post 300 ms late; the client already has it.
    const stream = new SseClient(`${b.url}/api/events?cursor=${seen}`, bearer(jwtOf("carol")));
    expect(await stream.status).toBe(200);
    expect((await postJson(`${a.url}/api/messages`, { text: "next" }, bearer(joined.body.token))).status).toBe(201);
    await stream.waitFor((e) => e.event === "message" && e.data.includes("next"), "the next post");
    stream.close();
    expect(stream.events.filter((e) => e.event === "message").map((e) => e.id)).not.toContain(String(seen));
  });

  it("TCP /token <jwt> on B speaks as the session made on A", async () => {
    const log = new MemoryLog();
    const a = await start(log, { jwtSecret: SECRET });
    const b = await start(log, { jwtSecret: SECRET, tcpPort: 0 });
    const joined = await postJson(`${a.url}/api/join`, { room: "dev" }, bearer(jwtOf("carol", { rooms: ["dev"] })));
    const line = new LineClient(b.tcpPort!);
    try {
      await line.waitFor((l) => l.startsWith("Send your token"), "the token prompt");
      line.send(`/token ${jwtOf("carol")}\n`);
      await line.waitFor((l) => l === "* you are carol, in dev", "who it is");
      line.send("over tcp\n");
      expect(await receive(a.url, bearer(joined.body.token), joined.body.cursor, "over tcp")).toBe(true);
      // A new name by JWT over TCP: made through the log, so A has it too.
      const dan = new LineClient(b.tcpPort!);
      await dan.waitFor((l) => l.startsWith("Send your token"), "the token prompt");
      dan.send(`/token ${jwtOf("dan")}\n`);
      await dan.waitFor((l) => l === "* you are dan, in lobby", "dan's session");
      expect(a.chat.hub.session("dan")?.token).toBe(b.chat.hub.session("dan")?.token);
      dan.socket.destroy();
    } finally {
      line.socket.destroy();
    }
  });
});
