import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Hub } from "../src/hub.js";
import { createChatServer, resolveOptions, type ChatMessage, type ChatOptions } from "../src/index.js";
import { identify, isAlive, LOCK_FILE } from "../src/store/dir-lock.js";
import { LineChunks } from "../src/store/line-chunks.js";
import { readLinesSync } from "../src/store/log-reader.js";
import { LOG_FILE, MessageLog } from "../src/store/message-log.js";
import { apiPoll } from "./core-helpers.js";
import { ensureBuilt, joinApi, killChildren, postJson, startServer } from "./helpers.js";
import { writeBigLog } from "./hardening-store-biglog.js";
import { mountTmpfs, refusedStart, runCli, type CliRun } from "./hardening-store-helpers.js";

/**
 * --data-dir hardened (issue 10, items 3, 4 and 6; spec §7, §8): restore and
 * compaction in bounded memory, write-ahead delivery (a message reaches no one
 * before its record is durable), a full disk, one server per directory.
 */

beforeAll(ensureBuilt, 120_000);

const children = new Set<ChildProcess>();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await killChildren(children);
  // Servers close before their tmpfs is unmounted: last registered, first done.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "pollchat-store-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function tmpfs(size = "256k"): ReturnType<typeof mountTmpfs> {
  const fs = mountTmpfs(size);
  cleanups.push(() => fs.unmount());
  return fs;
}

/** A hub with its log, as createChatServer makes them, closed after the test. */
function hubWithLog(dir: string, options: ChatOptions & { compactMinBytes?: number } = {}, warnings: string[] = []): { hub: Hub; log: MessageLog } {
  const resolved = resolveOptions({ rate: 100_000, ...options });
  const log = MessageLog.open(dir, { ...resolved, compactMinBytes: options.compactMinBytes, warn: (line) => warnings.push(line) });
  const hub = new Hub(resolved, { lastId: log.lastId });
  log.attach(hub);
  cleanups.push(async () => (await log.close(), hub.close()));
  return { hub, log };
}

const texts = (envelopes: { message: ChatMessage }[]): string[] => envelopes.filter((e) => e.message.type === "message").map((e) => e.message.text);
const ALL = Number.MAX_SAFE_INTEGER;

/** SIGTERM once it has answered a request (cli.ts installs its signal handlers just after the listening line). */
async function cliStops(run: CliRun): Promise<number | null> {
  expect((await fetch(`${run.url}/healthz`)).status).toBe(200);
  run.child.kill("SIGTERM");
  return run.exited;
}

