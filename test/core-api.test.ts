import { describe, expect, it } from "vitest";
import { joinApi, postJson, serverPerTest } from "./helpers.js";
import { apiPoll, get, nextRequest, seedPost, seedUrl } from "./core-helpers.js";

/** The JSON API, /api (spec §4), without SSE. */

const start = serverPerTest();

const ERROR_SHAPE = { error: { code: expect.any(String), message: expect.any(String) } };

describe("POST /api/join", () => {
  it("answers token, name, room, cursor and members, and sets an HttpOnly SameSite=Strict cookie", async () => {
    const s = await start();
    await seedPost(s.url, "alice", "hi");
    const r = await postJson(`${s.url}/api/join`, { name: "Dave" });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      token: expect.stringMatching(/^[A-Za-z0-9_-]{20,}$/),
      name: "Dave",
      room: "lobby",
      cursor: expect.any(Number),
      members: ["alice", "Dave"],
    });
    const cookie = r.headers.get("set-cookie")!;
    expect(cookie).toContain(`=${r.body.token}`);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
  });

  it("joins one more room with a valid token", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    const r = await postJson(`${s.url}/api/join`, { name: "dave", room: "Dev" }, dave.auth);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token: dave.token, name: "dave", room: "dev", members: ["dave"] });
    const rooms = await (await fetch(`${s.url}/api/rooms`)).json();
    expect(rooms).toEqual({
      rooms: [
        { name: "dev", members: 1 },
        { name: "lobby", members: 1 },
      ],
    });
  });

  it("answers 409 name_taken for a name in use, whatever its case", async () => {
    const s = await start();
    await joinApi(s.url, "dave");
    const again = await postJson(`${s.url}/api/join`, { name: "DAVE" });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: { code: "name_taken", message: expect.any(String) } });
    // A name used only through / is in use too.
    await seedPost(s.url, "erin", "hi");
    const erin = await postJson(`${s.url}/api/join`, { name: "erin" });
    expect(erin.status).toBe(409);
  });

  it("refuses bad bodies with the JSON error shape", async () => {
    const s = await start();
    const cases: [RequestInit, number, string][] = [
      [{ body: "{not json", headers: { "content-type": "application/json" } }, 400, "bad_json"],
      [{ body: "[1,2]", headers: { "content-type": "application/json" } }, 400, "bad_json"],
      [{ body: '"x"', headers: { "content-type": "application/json" } }, 400, "bad_json"],
      [{ body: '{"name":"x"}', headers: { "content-type": "text/plain" } }, 415, "unsupported_media_type"],
      [{ body: "{}", headers: { "content-type": "application/json" } }, 400, "missing_parameter"],
      [{ body: '{"name":5}', headers: { "content-type": "application/json" } }, 400, "bad_request"],
      [{ body: '{"name":"ok","room":"no room"}', headers: { "content-type": "application/json" } }, 400, "invalid_room"],
      [{ body: Buffer.from([0x7b, 0xff, 0x7d]), headers: { "content-type": "application/json" } }, 400, "bad_encoding"],
    ];
    for (const [init, status, code] of cases) {
      const res = await fetch(`${s.url}/api/join`, { method: "POST", ...init });
      const body = await res.json();
      expect(res.status, code).toBe(status);
      expect(body).toEqual({ error: { code, message: expect.any(String) } });
    }
    expect(s.chat.hub.sessionCount).toBe(0);
  });
});

