import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ChatOptions } from "../src/index.js";
import { get, seedUrl } from "./core-helpers.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { LineClient } from "./transport-clients.js";

/**
 * Issue 10, items 5, 7, 9 and 13 (spec §5, §8): txn keys outlive sessions and
 * restarts; rooms are capped on every join path and joins have a budget; one
 * address cannot take every session slot; a refused request changes nothing.
 */

const open: { close(): Promise<void> }[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function start(options: ChatOptions = {}): Promise<TestServer> {
  const s = await startServer(options);
  open.push(s);
  return s;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pollchat-limits-"));
  dirs.push(dir);
  return dir;
}

/** A seed request (`/?...`), answered at once for a poll. */
function seed(s: TestServer, params: Record<string, string | number>, headers: Record<string, string> = {}) {
  return get(seedUrl(s.url, params), headers);
}

async function metric(s: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  if (!match) throw new Error(`no ${name} in /metrics`);
  return Number(match[1]);
}

/** Waits, in a bounded loop, until /metrics says `name` is `value`. */
async function metricBecomes(s: TestServer, name: string, value: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 500; i++) {
    if ((await metric(s, name)) === value) return;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${name} did not become ${value} within ${timeoutMs} ms`);
}

type RoomList = { rooms: { name: string; members: number }[]; next?: string };

async function rooms(s: TestServer, query = ""): Promise<RoomList> {
  const res = await fetch(`${s.url}/api/rooms${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as RoomList;
}

async function members(s: TestServer, room: string): Promise<string[] | undefined> {
  const res = await fetch(`${s.url}/api/rooms/${room}`);
  return res.status === 404 ? undefined : ((await res.json()) as { members: string[] }).members;
}

function okId(text: string): number {
  const match = /^ok (\d+)\n$/.exec(text);
  if (!match) throw new Error(`not an ok line: ${text}`);
  return Number(match[1]);
}

describe("txn keys outlive the session (item 5)", () => {
  it("answers a retry after the session expired with the first id, and posts nothing again", async () => {
    const s = await start({ sessionTtlMs: 200 });
    const first = await seed(s, { name: "alice", message: "once", txn: "k1" });
    expect(first.status).toBe(200);
    await metricBecomes(s, "pollchat_sessions", 0);
    const retry = await seed(s, { name: "alice", message: "once", txn: "k1" });
    expect(retry.status).toBe(200);
    expect(okId(retry.text)).toBe(okId(first.text));
    // Nothing happened: no session came back, no room was made, no message went out.
    expect(await metric(s, "pollchat_sessions")).toBe(0);
    expect((await rooms(s)).rooms).toEqual([]);
    // Another key is another post.
    expect(okId((await seed(s, { name: "alice", message: "once", txn: "k2" })).text)).toBeGreaterThan(okId(first.text));
  });

  it("answers it across a --data-dir restart after the session ended", async () => {
    const dir = await tempDir();
    let s = await start({ dataDir: dir, sessionTtlMs: 200 });
    const first = okId((await seed(s, { name: "alice", message: "once", txn: "k1" })).text);
    await metricBecomes(s, "pollchat_sessions", 0);
    await s.close();
    s = await start({ dataDir: dir, sessionTtlMs: 200 });
    expect(okId((await seed(s, { name: "alice", message: "once", txn: "k1" })).text)).toBe(first);
    const history = (await (await fetch(`${s.url}/api/rooms/lobby/messages?limit=1000`)).json()) as { messages: { text: string }[] };
    expect(history.messages.filter((m) => m.text === "once")).toHaveLength(1);
    expect(await metric(s, "pollchat_sessions")).toBe(0);
    // The key is in the snapshot the restart wrote, so it survives the next restart too.
    await s.close();
    s = await start({ dataDir: dir, sessionTtlMs: 200 });
    expect(okId((await seed(s, { name: "alice", message: "once", txn: "k1" })).text)).toBe(first);
  });
});

describe("rooms per session (item 7)", () => {
  it("refuses a room past --max-rooms-per-session on every HTTP join path, with nothing changed", async () => {
    const s = await start({ maxRoomsPerSession: 2 });
    expect((await seed(s, { name: "amy", room: "r1", timeout: 0 })).status).toBe(200);
    expect((await seed(s, { name: "amy", room: "r2", timeout: 0 })).status).toBe(200);
    const poll = await seed(s, { name: "amy", room: "r3", timeout: 0 });
    expect(poll.status).toBe(403);
    expect(poll.text).toMatch(/^error too_many_rooms: /);
    const post = await seed(s, { name: "amy", message: "hi", room: "r3" });
    expect(post.status).toBe(403);
    expect((await seed(s, { name: "amy", message: "/join r3" })).status).toBe(403);
    // Rooms she is in cost nothing.
    expect((await seed(s, { name: "amy", room: "r1", timeout: 0 })).status).toBe(200);
    expect((await seed(s, { name: "amy", message: "hi", room: "r2" })).status).toBe(200);

    const { auth } = await joinApi(s.url, "ben", "r1");
    expect((await postJson(`${s.url}/api/join`, { name: "ben", room: "r2" }, auth)).status).toBe(200);
    const third = await postJson(`${s.url}/api/join`, { name: "ben", room: "r3" }, auth);
    expect(third.status).toBe(403);
    expect(third.body.error.code).toBe("too_many_rooms");
    expect((await postJson(`${s.url}/api/messages`, { text: "/join r3" }, auth)).status).toBe(403);
    expect((await rooms(s)).rooms).toEqual([
      { name: "r1", members: 2 },
      { name: "r2", members: 2 },
    ]);
    expect(await members(s, "r3")).toBeUndefined();
  });

  it("refuses /join past the cap over TCP", async () => {
    const s = await start({ maxRoomsPerSession: 2, tcpPort: 0 });
    const carl = await LineClient.named(s.tcpPort!, "carl");
    carl.socket.on("error", () => {});
    open.push({ close: async () => void carl.socket.destroy() });
    carl.send("/join r1\n");
    await carl.waitFor((l) => l === "* you are in r1", "the join answer");
    carl.send("/join r2\n");
    await carl.waitFor((l) => l.startsWith("error too_many_rooms: "), "the refusal");
    expect(await members(s, "r2")).toBeUndefined();
  });

  it("refuses a new room past --max-rooms with 503 and Retry-After; existing rooms stay open", async () => {
    const s = await start({ maxRooms: 2 });
    expect((await seed(s, { name: "amy", room: "r1", timeout: 0 })).status).toBe(200);
    expect((await seed(s, { name: "ben", room: "r2", timeout: 0 })).status).toBe(200);
    const full = await seed(s, { name: "cat", room: "r3", timeout: 0 });
    expect(full.status).toBe(503);
    expect(full.text).toMatch(/^error server_full: /);
    expect(Number(full.headers.get("retry-after"))).toBeGreaterThan(0);
    // The refused poll left no session: the name is free.
    expect(await metric(s, "pollchat_sessions")).toBe(2);
    expect((await postJson(`${s.url}/api/join`, { name: "cat", room: "r3" })).status).toBe(503);
    expect((await postJson(`${s.url}/api/join`, { name: "cat", room: "r1" })).status).toBe(200);
    expect((await seed(s, { name: "amy", message: "hi", room: "r4" })).status).toBe(503);
    expect((await rooms(s)).rooms.map((r) => r.name)).toEqual(["r1", "r2"]);
  });

  it("restores no more rooms than the caps allow", async () => {
    const dir = await tempDir();
    let s = await start({ dataDir: dir });
    const { auth } = await joinApi(s.url, "amy", "lobby");
    for (const room of ["r1", "r2", "r3"]) expect((await postJson(`${s.url}/api/join`, { name: "amy", room }, auth)).status).toBe(200);
    await s.close();
    s = await start({ dataDir: dir, maxRoomsPerSession: 2 });
    // The rooms joined last are kept.
    expect((await rooms(s)).rooms.map((r) => r.name)).toEqual(["r2", "r3"]);
    await s.close();
    s = await start({ dataDir: dir, maxRooms: 1 });
    expect((await rooms(s)).rooms).toHaveLength(1);
  });
});

describe("the join budget (item 7)", () => {
  it("grants 50 joins at once, then paces them at --rate with 429 and Retry-After; rejoining is free", async () => {
    // A slow rate (a join back every 100 s), so the 50 requests' own time refills no whole token, however slow the machine.
    const s = await start({ rate: 0.01, maxRoomsPerSession: 100 });
    // The first poll makes the session in r0: one join of the 50.
    for (let i = 0; i < 50; i++) expect((await seed(s, { name: "amy", room: `r${i}`, timeout: 0 })).status, `r${i}`).toBe(200);
    const over = await seed(s, { name: "amy", room: "r50", timeout: 0 });
    expect(over.status).toBe(429);
    expect(over.text).toMatch(/^error rate_limited: /);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await members(s, "r50")).toBeUndefined();
    expect((await seed(s, { name: "amy", room: "r7", timeout: 0 })).status).toBe(200);
  });

  it("lets a page re-join 50 rooms through /api/join", async () => {
    const s = await start({ rate: 1 });
    const { auth } = await joinApi(s.url, "dee", "r0");
    for (let i = 1; i < 50; i++) expect((await postJson(`${s.url}/api/join`, { name: "dee", room: `r${i}` }, auth)).status).toBe(200);
    expect((await rooms(s)).rooms).toHaveLength(50);
  });
});

describe("listing rooms (item 7)", () => {
  it("pages GET /api/rooms: 100 by default, ?limit= up to 1000, ?after= and next", async () => {
    const s = await start({ maxRoomsPerSession: 50 });
    // Three sessions of 50 rooms each: 150 rooms.
    for (let i = 0; i < 150; i++) {
      const name = `u${Math.floor(i / 50)}`;
      expect((await seed(s, { name, room: `room${String(i).padStart(3, "0")}`, timeout: 0 })).status).toBe(200);
    }
    const first = await rooms(s);
    expect(first.rooms).toHaveLength(100);
    expect(first.rooms[0]).toEqual({ name: "room000", members: 1 });
    expect(first.next).toBe("room099");
    const second = await rooms(s, `?after=${first.next}`);
    expect(second.rooms.map((r) => r.name)).toEqual(Array.from({ length: 50 }, (_, i) => `room${100 + i}`));
    expect(second.next).toBeUndefined();
    const small = await rooms(s, "?limit=2&after=room010");
    expect(small).toEqual({ rooms: [{ name: "room011", members: 1 }, { name: "room012", members: 1 }], next: "room012" });
    expect((await rooms(s, "?limit=100000")).rooms).toHaveLength(150);
    expect((await fetch(`${s.url}/api/rooms?limit=x`)).status).toBe(400);
    expect((await fetch(`${s.url}/api/rooms?after=no%20room`)).status).toBe(400);
  });

  it("answers /rooms with the first 50 and how many more", async () => {
    const s = await start();
    for (let i = 0; i < 60; i++) expect((await seed(s, { name: `u${Math.floor(i / 30)}`, room: `r${String(i).padStart(2, "0")}`, timeout: 0 })).status).toBe(200);
    expect((await seed(s, { name: "u0", message: "/rooms" })).status).toBe(200);
    const answer = (await seed(s, { name: "u0", timeout: 0 })).text.split("\n").find((l) => l.startsWith("* rooms: "))!;
    expect(answer).toMatch(/^\* rooms: r00 \(1\), r01 \(1\), .*, r49 \(1\), and 10 more$/);
    expect(answer).not.toContain("r50");
  });
});

describe("sessions per address (item 9)", () => {
  it("refuses the 101st session from one address with 429 too_many_sessions, and ignores X-Forwarded-For without --trust-proxy", async () => {
    const s = await start();
    for (let i = 0; i < 100; i++) expect((await seed(s, { name: `n${i}`, timeout: 0 })).status).toBe(200);
    const over = await seed(s, { name: "n100", timeout: 0 });
    expect(over.status).toBe(429);
    expect(over.text).toMatch(/^error too_many_sessions: /);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    const api = await postJson(`${s.url}/api/join`, { name: "n100" });
    expect(api.status).toBe(429);
    expect(api.body.error.code).toBe("too_many_sessions");
    // X-Forwarded-For is anyone's to send: ignored without --trust-proxy.
    expect((await seed(s, { name: "n100", timeout: 0 }, { "x-forwarded-for": "203.0.113.7" })).status).toBe(429);
    expect(await metric(s, "pollchat_sessions")).toBe(100);
  });

  it("counts by the rightmost X-Forwarded-For hop with --trust-proxy", async () => {
    const s = await start({ trustProxy: true, maxSessionsPerIp: 3 });
    const from = (hops: string) => ({ "x-forwarded-for": hops });
    for (let i = 0; i < 3; i++) expect((await seed(s, { name: `a${i}`, timeout: 0 }, from(`198.51.100.${i}, 203.0.113.1`))).status).toBe(200);
    // The client wrote the left hops; the proxy wrote the last one.
    expect((await seed(s, { name: "a3", timeout: 0 }, from("198.51.100.9, 203.0.113.1"))).status).toBe(429);
    expect((await seed(s, { name: "a3", timeout: 0 }, from("203.0.113.2"))).status).toBe(200);
    // IPv6 clients count per /64; ::ffff:a.b.c.d is a.b.c.d.
    for (let i = 1; i <= 3; i++) expect((await seed(s, { name: `v${i}`, timeout: 0 }, from(`2001:db8:1:2::${i}`))).status).toBe(200);
    expect((await seed(s, { name: "v4", timeout: 0 }, from("2001:db8:1:2:ffff::9"))).status).toBe(429);
    expect((await seed(s, { name: "v4", timeout: 0 }, from("2001:db8:1:3::1"))).status).toBe(200);
    expect((await seed(s, { name: "m1", timeout: 0 }, from("::ffff:203.0.113.2"))).status).toBe(200);
    expect((await seed(s, { name: "m2", timeout: 0 }, from("203.0.113.2"))).status).toBe(200);
    expect((await seed(s, { name: "m3", timeout: 0 }, from("::ffff:203.0.113.2"))).status).toBe(429);
  });

  it("frees an address's slot when its session ends", async () => {
    const s = await start({ maxSessionsPerIp: 2 });
    const one = await joinApi(s.url, "p1");
    await joinApi(s.url, "p2");
    expect((await postJson(`${s.url}/api/join`, { name: "p3" })).status).toBe(429);
    expect((await postJson(`${s.url}/api/leave`, {}, one.auth)).status).toBe(200);
    expect((await postJson(`${s.url}/api/join`, { name: "p3" })).status).toBe(200);
  });

  it("counts a TCP session against its peer's address, as an HTTP one", async () => {
    const s = await start({ maxSessionsPerIp: 1, tcpPort: 0 });
    expect((await seed(s, { name: "web", timeout: 0 })).status).toBe(200);
    const nc = new LineClient(s.tcpPort!);
    nc.socket.on("error", () => {});
    open.push({ close: async () => void nc.socket.destroy() });
    await nc.waitFor((l) => l === "What is your name?", "the name prompt");
    nc.send("term\n");
    await nc.waitFor((l) => l.startsWith("error too_many_sessions: "), "the refusal");
    expect(await metric(s, "pollchat_sessions")).toBe(1);
  });

  it("keeps the HTTP per-connection cap off behind a proxy (--trust-proxy): every connection is the proxy's", async () => {
    const s = await start({ trustProxy: true, maxConnectionsPerIp: 1 });
    const answers = await Promise.all([0, 1, 2].map((i) => seed(s, { name: `c${i}`, timeout: 300 }, { "x-forwarded-for": `203.0.113.${i}` })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
  });
});

describe("a refused request changes nothing (item 13)", () => {
  it("a rate-limited post to a new room= neither joins it nor tells its members", async () => {
    // --rate 0.01: a burst of 1, refilled after 100 s, so no pause of a slow machine hands the refused post a token.
    const s = await start({ rate: 0.01 });
    const bob = await joinApi(s.url, "bob", "den");
    // One post spends alice's burst.
    expect((await seed(s, { name: "alice", message: "one" })).status).toBe(200);
    const refused = await seed(s, { name: "alice", message: "hi", room: "den" });
    expect(refused.status).toBe(429);
    expect(await members(s, "den")).toEqual(["bob"]);
    const poll = await fetch(`${s.url}/api/poll?cursor=${bob.cursor}&timeout=0`, { headers: bob.auth });
    const { messages } = (await poll.json()) as { messages: { type: string; from: string }[] };
    expect(messages.filter((m) => m.from === "alice")).toEqual([]);
  });

  it("a too_many_rooms refusal from a new name leaves no session", async () => {
    const s = await start({ maxRoomsPerSession: 1 });
    const refused = await seed(s, { name: "newbie", message: "/join b", room: "a" });
    expect(refused.status).toBe(403);
    expect(refused.text).toMatch(/^error too_many_rooms: /);
    expect(await metric(s, "pollchat_sessions")).toBe(0);
    expect((await rooms(s)).rooms).toEqual([]);
    expect((await postJson(`${s.url}/api/join`, { name: "newbie" })).status).toBe(200);
  });

  it("a refused post from a new name (unknown recipient, bad room, too long) leaves no session", async () => {
    const s = await start({ maxMessage: 10 });
    expect((await seed(s, { name: "x", message: "@nobody hi" })).status).toBe(404);
    expect((await seed(s, { name: "x", message: "hi", room: "bad room" })).status).toBe(400);
    expect((await seed(s, { name: "x", message: "far too long a text" })).status).toBe(413);
    expect((await seed(s, { name: "x", message: "/join bad!" })).status).toBe(400);
    expect(await metric(s, "pollchat_sessions")).toBe(0);
  });

  it("a refused post from a new name does not count against its address", async () => {
    const s = await start({ maxSessionsPerIp: 1 });
    expect((await seed(s, { name: "x", message: "@nobody hi" })).status).toBe(404);
    expect((await seed(s, { name: "y", message: "hello" })).status).toBe(200);
    expect((await seed(s, { name: "z", message: "hello" })).status).toBe(429);
    expect(await members(s, "lobby")).toEqual(["y"]);
  });
});