describe("restore and compaction in bounded memory (item 3)", () => {
  it("restores a 200 MiB log under --max-old-space-size=64, serves its history and compacts while serving", async () => {
    const dir = tempDir();
    const log = join(dir, LOG_FILE);
    const big = writeBigLog(log, 200 * 1024 * 1024, ["r0", "r1", "r2"]);
    expect(big.bytes).toBeGreaterThan(200 * 1024 * 1024);
    const args = ["--port", "0", "--host", "127.0.0.1", "--data-dir", dir, "--rate", "100000", "--max-message", "20000", "--log-level", "warn"];
    const run = await runCli(args, { nodeArgs: ["--max-old-space-size=64"], deadlineMs: 25_000, children });
    // Each room's newest messages, as the log had them.
    for (const room of ["r0", "r1", "r2"]) {
      const res = await fetch(`${run.url}/api/rooms/${room}/messages?limit=3`);
      const { messages } = (await res.json()) as { messages: ChatMessage[] };
      expect(messages.at(-1)!.id).toBe(big.lastIds.get(room));
      expect(messages).toHaveLength(3);
    }
    // Compacted at start: the --history newest per room, not 200 MiB.
    expect(statSync(log).size).toBeLessThan(16 * 1024 * 1024);
    const started = statSync(log).ino;
    // Post until a compaction replaces the file (past max(8 MiB, the snapshot)): 20 KB posts, 16 at a time.
    const { auth } = await joinApi(run.url, "poster", "r0");
    const text = "p".repeat(20_000);
    let posted = 0;
    for (let round = 0; round < 100 && statSync(log).ino === started; round++) {
      const answers = await Promise.all(Array.from({ length: 16 }, () => postJson(`${run.url}/api/messages`, { text, room: "r0" }, auth)));
      for (const answer of answers) expect(answer.status).toBe(201);
      posted += answers.length;
    }
    expect(statSync(log).ino).not.toBe(started);
    expect(posted).toBeGreaterThan(300);
    const res = await fetch(`${run.url}/api/rooms/r0/messages?limit=1`);
    expect(((await res.json()) as { messages: ChatMessage[] }).messages[0]!.text).toBe(text);
    expect(run.stderr()).not.toMatch(/failed|Unhandled|heap/i);
    expect(await cliStops(run)).toBe(0);
  }, 60_000);

  it("reads lines across chunk boundaries and passes a line past the cap on in pieces, never whole", () => {
    const dir = tempDir();
    const path = join(dir, "lines");
    writeFileSync(path, "abc\n0123456789\n\n01234567890123456789xyz\ntail");
    const lines: string[] = [];
    const pieces: { piece: string; end: boolean }[] = [];
    const found = readLinesSync(path, { line: (b) => lines.push(b.toString()), overlong: (piece, end) => pieces.push({ piece: piece.toString(), end }) }, 10, 7);
    expect(found).toBe(true);
    expect(lines).toEqual(["abc", "0123456789", "tail"]);
    expect(pieces.map((p) => p.piece).join("")).toBe("01234567890123456789xyz");
    expect(pieces.filter((p) => p.end)).toHaveLength(1);
    // No piece is the whole line: it was never held.
    expect(Math.max(...pieces.map((p) => p.piece.length))).toBeLessThan(23);
    expect(readLinesSync(join(dir, "none"), { line: () => {}, overlong: () => {} }, 10)).toBe(false);
  });

  it("packs snapshot lines into chunks of at most 1 MiB", () => {
    const chunks = new LineChunks();
    const lines = Array.from({ length: 3000 }, (_, i) => `${i} ${"é".repeat(500)}`);
    for (const line of lines) chunks.push(line);
    const huge = "h".repeat(2 * 1024 * 1024);
    chunks.push(huge);
    const out = chunks.end();
    expect(out.length).toBeGreaterThan(3);
    for (const chunk of out.slice(0, -1)) expect(chunk.length).toBeLessThanOrEqual(1024 * 1024);
    expect(Buffer.concat(out).toString()).toBe([...lines, huge].join("\n") + "\n");
    expect(chunks.bytes).toBe(Buffer.concat(out).length);
  });

  it("sets a line past the cap aside byte for byte, and loads the records around it", () => {
    const dir = tempDir();
    const garbage = Buffer.alloc(5 * 1024 * 1024, "g");
    const msg = (id: number, text: string): string => `{"k":"msg","m":{"id":${id},"type":"message","room":"lobby","from":"a","text":"${text}","ts":1}}`;
    writeFileSync(
      join(dir, LOG_FILE),
      Buffer.concat([Buffer.from(`{"k":"head","v":1,"last":5}\n${msg(6, "before")}\n`), garbage, Buffer.from(`\n${msg(7, "after")}\n`)]),
    );
    const warnings: string[] = [];
    const { hub, log } = hubWithLog(dir, {}, warnings);
    expect(log.loaded.setAside).toBe(1);
    // Buffer.equals: toEqual walks 5 MiB byte by byte.
    expect(readFileSync(log.loaded.setAsideFile!).equals(Buffer.concat([garbage, Buffer.from("\n")]))).toBe(true);
    expect(warnings.join("\n")).toMatch(/set aside 1 bad line \(5242880 bytes\)/);
    hub.sessionForName("reader", { room: "lobby" });
    expect(texts(hub.room("lobby")!.history(ALL, 100))).toEqual(["before", "after"]);
  });

  it("a compaction that fails leaves the old log in place, is reported once, and logging goes on", async () => {
    const fs = tmpfs();
    const data = join(fs.dir, "data");
    const warnings: string[] = [];
    const { hub, log } = hubWithLog(data, {}, warnings);
    const alice = hub.sessionForName("alice", {});
    for (let i = 0; i < 30; i++) hub.post(alice, { text: `${i} ${"z".repeat(1000)}` });
    await log.durable();
    const before = readFileSync(join(data, LOG_FILE));
    fs.fill();
    await expect(log.compact()).rejects.toThrow(/ENOSPC|no space/);
    expect(readFileSync(join(data, LOG_FILE))).toEqual(before);
    expect(readdirSync(data).sort()).toEqual([LOCK_FILE, LOG_FILE]);
    expect(warnings.filter((line) => /compacting .* failed/.test(line))).toHaveLength(1);
    expect(log.failure).toBeUndefined();
    rmSync(join(fs.dir, "filler"));
    hub.post(alice, { text: "after" });
    await log.durable();
    expect(readFileSync(join(data, LOG_FILE), "utf8")).toContain('"text":"after"');
    await log.compact();
    expect(log.stats.compactions).toBe(1);
  });
});

