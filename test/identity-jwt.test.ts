import { createHmac } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { get, seedUrl } from "./core-helpers.js";
import { parseCli, usage } from "../src/cli-options.js";
import { CLI, cliPerTest, ensureBuilt, postJson, serverPerTest, startServer, type TestServer } from "./helpers.js";
import { b64url, nowSeconds, SECRET, signJwt, signRaw, withSpareBits } from "./jwt-helpers.js";
import { LineClient, SseClient } from "./transport-clients.js";

/*
 * --jwt-secret (spec §4): a name is taken only with a valid JWT, on every
 * transport; every refusal is a 401 and leaves nothing behind.
 */

const start = serverPerTest();
const jwtServer = (): Promise<TestServer> => start({ jwtSecret: SECRET, tcpPort: 0 });

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const valid = (claims: Record<string, unknown> = {}): string => signJwt({ sub: "carol", iat: nowSeconds(), exp: nowSeconds() + 300, ...claims });

function signAlg(alg: string, hash: string, payload: Record<string, unknown>): string {
  const input = `${b64url(JSON.stringify({ alg, typ: "JWT" }))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${createHmac(hash, SECRET).update(input).digest("base64url")}`;
}

/** A valid token's payload re-spelled (same bytes, or the same JSON in standard base64), signed over the new spelling. */
function respelled(kind: "padding" | "spare bits" | "plus slash"): string {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  // 16 bytes of JSON: 22 characters, with spare bits and a need for padding; the "?>" makes standard base64 use + or /.
  const json = kind === "plus slash" ? JSON.stringify({ sub: "carol", x: "??>>??>>" }) : JSON.stringify({ sub: "carol1" });
  const payload = b64url(json);
  const spelled =
    kind === "padding" ? payload + "==" : kind === "spare bits" ? withSpareBits(payload)! : Buffer.from(json).toString("base64").replace(/=+$/, "");
  if (spelled === payload) throw new Error(`${kind}: spelled as canonical`);
  return signRaw(`${header}.${spelled}`);
}

/** Every refusal the spec names, each a token that must get 401 on every way in. */
const REFUSALS: readonly (readonly [string, () => string | undefined])[] = [
  ["no JWT at all", () => undefined],
  ["alg none, no signature", () => `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify({ sub: "carol" }))}.`],
  ["alg none, any signature", () => `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify({ sub: "carol" }))}.${b64url("sig")}`],
  ["another algorithm (HS512, signed with the secret)", () => signAlg("HS512", "sha512", { sub: "carol" })],
  ["another algorithm (HS384)", () => signAlg("HS384", "sha384", { sub: "carol" })],
  ["another algorithm (RS256 header, HS256 signature)", () => signAlg("RS256", "sha256", { sub: "carol" })],
  ["a bad signature (another secret)", () => signJwt({ sub: "carol" }, "another-secret-that-is-32-bytes-long")],
  ["a bad signature (payload swapped)", () => { const [h, , s] = valid().split("."); return `${h}.${b64url('{"sub":"mallory"}')}.${s}`; }],
  ["malformed (two segments)", () => valid().split(".").slice(0, 2).join(".")],
  ["malformed (four segments)", () => `${valid()}.${b64url("x")}`],
  ["malformed (header not JSON)", () => signRaw(`${b64url("nope")}.${b64url('{"sub":"carol"}')}`)],
  ["non-canonical base64url (padding)", () => respelled("padding")],
  ["non-canonical base64url (spare bits set)", () => respelled("spare bits")],
  ["non-canonical base64url (+ and /)", () => respelled("plus slash")],
  ["expired (exp)", () => valid({ exp: nowSeconds() - 120 })],
  ["not valid yet (nbf in the future)", () => valid({ nbf: nowSeconds() + 120 })],
  ["issued in the future (iat)", () => valid({ iat: nowSeconds() + 120 })],
  ["sub not a valid name", () => valid({ sub: "carol smith" })],
  ["sub missing", () => signJwt({ exp: nowSeconds() + 60 })],
  ["rooms not a list", () => valid({ rooms: "dev" })],
  ["rooms listing an invalid room", () => valid({ rooms: ["dev", "no such room!"] })],
  ["rooms an empty list", () => valid({ rooms: [] })],
];