describe("posting and polling with a token", () => {
  it("posts with the cookie (201 {id}) and polls with Bearer", async () => {
    const s = await start();
    const join = await fetch(`${s.url}/api/join`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "dave" }),
    });
    const { token, cursor } = (await join.json()) as { token: string; cursor: number };
    const cookie = join.headers.get("set-cookie")!.split(";")[0]!;
    const post = await postJson(`${s.url}/api/messages`, { text: "hello" }, { cookie });
    expect(post.status).toBe(201);
    expect(post.body).toEqual({ id: expect.any(Number) });
    const poll = await apiPoll(s.url, { authorization: `Bearer ${token}` }, { cursor, timeout: 0 });
    expect(poll.status).toBe(200);
    expect(poll.headers.get("cache-control")).toBe("no-store");
    expect(poll.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(poll.messages.map((m) => [m.type, m.from, m.text])).toEqual([
      ["join", "dave", ""],
      ["message", "dave", "hello"],
    ]);
    expect(poll.cursor).toBe(post.body.id);
    expect(poll.headers.get("x-cursor")).toBe(String(post.body.id));
  });

  it("holds an API poll until a message arrives", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    await seedPost(s.url, "alice", "first");
    const dave = await joinApi(s.url, "dave");
    const first = await apiPoll(s.url, dave.auth, { cursor: dave.cursor, timeout: 0 });
    const held = nextRequest(s);
    const poll = apiPoll(s.url, dave.auth, { cursor: first.cursor });
    await held;
    const started = performance.now();
    await seedPost(s.url, "alice", "wake up");
    const r = await poll;
    // Woken by the post, not ended by the 10 s timeout (3 s: room for a busy machine).
    expect(performance.now() - started).toBeLessThan(3000);
    expect(r.messages.map((m) => [m.from, m.text])).toEqual([["alice", "wake up"]]);
  });

  it("sends a private message with `to` only to its target", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    const erin = await joinApi(s.url, "erin");
    const finn = await joinApi(s.url, "finn");
    const r = await postJson(`${s.url}/api/messages`, { text: "secret", to: "erin" }, dave.auth);
    expect(r.status).toBe(201);
    const e = await apiPoll(s.url, erin.auth, { cursor: erin.cursor, timeout: 0 });
    expect(e.messages.find((m) => m.type === "private")).toMatchObject({ from: "dave", to: "erin", text: "secret", room: "lobby" });
    const f = await apiPoll(s.url, finn.auth, { cursor: finn.cursor, timeout: 0 });
    expect(f.messages.map((m) => m.type)).not.toContain("private");
    const d = await apiPoll(s.url, dave.auth, { cursor: dave.cursor, timeout: 0 });
    expect(d.messages.filter((m) => m.type === "private")).toHaveLength(1);
    const nobody = await postJson(`${s.url}/api/messages`, { text: "x", to: "nobody" }, dave.auth);
    expect(nobody.status).toBe(404);
    expect(nobody.body.error.code).toBe("unknown_recipient");
  });

  it("answers 403 not_in_room for a post to a room the session is not in", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    const r = await postJson(`${s.url}/api/messages`, { text: "x", room: "elsewhere" }, dave.auth);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("not_in_room");
  });

  it("answers 401 without a token, or with a wrong one", async () => {
    const s = await start();
    await joinApi(s.url, "dave");
    const none = await postJson(`${s.url}/api/messages`, { text: "x" });
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
    const wrong = await postJson(`${s.url}/api/messages`, { text: "x" }, { authorization: "Bearer nope" });
    expect(wrong.status).toBe(401);
    const poll = await fetch(`${s.url}/api/poll?timeout=0`, { headers: { cookie: "pollchat_token=forged" } });
    expect(poll.status).toBe(401);
    expect(await poll.json()).toEqual(ERROR_SHAPE);
  });

  it("works through /api commands: /who and /rooms answer the asker", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    await joinApi(s.url, "erin");
    await postJson(`${s.url}/api/messages`, { text: "/who" }, dave.auth);
    await postJson(`${s.url}/api/messages`, { text: "/rooms" }, dave.auth);
    const r = await apiPoll(s.url, dave.auth, { cursor: dave.cursor, timeout: 0 });
    expect(r.messages.filter((m) => m.type === "system").map((m) => m.text)).toEqual([
      "members of lobby: dave, erin",
      "rooms: lobby (2)",
    ]);
  });
});