describe("write-ahead: nothing reaches anyone before it is durable (item 4)", () => {
  it("delivers a message to no queue, history or poll before its batch is on disk", async () => {
    const { hub, log } = hubWithLog(tempDir());
    const alice = hub.sessionForName("alice", {});
    const bob = hub.sessionForName("bob", {});
    await log.durable();
    const queued = bob.queue.length;
    let woken = 0;
    hub.open(bob).onWake(() => woken++);
    hub.post(alice, { text: "held" });
    await Promise.resolve(); // a wake would run after the turn's publishes
    // Accepted, not yet written: nobody has it.
    expect(bob.queue.length).toBe(queued);
    expect(texts(hub.room("lobby")!.history(ALL, 100))).toEqual([]);
    expect(woken).toBe(0);
    await log.durable();
    await Promise.resolve();
    expect(texts(bob.queue.peek())).toEqual(["held"]);
    expect(texts(hub.room("lobby")!.history(ALL, 100))).toEqual(["held"]);
    expect(woken).toBe(1);
  });

  it("a snapshot taken while messages are held counts them once, and delivers them once it is durable", async () => {
    const dir = tempDir();
    let { hub, log } = hubWithLog(dir);
    const alice = hub.sessionForName("alice", { room: "den" });
    const bob = hub.sessionForName("bob", { room: "den" });
    await log.durable();
    hub.post(alice, { text: "one" });
    const compacted = log.compact();
    hub.post(alice, { text: "two" });
    expect(texts(bob.queue.peek())).toEqual([]);
    await compacted;
    await log.durable();
    expect(log.stats.compactions).toBe(1);
    expect(texts(bob.queue.peek())).toEqual(["one", "two"]);
    await log.close();
    hub.close();
    ({ hub, log } = hubWithLog(dir));
    expect(texts(hub.session("bob")!.queue.peek())).toEqual(["one", "two"]);
    expect(texts(hub.room("den")!.history(ALL, 100))).toEqual(["one", "two"]);
  });

  it("on a full disk the failed post reaches no one; then posts, joins and leaves get 503 and change nothing; /healthz says why", async () => {
    const fs = tmpfs();
    const server = await startServer({ dataDir: join(fs.dir, "data"), rate: 100_000 });
    cleanups.push(() => server.close());
    const url = server.url;
    const alice = await joinApi(url, "alice");
    const bob = await joinApi(url, "bob");
    // bob reads everything as it comes, with a cursor.
    const seen: string[] = [];
    let cursor = bob.cursor;
    let polling = true;
    const poller = (async () => {
      for (let i = 0; i < 200 && polling; i++) {
        const answer = await apiPoll(url, bob.auth, { cursor, timeout: 300 });
        for (const m of answer.messages) if (m.type === "message") seen.push(m.text);
        cursor = answer.cursor;
      }
    })();
    fs.fill();
    const answered: string[] = [];
    let failed: { status: number; code: string; retryAfter: string | null; text: string } | undefined;
    for (let i = 0; i < 200 && !failed; i++) {
      const text = `m${i} ${"y".repeat(1500)}`;
      const r = await postJson(`${url}/api/messages`, { text }, alice.auth);
      if (r.status === 201) answered.push(text);
      else failed = { status: r.status, code: r.body?.error?.code, retryAfter: r.headers.get("retry-after"), text };
    }
    expect(failed).toMatchObject({ status: 503, code: "store_unavailable" });
    expect(Number(failed!.retryAfter)).toBeGreaterThan(0);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.text()).toMatch(/cannot be written: .*(ENOSPC|no space)/);
    // Refused before anything happens: no message, no session, no room, no membership change.
    const refused = [
      await postJson(`${url}/api/messages`, { text: "later" }, alice.auth),
      await postJson(`${url}/api/join`, { name: "carol" }),
      await postJson(`${url}/api/join`, { name: "alice", room: "attic" }, alice.auth),
      await postJson(`${url}/api/leave`, { room: "lobby" }, alice.auth),
    ];
    for (const r of refused) expect([r.status, r.body.error.code, r.headers.get("retry-after")]).toEqual([503, "store_unavailable", "30"]);
    const seedPost = await fetch(`${url}/?name=dave&room=cellar&message=hi`);
    expect(seedPost.status).toBe(503);
    expect(((await (await fetch(`${url}/api/rooms/lobby`)).json()) as { members: string[] }).members).toEqual(["alice", "bob"]);
    expect((await fetch(`${url}/api/rooms/cellar`)).status).toBe(404);
    expect((await fetch(`${url}/api/rooms/attic`)).status).toBe(404);

    polling = false;
    await poller;
    // Reads go on: whatever bob is owed he gets, and the failed post is not among it.
    const last = await apiPoll(url, bob.auth, { cursor, timeout: 0 });
    expect(last.status).toBe(200);
    for (const m of last.messages) if (m.type === "message") seen.push(m.text);
    expect(seen).toEqual(answered);
    const history = (await (await fetch(`${url}/api/rooms/lobby/messages?limit=1000`)).json()) as { messages: ChatMessage[] };
    expect(history.messages.filter((m) => m.type === "message").map((m) => m.text)).toEqual(answered);
    expect(seen).not.toContain(failed!.text);
  }, 30_000);

  it("a start on a full disk says so in one line, exits 1 and leaves no file behind", async () => {
    const fs = tmpfs();
    const existing = join(fs.dir, "existing");
    // A directory with a log already, and one the start would make.
    const first = hubWithLog(existing);
    first.hub.post(first.hub.sessionForName("alice", {}), { text: "kept" });
    await first.log.close();
    const logBefore = readFileSync(join(existing, LOG_FILE));
    fs.fill();
    for (const dir of [join(fs.dir, "fresh"), existing]) {
      const { code, stderr } = await refusedStart(["--data-dir", dir], children);
      expect(code).toBe(1);
      expect(stderr.endsWith("\n")).toBe(true);
      expect(stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(stderr).toMatch(/^pollchat: .*(ENOSPC|no space)/);
    }
    expect(readdirSync(fs.dir).sort()).toEqual(["existing", "filler"]);
    expect(readdirSync(existing)).toEqual([LOG_FILE]);
    expect(readFileSync(join(existing, LOG_FILE))).toEqual(logBefore);
  }, 30_000);
});

