import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { serverPerTest } from "./helpers.js";
import { get, nextRequest, rawRequest, seedPollJson, seedPost, seedUrl, statusOf } from "./core-helpers.js";

/** The seed endpoint `/` (spec §1, §3). */

const start = serverPerTest();

/** Registers a name and drains its queue; returns the cursor to poll from. */
async function register(base: string, name: string): Promise<number> {
  const r = await get(seedUrl(base, { name, timeout: 0, cursor: 0 }));
  expect(r.status).toBe(200);
  return Number(r.headers.get("x-cursor"));
}

describe("seed long-poll", () => {
  it("releases a held poll as soon as another client posts", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    await register(s.url, "alice");
    const cursor = await register(s.url, "bob");
    const held = nextRequest(s);
    const poll = fetch(seedUrl(s.url, { name: "bob", cursor }));
    await held; // the poll is now waiting on the hub
    expect(s.chat.hub.session("bob")!.presenceHolds).toBe(1);
    const started = performance.now();
    const id = await seedPost(s.url, "alice", "hi bob");
    const res = await poll;
    const elapsed = performance.now() - started;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("alice : hi bob\n");
    expect(res.headers.get("x-cursor")).toBe(String(id));
    // Released by the post, not by the 10 s timer (3 s: room for a busy machine, far from 10).
    expect(elapsed).toBeLessThan(3000);
  });

  it("answers a held poll with everything one request published: a new poster's join and its message", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    const cursor = await register(s.url, "bob");
    const held = nextRequest(s);
    const poll = fetch(seedUrl(s.url, { name: "bob", cursor }));
    await held;
    await seedPost(s.url, "alice", "hi bob");
    expect(await (await poll).text()).toBe("* alice joined lobby\nalice : hi bob\n");
  });

  it("keeps the seed's jQuery client working: $.param encoding, message before name, its 5 s ajax timeout", async () => {
    // The URLs the seed's Socket.prototype.send and _poll produce with $.ajax({type: "GET", data}).
    const s = await start({ pollTimeoutMs: undefined, corsOrigin: "http://chat.example" });
    const headers = { Origin: "http://chat.example", Accept: "*/*", "X-Requested-With": "XMLHttpRequest" };
    const first = await fetch(`${s.url}/?name=Raynos`, { headers });
    expect(first.status).toBe(200);
    expect(first.headers.get("access-control-allow-origin")).toBe("http://chat.example");
    await first.text();
    const held = nextRequest(s);
    const poll = fetch(`${s.url}/?name=Raynos`, { headers, signal: AbortSignal.timeout(5000) });
    await held;
    const sent = await fetch(`${s.url}/?message=Hello+world%21&name=Raynos`, { headers });
    expect(await sent.text()).toMatch(/^ok \d+\n$/);
    expect(await (await poll).text()).toBe("Raynos : Hello world!\n");
  });

  it("answers at once when messages are already queued", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    const cursor = await register(s.url, "bob");
    await seedPost(s.url, "alice", "one");
    const started = performance.now();
    const r = await get(seedUrl(s.url, { name: "bob", cursor }));
    // At once, not after the 10 s timeout (3 s: room for a busy machine).
    expect(performance.now() - started).toBeLessThan(3000);
    expect(r.text).toBe("* alice joined lobby\nalice : one\n");
  });

  it("ends an idle poll after the default 4.5 s with 200 and an empty body", { timeout: 15_000 }, async () => {
    // pollTimeoutMs: undefined falls back to the spec's default of 4500 ms.
    const s = await start({ pollTimeoutMs: undefined });
    expect(s.chat.options.pollTimeoutMs).toBe(4500);
    const cursor = await register(s.url, "bob");
    const started = performance.now();
    const r = await get(seedUrl(s.url, { name: "bob", cursor }));
    const elapsed = performance.now() - started;
    expect(r.status).toBe(200);
    expect(r.text).toBe("");
    expect(elapsed).toBeGreaterThanOrEqual(4400);
    // Ended at 4.5 s, not held longer (room for a busy machine).
    expect(elapsed).toBeLessThan(7500);
  });

  it("timeout=0 answers at once, even when empty", async () => {
    const s = await start({ pollTimeoutMs: 10_000 });
    const cursor = await register(s.url, "bob");
    const started = performance.now();
    const r = await get(seedUrl(s.url, { name: "bob", cursor, timeout: 0 }));
    // At once, not after the 10 s default (3 s: room for a busy machine).
    expect(performance.now() - started).toBeLessThan(3000);
    expect(r.status).toBe(200);
    expect(r.text).toBe("");
    expect(r.headers.get("x-cursor")).toMatch(/^\d+$/);
  });

  it("clamps a timeout above the maximum instead of refusing it", async () => {
    const s = await start({ pollTimeoutMs: 100, maxPollTimeoutMs: 300 });
    const cursor = await register(s.url, "bob");
    for (const timeout of ["999999", "99999999999999999999"]) {
      const started = performance.now();
      const r = await get(seedUrl(s.url, { name: "bob", cursor, timeout }));
      const elapsed = performance.now() - started;
      expect(r.status, timeout).toBe(200);
      expect(r.text).toBe("");
      expect(elapsed).toBeGreaterThanOrEqual(250);
      // Clamped to 300 ms, not held for the timeout asked (room for a busy machine).
      expect(elapsed).toBeLessThan(3000);
    }
  }, 15_000);

  it("accepts timeout=30001 with the default maximum of 30000 (held, then released by a post)", async () => {
    const s = await start();
    expect(s.chat.options.maxPollTimeoutMs).toBe(30_000);
    const cursor = await register(s.url, "bob");
    const held = nextRequest(s);
    const poll = get(seedUrl(s.url, { name: "bob", cursor, timeout: 30_001 }));
    await held;
    await seedPost(s.url, "bob", "to myself");
    const r = await poll;
    expect(r.status).toBe(200);
    expect(r.text).toBe("bob : to myself\n");
  });

  it("refuses a timeout that is not a whole number", async () => {
    const s = await start();
    for (const timeout of ["abc", "1.5", "", "-"]) {
      const r = await get(seedUrl(s.url, { name: "bob", timeout }));
      expect(r.status, timeout).toBe(400);
      expect(r.text).toMatch(/^error invalid_timeout: /);
    }
  });
});