describe("name protection", () => {
  it("a token-claimed name cannot be polled or posted as by anyone else", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    const cases = [
      seedUrl(s.url, { name: "dave", timeout: 0 }),
      seedUrl(s.url, { name: "DAVE", timeout: 0 }),
      seedUrl(s.url, { name: "dave", message: "I am dave" }),
    ];
    for (const url of cases) {
      expect((await get(url)).status, url).toBe(401);
      expect((await get(url, { authorization: "Bearer someone-else" })).status, url).toBe(401);
    }
    const json = await get(seedUrl(s.url, { name: "dave", message: "x", format: "json" }));
    expect(json.status).toBe(401);
    expect(JSON.parse(json.text).error.code).toBe("unauthorized");
    const joinAs = await postJson(`${s.url}/api/join`, { name: "dave" });
    expect(joinAs.status).toBe(409);
    // Nothing reached dave's queue or the room from those attempts.
    const r = await apiPoll(s.url, dave.auth, { cursor: dave.cursor, timeout: 0 });
    expect(r.messages.map((m) => m.type)).toEqual(["join"]);
    // With its token, the name works through / too.
    const own = await get(seedUrl(s.url, { name: "dave", message: "really me" }), dave.auth);
    expect(own.status).toBe(200);
  });

  it("a name used only through / stays open, like the seed", async () => {
    const s = await start();
    await seedPost(s.url, "open", "one");
    await seedPost(s.url, "open", "two");
    expect((await get(seedUrl(s.url, { name: "open", timeout: 0 }))).status).toBe(200);
  });
});

describe("POST /api/leave", () => {
  it("leaves one room, and with no room ends the session and frees the name", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    const erin = await joinApi(s.url, "erin");
    await postJson(`${s.url}/api/join`, { name: "dave", room: "dev" }, dave.auth);
    const one = await postJson(`${s.url}/api/leave`, { room: "dev" }, dave.auth);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ rooms: ["lobby"] });
    expect((await fetch(`${s.url}/api/rooms/dev`)).status).toBe(404);
    const notIn = await postJson(`${s.url}/api/leave`, { room: "dev" }, dave.auth);
    expect(notIn.status).toBe(403);

    const all = await postJson(`${s.url}/api/leave`, {}, dave.auth);
    expect(all.status).toBe(200);
    expect(all.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    const e = await apiPoll(s.url, erin.auth, { cursor: erin.cursor, timeout: 0 });
    expect(e.messages.map((m) => [m.type, m.from])).toEqual([
      ["join", "erin"],
      ["leave", "dave"],
    ]);
    // The old token is dead; the name is free.
    expect((await postJson(`${s.url}/api/messages`, { text: "x" }, dave.auth)).status).toBe(401);
    expect((await postJson(`${s.url}/api/join`, { name: "dave" })).status).toBe(200);
  });

  it("answers a held poll of the session that ends", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    const dave = await joinApi(s.url, "dave");
    const first = await apiPoll(s.url, dave.auth, { cursor: dave.cursor, timeout: 0 });
    const held = nextRequest(s);
    const poll = apiPoll(s.url, dave.auth, { cursor: first.cursor });
    await held;
    await postJson(`${s.url}/api/leave`, {}, dave.auth);
    const r = await poll;
    expect(r.status).toBe(200);
    expect(r.messages.map((m) => m.type)).toEqual(["leave"]);
  });
});

