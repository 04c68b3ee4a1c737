import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect, type Chat, type ConnectOptions } from "../src/client/index.js";
import { createChatServer, type ChatServer } from "../src/index.js";
import { describeRequest, Recorder, silentStream, type SeenRequest } from "./client-helpers.js";
import { CLI, CLIENT_BUNDLE, cliPerTest, ensureBuilt, joinApi, postJson, startServer } from "./helpers.js";
import { nowSeconds, SECRET, signJwt } from "./jwt-helpers.js";

// The client library (spec §11) against the real server: in-process, and as the CLI restarted on its --data-dir.

beforeAll(ensureBuilt, 120_000);

const chats: Chat[] = [];
const closers: (() => Promise<unknown>)[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const chat of chats.splice(0)) chat.close();
  for (const close of closers.splice(0)) await close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Quick to fall back and to come back, for tests; the defaults are seconds. */
const QUICK: ConnectOptions = { firstEventMs: 2000, streamRetryMs: 300, pollTimeoutMs: 1000, maxBackoffMs: 300 };

async function open(url: string, options: ConnectOptions): Promise<Recorder> {
  const chat = await connect(url, { ...QUICK, ...options });
  chats.push(chat);
  const recorder = new Recorder(chat);
  await recorder.until(() => chat.state === "connected", "connected state");
  return recorder;
}

const runCli = cliPerTest();