/** Nothing was made: no session, no room (GET /api/rooms), no member. */
async function expectNothingCreated(server: TestServer): Promise<void> {
  expect(server.chat.hub.sessionCount).toBe(0);
  const rooms = await get(`${server.url}/api/rooms`);
  expect(JSON.parse(rooms.text)).toEqual({ rooms: [] });
}

async function tcpClient(server: TestServer): Promise<LineClient> {
  const client = new LineClient(server.tcpPort!);
  await client.waitFor((l) => l.startsWith("Send your token: /token T"), "the token prompt");
  return client;
}

describe("--jwt-secret: every refusal is 401 and creates nothing, on every way in", () => {
  const open: LineClient[] = [];
  afterEach(() => {
    for (const c of open.splice(0)) c.socket.destroy();
  });

  it.each(REFUSALS)("%s", async (_label, make) => {
    const server = await jwtServer();
    const token = make();
    const auth = token === undefined ? {} : bearer(token);
    // POST /api/join: in Authorization, and in the body.
    const header = await postJson(`${server.url}/api/join`, { name: "carol" }, auth);
    expect(header.status).toBe(401);
    expect(header.body.error.code).toBe("unauthorized");
    if (token !== undefined) expect((await postJson(`${server.url}/api/join`, { jwt: token })).status).toBe(401);
    // The seed endpoint: a poll, a poll with room=, a post.
    expect((await get(seedUrl(server.url, { name: "carol", timeout: 0 }), auth)).status).toBe(401);
    expect((await get(seedUrl(server.url, { name: "carol", room: "dev", timeout: 0 }), auth)).status).toBe(401);
    expect((await get(seedUrl(server.url, { name: "carol", message: "hi" }), auth)).status).toBe(401);
    // SSE.
    const sse = await fetch(`${server.url}/api/events`, { headers: auth });
    expect(sse.status).toBe(401);
    await sse.body?.cancel();
    // TCP: /token <jwt>, and a bare name.
    const tcp = await tcpClient(server);
    open.push(tcp);
    tcp.send(`/token ${token ?? ""}\n`);
    await tcp.waitFor((l) => l.startsWith("error unauthorized"), "the refusal");
    tcp.send("carol\n");
    await tcp.waitFor((l) => l.startsWith("error unauthorized: This server needs a token first"), "the bare name refused");
    await expectNothingCreated(server);
  });

  it("refuses a name other than the token's sub, on the API and the seed endpoint", async () => {
    const server = await jwtServer();
    const token = valid();
    expect((await postJson(`${server.url}/api/join`, { name: "dave" }, bearer(token))).status).toBe(401);
    expect((await postJson(`${server.url}/api/join`, { name: "dave", jwt: token })).status).toBe(401);
    expect((await get(seedUrl(server.url, { name: "dave", timeout: 0 }), bearer(token))).status).toBe(401);
    expect((await get(seedUrl(server.url, { name: "dave", message: "hi" }), bearer(token))).status).toBe(401);
    await expectNothingCreated(server);
  });

  it("refuses a secret shorter than 32 bytes", async () => {
    await expect(startServer({ jwtSecret: "short" })).rejects.toThrow(/at least 32 bytes/);
  });
});