describe("one server per --data-dir (item 6)", () => {
  const cliArgs = (dir: string): string[] => ["--port", "0", "--host", "127.0.0.1", "--data-dir", dir, "--log-level", "warn"];

  it("a second server on the directory refuses to start while the first lives; after kill -9 a restart takes over", async () => {
    const dir = tempDir();
    const first = await runCli(cliArgs(dir), { children });
    const second = await refusedStart(["--data-dir", dir], children);
    expect(second.code).toBe(1);
    expect(second.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(second.stderr).toMatch(new RegExp(`^pollchat: .*in use by pollchat pid ${first.child.pid}\\b`));
    // The first goes on, its log whole.
    expect((await fetch(`${first.url}/?name=alice&message=still%20mine`)).status).toBe(200);
    first.child.kill("SIGKILL");
    await first.exited;
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
    const third = await runCli(cliArgs(dir), { children });
    const history = (await (await fetch(`${third.url}/api/rooms/lobby/messages`)).json()) as { messages: ChatMessage[] };
    expect(history.messages.map((m) => m.text)).toContain("still mine");
    expect(await cliStops(third)).toBe(0);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  }, 30_000);

  it("a lock of a dead pid, or of a live pid with another start time (a recycled pid), does not block", async () => {
    const dir = tempDir();
    const gone = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    children.add(gone);
    await once(gone, "exit");
    const me = identify(process.pid);
    const locks = [
      { pid: gone.pid },
      { pid: gone.pid, start: "12345" },
      // This very process, but started at another time: its pid was recycled.
      { ...me, pid: process.pid, start: "1" },
    ];
    for (const lock of locks) {
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify(lock) + "\n");
      const run = await runCli(cliArgs(dir), { children });
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid).toBe(run.child.pid);
      expect([await cliStops(run), run.stderr()]).toEqual([0, ""]);
    }
    expect(readdirSync(dir)).toEqual([LOG_FILE]);
  }, 30_000);

  it("the same process opening a directory twice is refused; close() gives the directory up", async () => {
    const dir = tempDir();
    const a = createChatServer({ dataDir: dir });
    expect(() => createChatServer({ dataDir: dir })).toThrow(/in use by this process/);
    expect(() => MessageLog.open(dir, { maxQueue: 10, history: 10 })).toThrow(/in use/);
    await a.close();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    const b = createChatServer({ dataDir: dir });
    await b.close();
  });

  it("knows a live process by its pid and start time, and a dead or recycled one", async () => {
    const me = identify(process.pid);
    expect(me?.start).toMatch(/^\d+$/);
    expect(isAlive(me!)).toBe(true);
    expect(isAlive({ ...me!, start: "1" })).toBe(false);
    expect(isAlive({ ...me!, boot: "another-boot" })).toBe(false);
    const gone = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    children.add(gone);
    await once(gone, "exit");
    expect(isAlive({ pid: gone.pid! })).toBe(false);
    // Without a start time only the pid can be asked about: this process lives.
    expect(isAlive({ pid: process.pid })).toBe(true);
  });
});