describe("client library", () => {
  it("two clients exchange messages both ways over a stream, privately too, and close on abort", async () => {
    const s = await startServer();
    closers.push(() => s.close());
    const aborter = new AbortController();
    const alice = await open(s.url, { name: "alice", signal: aborter.signal });
    const bob = await open(s.url, { name: "bob" });
    expect([alice.chat.transport, bob.chat.transport]).toEqual(["stream", "stream"]);
    await alice.until(() => alice.messages.some((m) => m.type === "join" && m.from === "bob"), "bob's join");

    const id1 = await alice.chat.send("hi bob");
    await bob.received("hi bob");
    const id2 = await bob.chat.send("hi alice");
    await alice.received("hi alice");
    const id3 = await alice.chat.send("just you", { to: "bob" });
    await bob.received("just you");
    await alice.received("just you");
    expect(id2).toBeGreaterThan(id1);
    expect(bob.messages.find((m) => m.text === "just you")).toMatchObject({ id: id3, type: "private", from: "alice", to: "bob" });
    expect(alice.texts()).toEqual(["hi bob", "hi alice", "just you"]);
    expect(bob.texts()).toEqual(["hi bob", "hi alice", "just you"]);
    expect(alice.chat.rooms).toEqual(["lobby"]);

    aborter.abort();
    expect(alice.chat.state).toBe("closed");
    await expect(alice.chat.send("too late")).rejects.toMatchObject({ code: "closed" });
  }, 15_000);

  it("with { jwt } against a real --jwt-secret server: joins as the JWT's sub in its rooms, a second device lands in the same session", async () => {
    const s = await startServer({ jwtSecret: SECRET });
    closers.push(() => s.close());
    const jwt = signJwt({ sub: "carol", rooms: ["dev"], exp: nowSeconds() + 600 });
    const phone = await open(s.url, { jwt, room: "dev" });
    const laptop = await open(s.url, { jwt, room: "dev" });
    expect(phone.chat.name).toBe("carol");
    expect(s.chat.hub.sessionCount).toBe(1);
    await laptop.chat.send("from the laptop");
    await phone.received("from the laptop");
    // A room the claim does not list is refused, and a forged JWT makes no session.
    await expect(phone.chat.join("ops")).rejects.toMatchObject({ status: 403 });
    await expect(connect(s.url, { ...QUICK, jwt: signJwt({ sub: "mallory" }, "another-secret-of-at-least-32-bytes") })).rejects.toMatchObject({ status: 401 });
    expect(s.chat.hub.sessionCount).toBe(1);
  }, 15_000);

  it("joins and leaves rooms, and a typed /join counts as joined", async () => {
    const s = await startServer();
    closers.push(() => s.close());
    const alice = await open(s.url, { name: "alice", room: "dev" });
    const bob = await open(s.url, { name: "bob", room: "dev" });
    await expect(alice.chat.join("ops")).resolves.toEqual({ room: "ops", members: ["alice"] });
    await bob.chat.send("/join ops");
    await bob.until(() => bob.chat.rooms.includes("ops"), "ops among bob's rooms");
    await alice.chat.send("in ops", { room: "ops" });
    await bob.received("in ops");
    await alice.chat.leave("ops");
    expect(alice.chat.rooms).toEqual(["dev"]);
    await bob.until(() => bob.messages.some((m) => m.type === "leave" && m.from === "alice" && m.room === "ops"), "alice's leave");
    await alice.chat.leave();
    expect(alice.chat.state).toBe("closed");
    await bob.until(() => bob.messages.some((m) => m.type === "leave" && m.from === "alice" && m.room === "dev"), "alice's end");
  }, 15_000);

  it("follows member pages: join() and members() give every member of a room past one page, no answer carrying more than a page", async () => {
    const s = await startServer({ presenceLimit: 0 });
    closers.push(() => s.close());
    const name = (i: number): string => `${i % 3 === 0 ? "M" : "m"}${String(i).padStart(4, "0")}`;
    // The members are made in the hub (quicker than 1,100 joins); what is tested is the library, through sockets.
    const hub = s.chat.hub;
    for (let i = 0; i < 1100; i++) hub.join(hub.sessionForName(name(i), {}), "big");
    const everyone = [...Array.from({ length: 1100 }, (_, i) => name(i)), "zed"];
    // What the server answered each join and member page: how many names each carried.
    const answers: { path: string; members: number }[] = [];
    const recording: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const { path } = describeRequest(input as string, init);
      if (path === "/api/join" || path.startsWith("/api/rooms/big")) {
        answers.push({ path, members: ((await res.clone().json()) as { members: unknown[] }).members.length });
      }
      return res;
    };
    const zed = await open(s.url, { name: "zed", fetch: recording });
    const joined = await zed.chat.join("big");
    expect(joined).toEqual({ room: "big", members: everyone });
    expect(answers[1]).toEqual({ path: "/api/join", members: 100 });
    expect(answers.slice(2).map((a) => a.path)).toEqual([`/api/rooms/big?limit=1000&after=${name(99)}`, `/api/rooms/big?limit=1000&after=${name(1099)}`]);
    answers.length = 0;
    expect(await zed.chat.members("big")).toEqual({ name: "big", members: everyone });
    expect(answers.map((a) => a.members)).toEqual([1000, 101]);
  }, 30_000);

  it("across a restart on its --data-dir: nothing lost, nothing doubled; the stream falls back to polling and comes back", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pollchat-client-"));
    dirs.push(dir);
    const args = ["--host", "127.0.0.1", "--data-dir", dir, "--rate", "1000"];
    const first = await runCli(CLI, [...args, "--port", "0"]);
    const port = new URL(first.url).port;
    const alice = await open(first.url, { name: "alice" });
    const bob = await open(first.url, { name: "bob" });
    await alice.chat.send("before, from alice");
    await bob.chat.send("before, from bob");
    await alice.received("before, from bob");
    await bob.received("before, from alice");
    const streamsBefore = [alice, bob].map((r) => r.states.length);

    await first.stop("SIGKILL");
    for (const r of [alice, bob]) await r.until(() => r.chat.state === "reconnecting", "reconnecting state");
    expect([alice.chat.transport, bob.chat.transport]).toEqual(["poll", "poll"]);
    const during = alice.chat.send("sent while the server was down");

    await runCli(CLI, [...args, "--port", port]);
    const duringId = await during;
    await bob.received("sent while the server was down");
    // Back on the stream, after answers by long-poll in between.
    for (const [i, r] of [alice, bob].entries()) {
      const transports = (): (string | undefined)[] => r.states.slice(streamsBefore[i]).filter((s) => s.state === "connected").map((s) => s.info.transport);
      await r.until(() => transports().includes("poll") && transports().at(-1) === "stream", "answers by poll, then the stream again");
    }
    await bob.chat.send("after, from bob");
    await alice.received("after, from bob");

    const texts = ["before, from alice", "before, from bob", "sent while the server was down", "after, from bob"];
    for (const r of [alice, bob]) {
      await r.received("after, from bob");
      expect(r.texts()).toEqual(texts);
      const ids = r.messages.map((m) => m.id);
      expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
      expect(r.gaps).toEqual([]);
    }
    expect(bob.messages.find((m) => m.text === "sent while the server was down")?.id).toBe(duringId);
  }, 30_000);

  it("a send whose answer is lost is retried with its txn: one id, posted once", async () => {
    const s = await startServer();
    closers.push(() => s.close());
    const posts: SeenRequest[] = [];
    let dropNext = true;
    const lossy: typeof fetch = async (input, init) => {
      const seen = describeRequest(input as string, init);
      const res = await fetch(input, init);
      if (seen.path !== "/api/messages") return res;
      posts.push(seen);
      if (!dropNext) return res;
      dropNext = false;
      await res.text();
      throw new TypeError("fetch failed: the answer was lost on the way");
    };
    const alice = await open(s.url, { name: "alice", fetch: lossy });
    const bob = await open(s.url, { name: "bob" });
    const id = await alice.chat.send("only once");
    await alice.chat.send("a later one");
    await bob.received("a later one");
    expect(posts.map((p) => (p.body as { text: string }).text)).toEqual(["only once", "only once", "a later one"]);
    expect((posts[0]!.body as { txn: string }).txn).toBe((posts[1]!.body as { txn: string }).txn);
    expect(bob.messages.filter((m) => m.text === "only once").map((m) => m.id)).toEqual([id]);
  }, 15_000);

  it("surfaces a gap when its queue overflowed, then carries on in order", async () => {
    const s = await startServer({ maxQueue: 3 });
    closers.push(() => s.close());
    let gate: Promise<void> | undefined;
    let openGate = (): void => {};
    const held: typeof fetch = async (input, init) => {
      if (describeRequest(input as string, init).path.startsWith("/api/poll")) await gate;
      return fetch(input, init);
    };
    const bob = await open(s.url, { name: "bob", fetch: held, stream: false });
    const alice = await open(s.url, { name: "alice" });
    await bob.until(() => bob.messages.some((m) => m.type === "join" && m.from === "alice"), "alice's join");
    gate = new Promise((resolve) => (openGate = resolve));
    for (let i = 1; i <= 10; i++) await alice.chat.send(`m${i}`);
    openGate();
    await bob.received("m10");
    expect(bob.gaps.length).toBe(1);
    expect(bob.gaps[0]!.missed).toBeGreaterThan(0);
    // Each of the ten arrived or is counted missed (one may be both: delivered, but not yet acknowledged when it was dropped).
    const texts = bob.texts();
    expect(texts.length + bob.gaps[0]!.missed!).toBeGreaterThanOrEqual(10);
    expect(texts.length).toBeLessThan(10);
    expect(texts).toEqual([...texts].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
    expect(bob.messages.map((m) => m.id)).toEqual([...new Set(bob.messages.map((m) => m.id))].sort((a, b) => a - b));
  }, 15_000);

  it("after a restart that forgot its session (401), joins again with the same name and rooms, and says so", async () => {
    const first = await startServer();
    let current: ChatServer = first.chat;
    closers.push(() => current.close());
    const alice = await open(first.url, { name: "alice", room: "dev" });
    await alice.chat.join("ops");
    await alice.chat.join("dev");
    const oldToken = alice.chat.token;
    const sessions: (string | undefined)[] = [];
    alice.chat.on("session", (s) => sessions.push(s.token));
    await first.close();
    current = createChatServer({ pollTimeoutMs: 1000 });
    await current.listen(first.port, "127.0.0.1");

    await alice.until(() => alice.gaps.length > 0 && alice.chat.state === "connected", "a gap after the re-join");
    expect(alice.states.some((s) => s.state === "reconnecting" && s.info.rejoining)).toBe(true);
    expect(alice.chat.token).not.toBe(oldToken);
    expect(sessions.at(-1)).toBe(alice.chat.token);
    // The same rooms, the current one last (where plain sends and /who go).
    expect(alice.chat.rooms).toEqual(["ops", "dev"]);
    const bob = await open(first.url, { name: "bob", room: "dev" });
    await bob.chat.send("welcome back");
    await alice.received("welcome back");
    await alice.chat.send("thanks");
    await bob.received("thanks");
  }, 15_000);

  it("closes with the refusal when, after a restart, its name was taken meanwhile", async () => {
    const first = await startServer();
    let current: ChatServer = first.chat;
    closers.push(() => current.close());
    const bob = await open(first.url, { name: "bob", maxBackoffMs: 200 });
    const pending = bob.chat.send("never").catch((error: unknown) => error);
    await first.close();
    current = createChatServer({ pollTimeoutMs: 1000 });
    current.hub.joinWithToken("bob", "lobby");
    await current.listen(first.port, "127.0.0.1");
    await bob.until(() => bob.chat.state === "closed", "closed state");
    expect(bob.states.at(-1)!.info.error).toMatchObject({ status: 409, code: "name_taken" });
    await expect(pending).resolves.toMatchObject({ code: "name_taken" });
  }, 15_000);

  it("resumes a session by token alone, and closes on a 401, having no name to join again with", async () => {
    const s = await startServer();
    closers.push(() => s.close());
    const { token, auth } = await joinApi(s.url, "gus");
    const gus = await open(s.url, { token });
    expect(gus.chat.name).toBeUndefined();
    const hal = await open(s.url, { name: "hal" });
    await hal.chat.send("hi gus");
    await gus.received("hi gus");
    // The session ends on the server; its stream says so, and the next request is refused.
    expect((await postJson(`${s.url}/api/leave`, {}, auth)).status).toBe(200);
    await gus.until(() => gus.chat.state === "closed", "closed state");
    expect(gus.states.at(-1)!.info.error).toMatchObject({ status: 401, code: "unauthorized" });
  }, 15_000);

  it("polls instead when a proxy holds the stream back, and tries the stream again later", async () => {
    const s = await startServer();
    closers.push(() => s.close());
    let streams = 0;
    let alice: Recorder | undefined;
    const buffering: typeof fetch = async (input, init) => {
      if (!describeRequest(input as string, init).path.startsWith("/api/events")) return fetch(input, init);
      streams++;
      alice?.check();
      return silentStream(init?.signal);
    };
    alice = await open(s.url, { name: "alice", fetch: buffering, firstEventMs: 200, streamRetryMs: 400 });
    expect(alice.chat.transport).toBe("poll");
    const bob = await open(s.url, { name: "bob" });
    await bob.chat.send("through the poll");
    await alice.received("through the poll");
    await alice.until(() => streams >= 2, "a second try of the stream");
    expect(alice.chat.state).toBe("connected");
  }, 15_000);

  it("is `pollchat/client`, the same file the server sends as /client.js, one module with no imports", async () => {
    const specifier = "pollchat/client";
    const lib = (await import(specifier)) as typeof import("../src/client/index.js");
    expect(typeof lib.connect).toBe("function");
    expect(lib.NAME_PATTERN.test("dora")).toBe(true);
    const s = await startServer();
    closers.push(() => s.close());
    const res = await fetch(`${s.url}/client.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const served = await res.text();
    expect(served).toBe(await readFile(CLIENT_BUNDLE, "utf8"));
    expect(served).not.toMatch(/^\s*import\b/m);
    const { token } = await joinApi(s.url, "dora");
    const chat = await lib.connect(s.url, { name: "dora", token });
    chats.push(chat);
    expect(chat.token).toBe(token);
  }, 15_000);
});