describe("--jwt-secret: a valid JWT is the proof of a name", () => {
  it("joins with the JWT in Authorization or the body; the session token works as before", async () => {
    const server = await jwtServer();
    const joined = await postJson(`${server.url}/api/join`, {}, bearer(valid()));
    expect(joined.status).toBe(200);
    expect(joined.body).toMatchObject({ name: "carol", room: "lobby", members: ["carol"] });
    const auth = bearer(joined.body.token);
    expect((await postJson(`${server.url}/api/messages`, { text: "hello" }, auth)).status).toBe(201);
    const poll = await fetch(`${server.url}/api/poll?cursor=${joined.body.cursor}&timeout=0`, { headers: auth });
    expect(((await poll.json()) as { messages: { text: string }[] }).messages.map((m) => m.text)).toContain("hello");
    // The body's jwt, the name given (in another case) and equal to sub: the same session, one more room.
    const again = await postJson(`${server.url}/api/join`, { jwt: valid(), name: "Carol", room: "dev" });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ token: joined.body.token, name: "carol", room: "dev" });
    // The session token alone joins one more room of its own session, as before.
    expect((await postJson(`${server.url}/api/join`, { room: "ops" }, auth)).body).toMatchObject({ name: "carol", room: "ops" });
    expect(server.chat.hub.sessionCount).toBe(1);
  });

  it("a second device (a second valid JWT for the same sub) joins the same session, not 409", async () => {
    const server = await jwtServer();
    const first = await postJson(`${server.url}/api/join`, { name: "carol" }, bearer(valid()));
    const second = await postJson(`${server.url}/api/join`, { name: "carol" }, bearer(valid({ iat: nowSeconds() - 5, jti: "phone" })));
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body.token).toBe(first.body.token);
    expect(server.chat.hub.sessionCount).toBe(1);
    // A JWT-less claim of the name is 401, not 409: names come only from JWTs.
    expect((await postJson(`${server.url}/api/join`, { name: "carol" })).status).toBe(401);
    // The seed endpoint and SSE with a JWT are that session too.
    expect((await get(seedUrl(server.url, { name: "carol", timeout: 0 }), bearer(valid()))).status).toBe(200);
    const sse = new SseClient(`${server.url}/api/events`, bearer(valid()));
    expect(await sse.status).toBe(200);
    await postJson(`${server.url}/api/messages`, { text: "to every device" }, bearer(first.body.token));
    await sse.waitFor((e) => e.data.includes("to every device"), "the message on the stream");
    sse.close();
    expect(server.chat.hub.sessionCount).toBe(1);
  });

  it("the seed endpoint takes the JWT in Authorization: a poll or a post makes the session", async () => {
    const server = await jwtServer();
    const poll = await get(seedUrl(server.url, { name: "carol", timeout: 0 }), bearer(valid()));
    expect(poll.status).toBe(200);
    expect(poll.text).toBe("* carol joined lobby\n");
    const dave = await get(seedUrl(server.url, { name: "dave", message: "hi from dave" }), bearer(valid({ sub: "dave" })));
    expect(dave.text).toMatch(/^ok \d+\n$/);
    // Without a JWT, neither a taken name nor a free one.
    expect((await get(seedUrl(server.url, { name: "carol", timeout: 0 }))).status).toBe(401);
    expect((await get(seedUrl(server.url, { name: "erin", message: "x" }))).status).toBe(401);
    expect([...server.chat.hub.sessions()].map((s) => s.name).sort()).toEqual(["carol", "dave"]);
  });

  it("SSE takes the JWT in Authorization, and a session token as before", async () => {
    const server = await jwtServer();
    const sse = new SseClient(`${server.url}/api/events`, bearer(valid()));
    expect(await sse.status).toBe(200);
    await sse.waitFor((e) => e.event === "join", "carol's join");
    const joined = await postJson(`${server.url}/api/join`, {}, bearer(valid({ sub: "dave" })));
    const byToken = new SseClient(`${server.url}/api/events?cursor=${joined.body.cursor}`, bearer(joined.body.token));
    expect(await byToken.status).toBe(200);
    await postJson(`${server.url}/api/messages`, { text: "hi all" }, bearer(joined.body.token));
    await sse.waitFor((e) => e.data.includes("hi all"), "dave's message on carol's stream");
    await byToken.waitFor((e) => e.data.includes("hi all"), "dave's message on dave's stream");
    sse.close();
    byToken.close();
  });

  it("TCP takes the JWT with /token, and a session token as before; a bare name is refused", async () => {
    const server = await jwtServer();
    const carol = await tcpClient(server);
    carol.send("dave\n");
    await carol.waitFor((l) => l.startsWith("error unauthorized"), "the bare name refused");
    carol.send(`/token ${valid()}\n`);
    await carol.waitFor((l) => l === "* you are carol, in lobby", "carol's session");
    const dave = await postJson(`${server.url}/api/join`, {}, bearer(valid({ sub: "dave" })));
    const daveTcp = await tcpClient(server);
    daveTcp.send(`/token ${dave.body.token}\n`);
    await daveTcp.waitFor((l) => l === "* you are dave, in lobby", "dave's session by token");
    carol.send("hello over tcp\n");
    await daveTcp.waitFor((l) => l === "carol : hello over tcp", "carol's line");
    carol.socket.destroy();
    daveTcp.socket.destroy();
    await Promise.all([carol.closed, daveTcp.closed]);
    // The JWT's session is carol's, shared like one of /api/join: closing the connection does not end it.
    expect(server.chat.hub.session("carol")).toBeDefined();
  });
});

