import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createChatServer, type Authenticate, type ChatOptions, type ChatServer } from "../src/index.js";
import { get, seedUrl } from "./core-helpers.js";
import { ensureBuilt, killChildren, postJson } from "./helpers.js";
import { SseClient, LineClient } from "./transport-clients.js";

/*
 * createChatServer({ authenticate }) (spec §4): the host's own login decides
 * who a request is, wherever a request would create a session or claim a name.
 * pollchat is mounted in a plain node:http server here, as an embedding program would.
 */

interface Host {
  chat: ChatServer;
  url: string;
  tcpPort: number | undefined;
  /** How often authenticate was called. */
  calls: () => number;
}

const hosts: { chat: ChatServer; server: Server }[] = [];
afterEach(async () => {
  for (const { chat, server } of hosts.splice(0)) {
    await chat.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A host app: `X-User` stands in for its login; pollchat's handler mounted in its own server. */
async function host(login: (req: IncomingMessage) => ReturnType<Authenticate> = (req) => header(req), options: ChatOptions = {}): Promise<Host> {
  let calls = 0;
  const chat = createChatServer({
    pollTimeoutMs: 1000,
    authenticate: (req) => {
      calls++;
      return login(req);
    },
    ...options,
  });
  const server = createServer((req, res) => chat.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  hosts.push({ chat, server });
  const tcpPort = options.tcpPort === undefined ? undefined : (await chat.listen(0, "127.0.0.1")).tcpPort;
  return { chat, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tcpPort, calls: () => calls };
}

function header(req: IncomingMessage): string | undefined {
  const user = req.headers["x-user"];
  return typeof user === "string" ? user : undefined;
}

const as = (user: string): Record<string, string> => ({ "x-user": user });

async function expectNothingCreated(h: Host): Promise<void> {
  expect(h.chat.hub.sessionCount).toBe(0);
  expect(JSON.parse((await get(`${h.url}/api/rooms`)).text)).toEqual({ rooms: [] });
}

describe("authenticate: the host's login names the user", () => {
  it("no login is 401 on every way in, and creates nothing", async () => {
    const h = await host();
    expect((await postJson(`${h.url}/api/join`, { name: "carol" })).status).toBe(401);
    expect((await get(seedUrl(h.url, { name: "carol", timeout: 0 }))).status).toBe(401);
    expect((await get(seedUrl(h.url, { name: "carol", message: "hi" }))).status).toBe(401);
    const sse = await fetch(`${h.url}/api/events`);
    expect(sse.status).toBe(401);
    await sse.body?.cancel();
    await expectNothingCreated(h);
  });

  it("a logged-in request joins as its user; another name is 401; a second device joins the same session", async () => {
    const h = await host();
    const joined = await postJson(`${h.url}/api/join`, { room: "dev" }, as("carol"));
    expect(joined.body).toMatchObject({ name: "carol", room: "dev", members: ["carol"] });
    expect((await postJson(`${h.url}/api/join`, { name: "dave" }, as("carol"))).status).toBe(401);
    const phone = await postJson(`${h.url}/api/join`, { name: "carol" }, as("carol"));
    expect(phone.status).toBe(200);
    expect(phone.body.token).toBe(joined.body.token);
    expect(h.chat.hub.sessionCount).toBe(1);
    // Nobody else can take carol: not without a login, not as another user.
    expect((await postJson(`${h.url}/api/join`, { name: "carol" })).status).toBe(401);
    expect((await get(seedUrl(h.url, { name: "carol", message: "i am carol" }), as("mallory"))).status).toBe(401);
  });

  it("a promise of the name works; a name that is not valid is 401; a hook that throws is 500; none creates anything", async () => {
    const h = await host(async (req) => {
      await new Promise((resolve) => setImmediate(resolve));
      const user = header(req);
      if (user === "boom") throw new Error("login store down");
      return user;
    });
    expect((await postJson(`${h.url}/api/join`, {}, as("not a name"))).status).toBe(401);
    expect((await postJson(`${h.url}/api/join`, {}, as("boom"))).status).toBe(500);
    await expectNothingCreated(h);
    expect((await postJson(`${h.url}/api/join`, {}, as("erin"))).body).toMatchObject({ name: "erin", room: "lobby" });
  });

  it("is asked only where a name is claimed: never for a request that carries its session token", async () => {
    const h = await host();
    const joined = await postJson(`${h.url}/api/join`, {}, as("carol"));
    const auth = { authorization: `Bearer ${joined.body.token}` };
    expect(h.calls()).toBe(1);
    expect((await postJson(`${h.url}/api/messages`, { text: "hi" }, auth)).status).toBe(201);
    expect((await fetch(`${h.url}/api/poll?timeout=0`, { headers: auth })).status).toBe(200);
    expect((await get(seedUrl(h.url, { name: "carol", timeout: 0 }), auth)).status).toBe(200);
    expect((await postJson(`${h.url}/api/join`, { room: "dev" }, auth)).status).toBe(200);
    const sse = new SseClient(`${h.url}/api/events`, auth);
    expect(await sse.status).toBe(200);
    sse.close();
    expect(h.calls()).toBe(1);
    // Without the token, a seed poll and SSE ask the host, and reach the same session.
    await postJson(`${h.url}/api/messages`, { text: "for every device" }, auth);
    const seedPoll = await get(seedUrl(h.url, { name: "carol", cursor: joined.body.cursor, timeout: 0 }), as("carol"));
    expect(seedPoll.text).toContain("carol : for every device");
    const byLogin = new SseClient(`${h.url}/api/events?cursor=${joined.body.cursor}`, as("carol"));
    expect(await byLogin.status).toBe(200);
    await byLogin.waitFor((e) => e.data.includes("for every device"), "the post on the stream");
    byLogin.close();
    expect(h.calls()).toBe(3);
    expect(h.chat.hub.sessionCount).toBe(1);
  });

  it("the login alone never makes a state change a page elsewhere could send: a seed GET that posts or joins, a join without JSON", async () => {
    const h = await host();
    for (const params of [{ message: "forged" }, { room: "dev", timeout: 0 }] as Record<string, string | number>[]) {
      const refused = await get(seedUrl(h.url, { name: "carol", ...params }), as("carol"));
      expect(refused.status).toBe(401);
    }
    const form = await fetch(`${h.url}/api/join`, { method: "POST", headers: as("carol") });
    expect(form.status).toBe(415);
    const text = await fetch(`${h.url}/api/join`, { method: "POST", headers: { ...as("carol"), "content-type": "text/plain" }, body: "{}" });
    expect(text.status).toBe(415);
    await expectNothingCreated(h);
    expect(h.calls()).toBe(0);
    // With the session token in Authorization the seed posts and joins as before.
    const joined = await postJson(`${h.url}/api/join`, {}, as("carol"));
    const auth = { authorization: `Bearer ${joined.body.token}` };
    expect((await get(seedUrl(h.url, { name: "carol", message: "real" }), auth)).text).toMatch(/^ok \d+\n$/);
    expect((await get(seedUrl(h.url, { name: "carol", room: "dev", timeout: 0 }), auth)).status).toBe(200);
  });

  it("TCP takes session tokens only: a bare name is refused", async () => {
    const h = await host(undefined, { tcpPort: 0 });
    const tcp = new LineClient(h.tcpPort!);
    await tcp.waitFor((l) => l === "Send your token: /token T (from POST /api/join)", "the token prompt");
    tcp.send("carol\n");
    await tcp.waitFor((l) => l.startsWith("error unauthorized"), "the refusal");
    await expectNothingCreated(h);
    const joined = await postJson(`${h.url}/api/join`, {}, as("carol"));
    tcp.send(`/token ${joined.body.token}\n`);
    await tcp.waitFor((l) => l === "* you are carol, in lobby", "carol's session");
    tcp.socket.destroy();
    await tcp.closed;
  });
});

describe("the README's host app (its code block, run as it is)", () => {
  const children = new Set<ChildProcess>();
  afterEach(() => killChildren(children));

  it("logs in with its own cookie, then joins, posts and polls pollchat with it", async () => {
    await ensureBuilt();
    const root = fileURLToPath(new URL("..", import.meta.url));
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const block = /<!-- example: host-app[^>]*-->\n```js\n([\s\S]*?)\n```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), "pollchat-host-"));
    try {
      const file = join(dir, "host-app.mjs");
      writeFileSync(file, block!.replace('from "pollchat"', `from ${JSON.stringify(pathToFileURL(join(root, "dist", "index.js")).href)}`));
      const child = spawn(process.execPath, [file], { env: { PATH: process.env.PATH, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
      children.add(child);
      child.stdout!.setEncoding("utf8");
      let out = "";
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no port line in 10 s: ${out}`)), 10_000);
        child.stdout!.on("data", (d: string) => {
          out += d;
          const match = /host app on port (\d+)/.exec(out);
          if (match) {
            clearTimeout(timer);
            resolve(Number(match[1]));
          }
        });
        void once(child, "exit").then(() => reject(new Error(`exited: ${out}`)));
      });
      const url = `http://127.0.0.1:${port}`;
      // Not logged in: pollchat refuses, creates nothing.
      expect((await postJson(`${url}/api/join`, { name: "carol" })).status).toBe(401);
      const login = await fetch(`${url}/login?user=carol`, { method: "POST" });
      expect(login.status).toBe(204);
      const sid = login.headers.get("set-cookie")!.split(";")[0]!;
      const joined = await postJson(`${url}/api/join`, {}, { cookie: sid });
      expect(joined.body).toMatchObject({ name: "carol", room: "lobby" });
      // From here on pollchat's own cookie (or token) carries the session.
      const chatCookie = joined.headers.get("set-cookie")!.split(";")[0]!;
      expect((await postJson(`${url}/api/messages`, { text: "hello host" }, { cookie: chatCookie })).status).toBe(201);
      const poll = await fetch(`${url}/api/poll?cursor=${joined.body.cursor}&timeout=0`, { headers: { cookie: chatCookie } });
      expect(((await poll.json()) as { messages: { text: string }[] }).messages.map((m) => m.text)).toContain("hello host");
      expect((await postJson(`${url}/api/join`, { name: "dave" }, { cookie: sid })).status).toBe(401);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
