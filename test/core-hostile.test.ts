import { Agent, request } from "node:http";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { joinApi, postJson, postUntilRefused, serverPerTest } from "./helpers.js";
import { apiPoll, get, prototypeSnapshot, rawRequest, seedPollJson, seedPost, seedUrl, statusOf } from "./core-helpers.js";

/** Hostile input (spec §2, §8): a clear 4xx, and nothing else changes. */

const start = serverPerTest();

describe("names that are also Object.prototype keys", () => {
  it("treats __proto__ and constructor as ordinary names and rooms, polluting nothing", async () => {
    const before = prototypeSnapshot();
    const s = await start();
    const watcher = await seedPollJson(s.url, "watcher", { cursor: 0, timeout: 0 });
    const proto = await seedPollJson(s.url, "__proto__", { cursor: 0, timeout: 0 });
    expect(proto.status).toBe(200);
    await seedPost(s.url, "__proto__", "hi from proto");
    await seedPost(s.url, "constructor", "hi from constructor");
    await seedPost(s.url, "constructor", "@__proto__ psst");
    await seedPost(s.url, "toString", "/join __proto__");
    await seedPost(s.url, "hasOwnProperty", "in constructor", { room: "constructor" });
    const api = await joinApi(s.url, "valueOf", "prototype");
    expect((await postJson(`${s.url}/api/messages`, { text: "x", to: "constructor" }, api.auth)).status).toBe(201);

    const w = await seedPollJson(s.url, "watcher", { cursor: watcher.cursor, timeout: 0 });
    expect(w.messages.filter((m) => m.type === "message").map((m) => [m.from, m.text])).toEqual([
      ["__proto__", "hi from proto"],
      ["constructor", "hi from constructor"],
    ]);
    const p = await seedPollJson(s.url, "__proto__", { cursor: proto.cursor, timeout: 0 });
    expect(p.messages.find((m) => m.type === "private")).toMatchObject({ from: "constructor", to: "__proto__", text: "psst" });

    const rooms = (await (await fetch(`${s.url}/api/rooms`)).json()) as { rooms: { name: string }[] };
    expect(rooms.rooms.map((r) => r.name)).toEqual(["__proto__", "constructor", "lobby", "prototype"]);
    const protoRoom = await (await fetch(`${s.url}/api/rooms/__proto__`)).json();
    expect(protoRoom).toEqual({ name: "__proto__", members: ["toString"] });
    const history = await fetch(`${s.url}/api/rooms/constructor/messages`);
    expect(history.status).toBe(200);
    await history.text();
    expect(s.chat.hub.session("__proto__")!.name).toBe("__proto__");
    expect(s.chat.hub.session("constructor")!.name).toBe("constructor");
    expect(s.chat.hub.session("hasownproperty")!.name).toBe("hasOwnProperty");
    expect(s.chat.hub.session("isPrototypeOf")).toBeUndefined();

    // Prototype-pollution shapes in queries and bodies are plain keys.
    expect((await get(`${s.url}/?name=q1&timeout=0&__proto__[polluted]=1&constructor[prototype][polluted]=1`)).status).toBe(200);
    expect((await get(`${s.url}/?__proto__=x&name=q2&timeout=0`)).status).toBe(200);
    const body = '{"name":"q3","__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}';
    const join = await fetch(`${s.url}/api/join`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(join.status).toBe(200);
    await join.text();
    const bad = await postJson(`${s.url}/api/join`, { name: { __proto__: null } });
    expect(bad.status).toBe(400);

    expect(prototypeSnapshot()).toBe(before);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted")).toBe(false);
  });
});

describe("invalid names and rooms", () => {
  const badNames = ["", "x".repeat(33), "é", "名前", "a b", "a/b", "a\0b", "😀", "a+b", "a:b"];

  it("answers 400 for empty, 33-character and non-ASCII names, and registers nothing", async () => {
    const s = await start();
    for (const name of badNames) {
      const poll = await get(seedUrl(s.url, { name, timeout: 0 }));
      expect(poll.status, JSON.stringify(name)).toBe(400);
      expect(poll.text).toMatch(/^error invalid_name: /);
      const post = await get(seedUrl(s.url, { name, message: "hi" }));
      expect(post.status).toBe(400);
      const join = await postJson(`${s.url}/api/join`, { name });
      expect(join.status).toBe(400);
      expect(join.body.error.code).toBe("invalid_name");
    }
    expect(s.chat.hub.sessionCount).toBe(0);
    expect((await get(seedUrl(s.url, { name: "x".repeat(32), timeout: 0 }))).status).toBe(200);
    expect((await get(seedUrl(s.url, { name: "A-z_0.9", timeout: 0 }))).status).toBe(200);
  });

  it("answers 400 for bad rooms, through a parameter, /join and the API", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    for (const room of badNames) {
      expect((await get(seedUrl(s.url, { name: "erin", room, timeout: 0 }))).status, JSON.stringify(room)).toBe(400);
      expect((await postJson(`${s.url}/api/join`, { name: "dave", room }, dave.auth)).status).toBe(400);
    }
    // Nothing was created by the refused requests: no room, and no half-made session for erin.
    expect(s.chat.hub.rooms()).toEqual([{ name: "lobby", members: 1 }]);
    expect(s.chat.hub.sessionCount).toBe(1);
    expect(s.chat.hub.session("erin")).toBeUndefined();
    expect((await get(seedUrl(s.url, { name: "erin", timeout: 0 }))).status).toBe(200);
    expect((await get(seedUrl(s.url, { name: "erin", message: `/join ${"r".repeat(33)}` }))).status).toBe(400);
    expect((await get(seedUrl(s.url, { name: "erin", message: "/join" }))).status).toBe(400);
    expect(s.chat.hub.rooms()).toEqual([{ name: "lobby", members: 2 }]);
  });

  it("registers no name for a refused seed post: bad /join, unknown recipient, empty private text, bad txn", async () => {
    const s = await start();
    const watcher = await joinApi(s.url, "watcher");
    const refused: [Record<string, string>, number][] = [
      [{ message: "/join !!" }, 400],
      [{ message: "@nobody hi" }, 404],
      [{ message: "@watcher " }, 400],
      [{ message: "hi", room: "no room!" }, 400],
      [{ message: "hi", txn: " " }, 400],
    ];
    for (const [i, [params, status]] of refused.entries()) {
      expect((await get(seedUrl(s.url, { name: `newbie${i}`, ...params }))).status, JSON.stringify(params)).toBe(status);
    }
    expect(s.chat.hub.sessionCount).toBe(1);
    expect(s.chat.hub.room("lobby")!.memberNames()).toEqual(["watcher"]);
    const polled = await (await fetch(`${s.url}/api/poll?cursor=${watcher.cursor}&timeout=0`, { headers: watcher.auth })).json();
    // Only the watcher's own join: no newbie joined, posted or left.
    expect(polled.messages.map((m: { type: string; from: string }) => `${m.type} ${m.from}`)).toEqual(["join watcher"]);
  });

  it("answers 400 for bad percent-encoding and invalid UTF-8", async () => {
    const s = await start();
    for (const qs of ["name=%ZZ", "name=%", "name=a%C3%28", "name=bob&message=%E2%82", "name=bob&%FF=1"]) {
      const r = await get(`${s.url}/?${qs}`);
      expect(r.status, qs).toBe(400);
      expect(r.text).toMatch(/^error bad_encoding/);
    }
    expect(s.chat.hub.sessionCount).toBe(0);
  });
});