describe("--jwt-secret: the rooms claim limits every join path", () => {
  const rooms = ["dev", "ops"];

  it("POST /api/join: the default room is the first listed; others are 403 room_not_allowed, with the JWT or the session token", async () => {
    const server = await jwtServer();
    const joined = await postJson(`${server.url}/api/join`, {}, bearer(valid({ rooms })));
    expect(joined.body).toMatchObject({ room: "dev", members: ["carol"] });
    const auth = bearer(joined.body.token);
    expect((await postJson(`${server.url}/api/join`, { room: "OPS" }, auth)).body).toMatchObject({ room: "ops" });
    const refused = await postJson(`${server.url}/api/join`, { room: "lobby" }, auth);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("room_not_allowed");
    expect((await postJson(`${server.url}/api/join`, { room: "lobby" }, bearer(valid({ rooms })))).status).toBe(403);
    // A new name whose claim excludes the room asked for: refused before its session is made.
    expect((await postJson(`${server.url}/api/join`, { room: "lobby" }, bearer(valid({ sub: "dave", rooms })))).status).toBe(403);
    expect(server.chat.hub.session("dave")).toBeUndefined();
    expect([...server.chat.hub.session("carol")!.rooms].sort()).toEqual(["dev", "ops"]);
    expect(server.chat.hub.room("lobby")).toBeUndefined();
  });

  it("a second JWT with a narrower claim joins the same session, limited by both claims", async () => {
    const server = await jwtServer();
    await postJson(`${server.url}/api/join`, {}, bearer(valid({ rooms })));
    expect((await postJson(`${server.url}/api/join`, { room: "ops" }, bearer(valid({ rooms: ["dev"] })))).status).toBe(403);
    // No claim on the second: the session's own claim still holds.
    expect((await postJson(`${server.url}/api/join`, { room: "lobby" }, bearer(valid()))).status).toBe(403);
    expect((await postJson(`${server.url}/api/join`, {}, bearer(valid({ rooms: ["ops"] })))).body).toMatchObject({ room: "ops" });
  });

  it("the seed endpoint: room= and /join outside the claim are 403 and change nothing", async () => {
    const server = await jwtServer();
    const auth = bearer(valid({ rooms }));
    expect((await get(seedUrl(server.url, { name: "carol", room: "lobby", timeout: 0 }), auth)).status).toBe(403);
    expect((await get(seedUrl(server.url, { name: "carol", room: "lobby", message: "hi" }), auth)).status).toBe(403);
    expect((await get(seedUrl(server.url, { name: "carol", message: "/join lobby" }), auth)).status).toBe(403);
    expect(server.chat.hub.sessionCount).toBe(0);
    // No room named: the first listed.
    expect((await get(seedUrl(server.url, { name: "carol", timeout: 0 }), auth)).text).toBe("* carol joined dev\n");
    expect((await get(seedUrl(server.url, { name: "carol", message: "/join lobby" }), auth)).status).toBe(403);
    expect((await get(seedUrl(server.url, { name: "carol", room: "lobby", timeout: 0 }), auth)).status).toBe(403);
    expect((await get(seedUrl(server.url, { name: "carol", message: "/join ops" }), auth)).status).toBe(200);
    expect([...server.chat.hub.session("carol")!.rooms].sort()).toEqual(["dev", "ops"]);
    expect(server.chat.hub.room("lobby")).toBeUndefined();
  });

  it("TCP: /join outside the claim is refused; inside it joins", async () => {
    const server = await jwtServer();
    const tcp = await tcpClient(server);
    tcp.send(`/token ${valid({ rooms })}\n`);
    await tcp.waitFor((l) => l === "* you are carol, in dev", "carol in her first room");
    tcp.send("/join lobby\n");
    await tcp.waitFor((l) => l.startsWith("error room_not_allowed"), "the refusal");
    tcp.send("/join ops\n");
    await tcp.waitFor((l) => l.includes("you are in ops"), "the join");
    expect([...server.chat.hub.session("carol")!.rooms].sort()).toEqual(["dev", "ops"]);
    tcp.socket.destroy();
  });

  it("restore: the claim holds after a restart with --data-dir", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pollchat-jwt-"));
    try {
      const first = await startServer({ jwtSecret: SECRET, dataDir: dir });
      const joined = await postJson(`${first.url}/api/join`, {}, bearer(valid({ rooms })));
      expect(joined.status).toBe(200);
      await first.close();
      const second = await startServer({ jwtSecret: SECRET, dataDir: dir });
      try {
        const auth = bearer(joined.body.token);
        expect((await postJson(`${second.url}/api/join`, { room: "lobby" }, auth)).status).toBe(403);
        expect((await postJson(`${second.url}/api/join`, { room: "ops" }, auth)).status).toBe(200);
        expect([...second.chat.hub.session("carol")!.allowedRooms!]).toEqual(rooms);
      } finally {
        await second.close();
      }
      // And after a compaction (a snapshot writes the session whole).
      const third = await startServer({ jwtSecret: SECRET, dataDir: dir });
      try {
        await third.chat.store!.compact();
        await third.close();
        const fourth = await startServer({ jwtSecret: SECRET, dataDir: dir });
        try {
          expect((await postJson(`${fourth.url}/api/join`, { room: "lobby" }, bearer(joined.body.token))).status).toBe(403);
          expect([...fourth.chat.hub.session("carol")!.rooms].sort()).toEqual(["dev", "ops"]);
        } finally {
          await fourth.close();
        }
      } finally {
        await third.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("--jwt-secret after a restart", () => {
  it("ends names restored from --data-dir that were taken without a token: they come back only with a JWT", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pollchat-jwt-"));
    try {
      const open = await startServer({ dataDir: dir });
      expect((await get(seedUrl(open.url, { name: "olga", timeout: 0 }))).status).toBe(200);
      await open.close();
      const strict = await startServer({ jwtSecret: SECRET, dataDir: dir });
      try {
        expect(strict.chat.hub.session("olga")).toBeUndefined();
        expect((await get(seedUrl(strict.url, { name: "olga", timeout: 0 }))).status).toBe(401);
        expect((await get(seedUrl(strict.url, { name: "olga", timeout: 0 }), bearer(valid({ sub: "olga" })))).status).toBe(200);
      } finally {
        await strict.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("--jwt-secret: no mutation of a valid token yields a session", () => {
  it("property: byte flips, segment swaps, re-encodings, alg changes and truncations all get 401, nothing made", async () => {
    const server = await jwtServer();
    const original = valid({ rooms: ["dev"] });
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    const segments = (t: string): string[] => t.split(".");
    type Mutation = (t: string) => string;
    const flip = fc.tuple(fc.nat(), fc.constantFrom(...alphabet)).map(([at, ch]): Mutation => (t) => (t.length === 0 ? ch : t.slice(0, at % t.length) + ch + t.slice((at % t.length) + 1)));
    const swap = fc.tuple(fc.nat(2), fc.nat(2)).map(([a, b]): Mutation => (t) => {
      const s = segments(t);
      if (s.length !== 3) return t;
      [s[a], s[b]] = [s[b]!, s[a]!];
      return s.join(".");
    });
    const reencode = fc.tuple(fc.nat(2), fc.constantFrom("base64", "padded", "spare")).map(([i, how]): Mutation => (t) => {
      const s = segments(t);
      if (s.length !== 3 || s[i] === undefined) return t;
      const bytes = Buffer.from(s[i]!, "base64url");
      s[i] = how === "base64" ? bytes.toString("base64") : how === "padded" ? s[i]! + "=".repeat((4 - (s[i]!.length % 4)) % 4) : (withSpareBits(s[i]!) ?? s[i]!);
      return s.join(".");
    });
    const alg = fc.tuple(fc.constantFrom("none", "HS384", "HS512", "RS256", "ES256", "hs256", "HS256 ", "", "PS256"), fc.boolean()).map(([name, resign]): Mutation => (t) => {
      const s = segments(t);
      if (s.length !== 3) return t;
      const header = b64url(JSON.stringify({ alg: name, typ: "JWT" }));
      if (!resign) return `${header}.${s[1]}.${s[2]}`;
      const hash = name === "HS384" ? "sha384" : name === "HS512" ? "sha512" : "sha256";
      return `${header}.${s[1]}.${createHmac(hash, SECRET).update(`${header}.${s[1]}`).digest("base64url")}`;
    });
    const truncate = fc.nat().map((n): Mutation => (t) => t.slice(0, n % Math.max(1, t.length)));
    const mutations = fc.array(fc.oneof(flip, swap, reencode, alg, truncate), { minLength: 1, maxLength: 3 });

    await fc.assert(
      fc.asyncProperty(mutations, async (chain) => {
        const token = chain.reduce((t, mutate) => mutate(t), original);
        fc.pre(token !== original);
        const headerOk = !/[\s]/.test(token);
        if (headerOk) expect((await postJson(`${server.url}/api/join`, {}, bearer(token))).status).toBe(401);
        expect((await postJson(`${server.url}/api/join`, { jwt: token })).status).toBe(401);
        if (headerOk) {
          expect((await get(seedUrl(server.url, { name: "carol", timeout: 0 }), bearer(token))).status).toBe(401);
          const sse = await fetch(`${server.url}/api/events`, { headers: bearer(token) });
          expect(sse.status).toBe(401);
          await sse.body?.cancel();
        }
        // Nothing made: no session, no member in any room.
        expect(server.chat.hub.sessionCount).toBe(0);
        expect(server.chat.hub.roomCount).toBe(0);
      }),
      { numRuns: 100 },
    );
    await expectNothingCreated(server);
    // The original itself is accepted: the mutations, not the setup, were refused.
    expect((await postJson(`${server.url}/api/join`, {}, bearer(original))).status).toBe(200);
  }, 20_000);
});

describe("--jwt-secret and PCHAT_JWT_SECRET on the command line", () => {
  const startCli = cliPerTest();

  it("the flag wins over the environment; an empty variable is unset; a short secret is a usage error", () => {
    expect(parseCli([], { PCHAT_JWT_SECRET: SECRET })).toMatchObject({ jwtSecret: SECRET });
    expect(parseCli(["--jwt-secret", `${SECRET}-flag`], { PCHAT_JWT_SECRET: SECRET })).toMatchObject({ jwtSecret: `${SECRET}-flag` });
    expect(parseCli([], { PCHAT_JWT_SECRET: "" })).toMatchObject({ jwtSecret: undefined });
    expect(() => parseCli(["--jwt-secret", "s3cret"], {})).toThrow(/at least 32 bytes/);
    expect(usage()).toMatch(/--jwt-secret VALUE .*PCHAT_JWT_SECRET/);
  });

  it("the CLI with PCHAT_JWT_SECRET takes names only from JWTs", async () => {
    await ensureBuilt();
    const cli = await startCli(CLI, ["--port", "0"], { env: { PATH: process.env.PATH, PCHAT_JWT_SECRET: SECRET } });
    expect((await postJson(`${cli.url}/api/join`, { name: "carol" })).status).toBe(401);
    expect((await postJson(`${cli.url}/api/join`, {}, bearer(valid()))).body).toMatchObject({ name: "carol", room: "lobby" });
  }, 60_000);
});

describe("the README's JWT recipe", () => {
  it("mints a token this server accepts, with the rooms it names", async () => {
    const root = new URL("..", import.meta.url);
    const readme = readFileSync(new URL("README.md", root), "utf8");
    const block = /```js\n(\/\/ In the host \(Node\): a token for carol[\s\S]*?)\n```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", `${block}\nconsole.log(jwt);`], {
      env: { PATH: process.env.PATH, PCHAT_JWT_SECRET: SECRET },
    });
    const server = await jwtServer();
    const joined = await postJson(`${server.url}/api/join`, {}, bearer(stdout.trim()));
    expect(joined.body).toMatchObject({ name: "carol", room: "dev" });
    expect([...server.chat.hub.session("carol")!.allowedRooms!]).toEqual(["dev", "ops"]);
  });
});