describe("seed text lines", () => {
  it("writes messages, private messages and presence in the seed's line forms", async () => {
    const s = await start();
    const aliceCursor = await register(s.url, "alice");
    const bobCursor = await register(s.url, "bob");
    await seedPost(s.url, "alice", "hi");
    await seedPost(s.url, "alice", "@bob psst");
    await seedPost(s.url, "alice", "/leave");
    const bob = await get(seedUrl(s.url, { name: "bob", cursor: bobCursor, timeout: 0 }));
    expect(bob.text).toBe("alice : hi\nalice -> bob : psst\n* alice left lobby\n");
    const alice = await get(seedUrl(s.url, { name: "alice", cursor: aliceCursor, timeout: 0 }));
    expect(alice.text).toBe("* bob joined lobby\nalice : hi\nalice -> bob : psst\n* alice left lobby\n* you left lobby\n");
    expect(alice.headers.get("content-type")).toBe("text/plain; charset=utf-8");
  });

  it("writes CR and LF inside a text as \\n, so no message forges a line", async () => {
    const s = await start();
    const cursor = await register(s.url, "bob");
    await seedPost(s.url, "alice", "a\r\nb\nc\rd");
    await seedPost(s.url, "alice", "hi\nbob : I am bob\n* carol joined lobby");
    const r = await get(seedUrl(s.url, { name: "bob", cursor, timeout: 0 }));
    const lines = r.text.split("\n");
    expect(lines).toEqual([
      "* alice joined lobby",
      "alice : a\\nb\\nc\\nd",
      "alice : hi\\nbob : I am bob\\n* carol joined lobby",
      "",
    ]);
  });

  it("answers a post with `ok <id>` and sets X-Cursor to the last id of a poll answer", async () => {
    const s = await start();
    const cursor = await register(s.url, "bob");
    const r1 = await get(seedUrl(s.url, { name: "alice", message: "one" }));
    expect(r1.status).toBe(200);
    expect(r1.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(r1.text).toMatch(/^ok \d+\n$/);
    const second = await seedPost(s.url, "alice", "two");
    expect(second).toBeGreaterThan(Number(r1.text.slice(3)));
    const r = await get(seedUrl(s.url, { name: "bob", cursor, timeout: 0 }));
    expect(r.headers.get("x-cursor")).toBe(String(second));
    // Acknowledged by cursor, the next answer holds only what is newer.
    const again = await get(seedUrl(s.url, { name: "bob", cursor: second, timeout: 0 }));
    expect(again.text).toBe("");
  });

  it("answers the JSON poll body for format=json and for Accept: application/json", async () => {
    const s = await start();
    const cursor = await register(s.url, "bob");
    const id = await seedPost(s.url, "alice", "hi");
    const a = await seedPollJson(s.url, "bob", { cursor, timeout: 0 });
    expect(a.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(a.messages.map((m) => [m.type, m.from, m.text])).toEqual([
      ["join", "alice", ""],
      ["message", "alice", "hi"],
    ]);
    expect(a.messages[1]).toMatchObject({ id, type: "message", room: "lobby", from: "alice", text: "hi" });
    expect(typeof a.messages[1]!.ts).toBe("number");
    expect(a.cursor).toBe(id);
    expect(a.headers.get("x-cursor")).toBe(String(id));

    const res = await fetch(seedUrl(s.url, { name: "bob", cursor, timeout: 0 }), { headers: { accept: "application/json" } });
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const body = (await res.json()) as { messages: unknown[]; cursor: number };
    expect(body.messages).toHaveLength(2);
    expect(body.cursor).toBe(id);

    // A post asked for as JSON answers {"id"}.
    const post = await fetch(seedUrl(s.url, { name: "alice", message: "x", format: "json" }));
    expect(await post.json()).toEqual({ id: expect.any(Number) });
  });

  it("marks poll answers Cache-Control: no-store", async () => {
    const s = await start();
    const text = await get(seedUrl(s.url, { name: "bob", timeout: 0 }));
    expect(text.headers.get("cache-control")).toBe("no-store");
    const json = await seedPollJson(s.url, "bob", { timeout: 0 });
    expect(json.headers.get("cache-control")).toBe("no-store");
  });

  it("answers seed errors as a text line with the table's status", async () => {
    const s = await start();
    const r = await get(`${s.url}/?name=${"x".repeat(33)}`);
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/^error invalid_name: .+\n$/);
    const json = await get(`${s.url}/?name=&format=json`);
    expect(json.status).toBe(400);
    expect(JSON.parse(json.text)).toEqual({ error: { code: "invalid_name", message: expect.any(String) } });
  });

  it("ignores unknown parameters and refuses a parameter it reads given twice", async () => {
    const s = await start();
    const ok = await get(`${s.url}/?name=bob&timeout=0&_=12345&foo=bar`);
    expect(ok.status).toBe(200);
    const twice = await get(`${s.url}/?name=bob&name=eve&timeout=0`);
    expect(twice.status).toBe(400);
    expect(twice.text).toMatch(/^error repeated_parameter/);
  });
});

describe("commands and private messages through /", () => {
  it("answers /who, /rooms, /join and /leave to the asker only", async () => {
    const s = await start();
    const bobCursor = await register(s.url, "bob");
    const aliceCursor = await register(s.url, "alice");
    await seedPost(s.url, "alice", "/who");
    await seedPost(s.url, "alice", "/rooms");
    await seedPost(s.url, "alice", "/join Side");
    await seedPost(s.url, "alice", "/who");
    await seedPost(s.url, "alice", "/rooms");
    await seedPost(s.url, "alice", "/leave");
    await seedPost(s.url, "alice", "/nope");
    const alice = await get(seedUrl(s.url, { name: "alice", cursor: aliceCursor, timeout: 0 }));
    expect(alice.text.split("\n")).toEqual([
      "* members of lobby: alice, bob",
      "* rooms: lobby (2)",
      "* alice joined side",
      "* you are in side",
      "* members of side: alice",
      "* rooms: lobby (2), side (1)",
      "* alice left side",
      "* you left side",
      expect.stringMatching(/^\* unknown command \/nope/),
      "",
    ]);
    // bob saw none of the answers, and alice stayed in the lobby throughout.
    const bob = await get(seedUrl(s.url, { name: "bob", cursor: bobCursor, timeout: 0 }));
    expect(bob.text).toBe("* alice joined lobby\n");
  });

  it("delivers @name only to its target (and a copy to the sender)", async () => {
    const s = await start();
    const carol = await register(s.url, "carol");
    const bob = await register(s.url, "bob");
    const alice = await register(s.url, "alice");
    await seedPost(s.url, "alice", "@BOB just you");
    await seedPost(s.url, "alice", "everyone");
    const b = await get(seedUrl(s.url, { name: "bob", cursor: bob, timeout: 0 }));
    expect(b.text).toBe("* alice joined lobby\nalice -> bob : just you\nalice : everyone\n");
    const a = await get(seedUrl(s.url, { name: "alice", cursor: alice, timeout: 0 }));
    expect(a.text).toBe("alice -> bob : just you\nalice : everyone\n");
    const c = await get(seedUrl(s.url, { name: "carol", cursor: carol, timeout: 0 }));
    expect(c.text).toBe("* bob joined lobby\n* alice joined lobby\nalice : everyone\n");
    // An unknown recipient is an error, not a silent drop.
    const r = await get(seedUrl(s.url, { name: "alice", message: "@nobody hello" }));
    expect(r.status).toBe(404);
    expect(r.text).toMatch(/^error unknown_recipient/);
  });

  it("posts into the room named by room= (joining it, the seed's way)", async () => {
    const s = await start();
    const bob = await register(s.url, "bob");
    const id = await seedPost(s.url, "alice", "in dev", { room: "dev" });
    const dev = await get(seedUrl(s.url, { name: "bob", room: "dev", cursor: bob, timeout: 0 }));
    // bob joins dev with this poll: he sees his own join, not alice's earlier message.
    expect(dev.text).toBe("* bob joined dev\n");
    expect(s.chat.hub.room("dev")!.memberNames()).toEqual(["alice", "bob"]);
    const history = s.chat.hub.room("dev")!.history(Number.MAX_SAFE_INTEGER, 10).map((e) => e.id);
    expect(history).toContain(id);
  });
});

describe("GET / without a name: the page", () => {
  it("serves public/index.html as text/html", async () => {
    const s = await start();
    const expected = await readFile(new URL("../public/index.html", import.meta.url), "utf8");
    const r = await get(`${s.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(r.text).toBe(expected);
    const direct = await get(`${s.url}/index.html`);
    expect(direct.text).toBe(expected);
    const head = await fetch(`${s.url}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("never serves a file outside public/, however the path is spelled", async () => {
    const s = await start();
    const attempts = [
      "/../package.json",
      "/../../../../etc/passwd",
      "/%2e%2e/package.json",
      "/%2E%2E%2Fpackage.json",
      "/..%2fpackage.json",
      "/.%2e/.%2e/etc/passwd",
      "/%2e%2e%5cpackage.json",
      "/..\\package.json",
      "//etc/passwd",
      "/index.html%00.json",
      "/%c0%ae%c0%ae/package.json",
      "/public/../package.json",
      "/src/hub.ts",
      "/../src/hub.ts",
    ];
    for (const path of attempts) {
      const raw = await rawRequest(s.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      const status = statusOf(raw);
      expect([400, 404], `${path}: ${raw.slice(0, 80)}`).toContain(status);
      expect(raw).not.toMatch(/"devDependencies"|root:x:0|class Hub/);
    }
  });

  it("answers 404 for a missing file and 405 (with Allow) for a POST to /", async () => {
    const s = await start();
    const missing = await get(`${s.url}/nope.html`);
    expect(missing.status).toBe(404);
    const post = await fetch(`${s.url}/`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    await post.text();
    const seedPostMethod = await fetch(seedUrl(s.url, { name: "bob", message: "hi" }), { method: "POST" });
    expect(seedPostMethod.status).toBe(405);
    expect(seedPostMethod.headers.get("allow")).toBe("GET");
    await seedPostMethod.text();
  });
});

describe("/healthz", () => {
  it("answers 200 ok", async () => {
    const s = await start();
    const r = await get(`${s.url}/healthz`);
    expect(r.status).toBe(200);
    expect(r.text).toBe("ok\n");
    const del = await fetch(`${s.url}/healthz`, { method: "DELETE" });
    expect(del.status).toBe(405);
    expect(del.headers.get("allow")).toBe("GET, HEAD");
    await del.text();
  });
});