describe("rooms", () => {
  it("lists rooms and their members", async () => {
    const s = await start();
    await joinApi(s.url, "dave");
    await joinApi(s.url, "erin", "dev");
    await seedPost(s.url, "Finn", "hi");
    const rooms = await (await fetch(`${s.url}/api/rooms`)).json();
    expect(rooms).toEqual({
      rooms: [
        { name: "dev", members: 1 },
        { name: "lobby", members: 2 },
      ],
    });
    const lobby = await fetch(`${s.url}/api/rooms/LOBBY`);
    expect(await lobby.json()).toEqual({ name: "lobby", members: ["dave", "Finn"] });
    const missing = await fetch(`${s.url}/api/rooms/nowhere`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: "unknown_room", message: expect.any(String) } });
    const bad = await fetch(`${s.url}/api/rooms/bad%20room`);
    expect(bad.status).toBe(400);
    await bad.text();
  });

  it("pages room history with before and limit, newest last, without private messages", async () => {
    const s = await start({ rate: 1000 });
    const dave = await joinApi(s.url, "dave");
    await joinApi(s.url, "erin");
    const ids: number[] = [];
    for (let i = 1; i <= 7; i++) {
      const r = await postJson(`${s.url}/api/messages`, { text: `m${i}` }, dave.auth);
      ids.push(r.body.id);
      await postJson(`${s.url}/api/messages`, { text: `secret ${i}`, to: "erin" }, dave.auth);
    }
    await postJson(`${s.url}/api/messages`, { text: "/who" }, dave.auth);
    const page = async (qs: string) => {
      const res = await fetch(`${s.url}/api/rooms/lobby/messages${qs}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { messages: { id: number; type: string; text: string }[] }).messages;
    };
    const all = await page("?limit=100");
    expect(all.map((m) => m.type)).not.toContain("private");
    expect(all.map((m) => m.type)).not.toContain("system");
    expect(all.filter((m) => m.type === "message").map((m) => m.text)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
    const last3 = await page("?limit=3");
    expect(last3.map((m) => m.text)).toEqual(["m5", "m6", "m7"]);
    const before = await page(`?before=${ids[4]}&limit=3`);
    expect(before.map((m) => m.text)).toEqual(["m2", "m3", "m4"]);
    const older = await page(`?before=${before[0]!.id}&limit=3`);
    expect(older.map((m) => m.type)).toEqual(["join", "join", "message"]);
    expect(older[2]!.text).toBe("m1");
    const bad = await fetch(`${s.url}/api/rooms/lobby/messages?limit=x`);
    expect(bad.status).toBe(400);
    await bad.text();
  });

  it("needs a token for room listings under --require-token", async () => {
    const s = await start({ requireToken: true });
    expect((await fetch(`${s.url}/api/rooms`)).status).toBe(401);
    const dave = await joinApi(s.url, "dave");
    const ok = await fetch(`${s.url}/api/rooms`, { headers: dave.auth });
    expect(ok.status).toBe(200);
    await ok.text();
  });
});

describe("--require-token", () => {
  it("makes every client join through /api/join first", async () => {
    const s = await start({ requireToken: true });
    const anon = await get(seedUrl(s.url, { name: "anon", timeout: 0 }));
    expect(anon.status).toBe(401);
    const anonPost = await get(seedUrl(s.url, { name: "anon", message: "hi" }));
    expect(anonPost.status).toBe(401);
    expect(s.chat.hub.sessionCount).toBe(0);
    const dave = await joinApi(s.url, "dave");
    const post = await get(seedUrl(s.url, { name: "dave", message: "hi" }), dave.auth);
    expect(post.status).toBe(200);
    const poll = await get(seedUrl(s.url, { name: "dave", cursor: dave.cursor, timeout: 0 }), dave.auth);
    expect(poll.text).toBe("* dave joined lobby\ndave : hi\n");
  });
});

describe("CORS", () => {
  it("sends no CORS headers without --cors-origin", async () => {
    const s = await start();
    const r = await fetch(`${s.url}/api/rooms`, { headers: { origin: "http://elsewhere.example" } });
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
    await r.text();
  });

  it("allows the one origin of --cors-origin and answers its preflight", async () => {
    const s = await start({ corsOrigin: "http://app.example" });
    const pre = await fetch(`${s.url}/api/messages`, {
      method: "OPTIONS",
      headers: { origin: "http://app.example", "access-control-request-method": "POST" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("http://app.example");
    expect(pre.headers.get("access-control-allow-methods")).toMatch(/POST/);
    const r = await fetch(`${s.url}/api/rooms`, { headers: { origin: "http://app.example" } });
    expect(r.headers.get("access-control-allow-origin")).toBe("http://app.example");
    await r.text();
  });
});

describe("unknown paths and methods", () => {
  it("answers 404 for an unknown /api path and 405 with Allow for a wrong method", async () => {
    const s = await start();
    const missing = await fetch(`${s.url}/api/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: "not_found", message: expect.any(String) } });
    const cases: [string, string, string][] = [
      ["GET", "/api/join", "POST"],
      ["GET", "/api/messages", "POST"],
      ["POST", "/api/poll", "GET"],
      ["DELETE", "/api/rooms", "GET"],
      ["PUT", "/api/leave", "POST"],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(`${s.url}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get("allow")).toBe(allow);
      expect(await res.json()).toEqual({ error: { code: "method_not_allowed", message: expect.any(String) } });
    }
  });
});