describe("limits", () => {
  it("answers 413 message_too_long past --max-message, counting characters, not bytes", async () => {
    const s = await start({ maxMessage: 10 });
    expect((await get(seedUrl(s.url, { name: "bob", message: "😀".repeat(10) }))).status).toBe(200);
    const long = await get(seedUrl(s.url, { name: "bob", message: "x".repeat(11) }));
    expect(long.status).toBe(413);
    expect(long.text).toMatch(/^error message_too_long/);
    const dave = await joinApi(s.url, "dave");
    const api = await postJson(`${s.url}/api/messages`, { text: "y".repeat(11) }, dave.auth);
    expect(api.status).toBe(413);
    expect(api.body.error.code).toBe("message_too_long");
    const priv = await postJson(`${s.url}/api/messages`, { text: "z".repeat(11), to: "bob" }, dave.auth);
    expect(priv.status).toBe(413);
    const empty = await postJson(`${s.url}/api/messages`, { text: "" }, dave.auth);
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe("empty_message");
    const r = await apiPoll(s.url, dave.auth, { cursor: dave.cursor, timeout: 0 });
    expect(r.messages.map((m) => m.type)).toEqual(["join"]);
  });

  it("answers 413 body_too_large for a JSON body over 64 KiB, declared or chunked", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    const big = JSON.stringify({ text: "x".repeat(64 * 1024) });
    const declared = await postJson(`${s.url}/api/messages`, JSON.parse(big), dave.auth);
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe("body_too_large");

    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: "127.0.0.1",
        port: s.port,
        method: "POST",
        path: "/api/messages",
        headers: { "content-type": "application/json", authorization: dave.auth.authorization!, "transfer-encoding": "chunked" },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      // The server may cut the upload once it has answered.
      req.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? undefined : reject(e)));
      for (let i = 0; i < 10; i++) req.write("x".repeat(8 * 1024));
      req.end();
    });
    expect(chunked).toBe(413);
    // Just under the cap is read (and then judged on its own merits).
    const under = await postJson(`${s.url}/api/messages`, { text: "x".repeat(60 * 1024) }, dave.auth);
    expect(under.status).toBe(413);
    expect(under.body.error.code).toBe("message_too_long");
    expect((await get(`${s.url}/healthz`)).status).toBe(200);
  });

  it("answers 429 rate_limited with Retry-After past the burst", async () => {
    const s = await start({ rate: 1 });
    // --rate 1: bursts of 2, then one a second; the bucket's clock is this process's, so the posts granted
    // are the burst plus one for each whole second since the session was made.
    const seeded = await postUntilRefused((i) => get(seedUrl(s.url, { name: "bob", message: `${i}` })), Date.now());
    const refused = seeded.answers.at(-1)!;
    expect(seeded.answers.slice(0, -1).map((a) => a.status)).toEqual(seeded.answers.slice(1).map(() => 200));
    expect(seeded.answers.length - 1).toBeGreaterThanOrEqual(2);
    expect(seeded.answers.length - 1).toBeLessThanOrEqual(2 + Math.floor(seeded.elapsedMs / 1000));
    expect(refused.status).toBe(429);
    expect(refused.text).toMatch(/^error rate_limited/);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Another session has its own bucket.
    const daveStarted = Date.now();
    const dave = await joinApi(s.url, "dave");
    const posted = await postUntilRefused((i) => postJson(`${s.url}/api/messages`, { text: `${i}` }, dave.auth), daveStarted);
    const api = posted.answers.at(-1)!;
    expect(posted.answers.slice(0, -1).map((a) => a.status)).toEqual(posted.answers.slice(1).map(() => 201));
    expect(posted.answers.length - 1).toBeGreaterThanOrEqual(2);
    expect(posted.answers.length - 1).toBeLessThanOrEqual(2 + Math.floor(posted.elapsedMs / 1000));
    expect(api.status).toBe(429);
    expect(api.body.error.code).toBe("rate_limited");
    expect(Number(api.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("answers 503 server_full with Retry-After past --max-sessions", async () => {
    const s = await start({ maxSessions: 2 });
    await joinApi(s.url, "a1");
    expect((await get(seedUrl(s.url, { name: "a2", timeout: 0 }))).status).toBe(200);
    const seed = await get(seedUrl(s.url, { name: "a3", timeout: 0 }));
    expect(seed.status).toBe(503);
    expect(seed.text).toMatch(/^error server_full/);
    expect(Number(seed.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const api = await postJson(`${s.url}/api/join`, { name: "a4" });
    expect(api.status).toBe(503);
    expect(api.body.error.code).toBe("server_full");
    expect(api.headers.get("retry-after")).toMatch(/^\d+$/);
    // Existing sessions still work.
    expect((await get(seedUrl(s.url, { name: "a2", message: "still here" }))).status).toBe(200);
  });

  it("cuts a client that never finishes its headers", async () => {
    const s = await start({ headersTimeoutMs: 300 });
    const started = performance.now();
    const raw = await rawRequest(s.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 5000);
    // Cut by the server (300 ms), not by the reader's own 5 s limit.
    expect(performance.now() - started).toBeLessThan(4000);
    expect([0, 408]).toContain(statusOf(raw));
    expect((await get(`${s.url}/healthz`)).text).toBe("ok\n");
  });
});

describe("slow and idle connections", () => {
  it("cuts a client that never sends the body it announced", async () => {
    const s = await start({ requestTimeoutMs: 300 });
    const started = performance.now();
    const raw = await rawRequest(
      s.port,
      "POST /api/join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{",
      5000,
    );
    // Cut by the server (300 ms), not by the reader's own 5 s limit.
    expect(performance.now() - started).toBeLessThan(4000);
    expect([0, 408]).toContain(statusOf(raw));
    expect(s.chat.hub.sessionCount).toBe(0);
  });

  it("closes an idle keep-alive connection", async () => {
    const s = await start({ keepAliveTimeoutMs: 200 });
    const started = performance.now();
    const raw = await rawRequest(s.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 5000);
    expect(statusOf(raw)).toBe(200);
    // Closed by the server (200 ms), not by the reader's own 5 s limit.
    expect(performance.now() - started).toBeLessThan(4000);
  });
});

describe("random input", () => {
  const KEYS = ["name", "message", "room", "cursor", "timeout", "format", "txn", "before", "limit", "__proto__", "constructor", "_", ""];
  const VALUES = [
    "alice", "bob", "Bob", "__proto__", "constructor", "json", "text", "0", "-1", "1e3", "99999999999999999999", "4500",
    "%", "%zz", "%C3%28", "%00", "%0d%0a", "@alice hi", "@nobody x", "/join x", "/join", "/who", "/leave", "/rooms", "",
    "x".repeat(40),
  ];
  const rawChar = fc.mapToConstant(
    { num: 94, build: (v) => String.fromCharCode(0x21 + v) }, // printable ASCII, no space
    { num: 4, build: (v) => ["%", "&", "=", "+"][v]! },
  );
  const value = fc.oneof(
    fc.constantFrom(...VALUES).map((v) => v.replace(/ /g, "+")),
    fc.string({ unit: rawChar, maxLength: 20 }),
    fc.string({ unit: "binary", maxLength: 12 }).map(encodeURIComponent),
  );
  const part = fc.tuple(fc.oneof(fc.constantFrom(...KEYS), fc.string({ unit: rawChar, maxLength: 6 })), value, fc.boolean());
  const query = fc.array(part, { maxLength: 6 }).map((parts) => parts.map(([k, v, eq]) => (eq ? `${k}=${v}` : k)).join("&"));
  const getCase = fc.record({
    kind: fc.constant("get" as const),
    path: fc.constantFrom("/", "/", "/", "/api/poll", "/api/rooms/lobby/messages", "/api/rooms", "/healthz", "/api/events", "/x"),
    query,
    accept: fc.constantFrom(undefined, "application/json", "text/plain", "*/*"),
  });
  const bodyValue = fc.oneof(
    fc.json({ maxDepth: 2 }),
    fc.record(
      {
        name: fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 40 }), fc.integer(), fc.constant(null)),
        room: fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 40 }), fc.array(fc.string())),
        text: fc.oneof(fc.constantFrom(...VALUES), fc.string({ unit: "binary", maxLength: 60 }), fc.boolean()),
        to: fc.constantFrom(...VALUES),
        txn: fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 200 })),
      },
      { requiredKeys: [] },
    ).map((o) => JSON.stringify(o)),
    fc.string({ unit: "binary", maxLength: 80 }),
  );
  const postCase = fc.record({
    kind: fc.constant("post" as const),
    path: fc.constantFrom("/api/join", "/api/messages", "/api/leave", "/api/poll", "/api/rooms", "/", "/api/rooms/x/messages"),
    query,
    body: bodyValue,
    contentType: fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", undefined),
    auth: fc.constantFrom("none", "valid", "garbage", "basic"),
  });

  it("leaves the server serving after 1000 random query strings and bodies", { timeout: 60_000 }, async () => {
    const before = prototypeSnapshot();
    // Polls answer at once, so random input cannot hold connections open.
    const s = await start({ pollTimeoutMs: 0, maxPollTimeoutMs: 0, rate: 1000 });
    const owner = await joinApi(s.url, "owner", "vault");
    // The fuzzer's own token, so random bodies reach the handlers behind authentication.
    const fuzzer = await joinApi(s.url, "fuzzer");
    const cases = fc.sample(fc.oneof(getCase, postCase), { seed: 20240601, numRuns: 1000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();

    const send = (c: (typeof cases)[number]): Promise<number> =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string> = {};
        if (c.kind === "get" && c.accept) headers["accept"] = c.accept;
        if (c.kind === "post") {
          if (c.contentType) headers["content-type"] = c.contentType;
          if (c.auth === "valid") headers["authorization"] = fuzzer.auth.authorization!;
          if (c.auth === "garbage") headers["authorization"] = "Bearer ###";
          if (c.auth === "basic") headers["authorization"] = "Basic YTpi";
        }
        const req = request({
          host: "127.0.0.1",
          port: s.port,
          method: c.kind === "get" ? "GET" : "POST",
          path: `${c.path}?${c.query}`,
          headers,
          agent,
          timeout: 5000,
        });
        req.on("timeout", () => req.destroy(new Error(`no answer: ${c.path}?${c.query}`)));
        req.on("error", reject);
        req.on("response", (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        });
        req.end(c.kind === "post" ? c.body : undefined);
      });

    let next = 0;
    const workers = Array.from({ length: 8 }, async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        let status: number;
        try {
          status = await send(c);
        } catch (error) {
          throw new Error(`${JSON.stringify(c)}: ${(error as Error).message}`);
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        expect(status, JSON.stringify(c)).toBeLessThan(500);
      }
    });
    await Promise.all(workers);
    agent.destroy();

    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(1000);
    // The generator reaches both sides: accepted requests and refused ones.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(50);
    expect([...statuses.keys()].filter((k) => k >= 400).length).toBeGreaterThan(3);

    expect((await get(`${s.url}/healthz`)).text).toBe("ok\n");
    expect(prototypeSnapshot()).toBe(before);
    // Still serving: a post reaches a poll.
    const cursor = (await seedPollJson(s.url, "after1", { cursor: 0, timeout: 0, room: "fresh" })).cursor;
    await seedPost(s.url, "after2", "still works", { room: "fresh" });
    const r = await seedPollJson(s.url, "after1", { cursor, timeout: 0 });
    expect(r.messages.map((m) => m.text)).toContain("still works");
    // The token-holder's room was touched by no one else.
    const own = await apiPoll(s.url, owner.auth, { cursor: owner.cursor, timeout: 0 });
    expect(own.messages.filter((m) => m.from !== "owner")).toEqual([]);
  });
});
