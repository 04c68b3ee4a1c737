import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, type RunningCli } from "./helpers.js";

/**
 * --data-dir through the real CLI process (spec §7): posts, `kill -9` right
 * after the last answer, a restart on the same directory.
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const LOG = "pollchat.log";

beforeAll(ensureBuilt, 120_000);

const children = new Set<ChildProcess>();
const dirs: string[] = [];
afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pollchat-persist-"));
  dirs.push(dir);
  return dir;
}

const runCli = cliPerTest();

/** `node dist/cli.js --port 0 ...args` on 127.0.0.1, resolved once it prints its listening line. */
function startCli(args: string[], cwd = ROOT): Promise<RunningCli> {
  return runCli(CLI, ["--port", "0", "--host", "127.0.0.1", "--rate", "100000", ...args], { cwd });
}

async function kill9(running: RunningCli): Promise<void> {
  const exited = once(running.child, "exit");
  running.child.kill("SIGKILL");
  await exited;
}

async function stop(running: RunningCli): Promise<number | null> {
  const exited = once(running.child, "exit");
  running.child.kill("SIGTERM");
  const [code] = await exited;
  return code as number | null;
}

async function seedPost(url: string, name: string, text: string, room?: string): Promise<number> {
  const res = await fetch(`${url}/?name=${name}&message=${encodeURIComponent(text)}${room ? `&room=${room}` : ""}`);
  const body = await res.text();
  expect(res.status, body).toBe(200);
  const match = /^ok (\d+)\n$/.exec(body);
  expect(match, body).not.toBeNull();
  return Number(match![1]);
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(url, { headers });
  expect(res.status, url).toBe(200);
  return res.json();
}

async function apiJoin(url: string, name: string): Promise<{ token: string; cursor: number; auth: Record<string, string> }> {
  const res = await fetch(`${url}/api/join`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name }) });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { token: string; cursor: number };
  return { ...body, auth: { authorization: `Bearer ${body.token}` } };
}

async function apiPost(url: string, auth: Record<string, string>, text: string): Promise<number> {
  const res = await fetch(`${url}/api/messages`, { method: "POST", headers: { "content-type": "application/json", ...auth }, body: JSON.stringify({ text }) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

type Msg = { id: number; type: string; text: string; from: string };

async function history(url: string, room = "lobby", query = "limit=1000"): Promise<Msg[]> {
  return (await getJson(`${url}/api/rooms/${room}/messages?${query}`)).messages;
}

/** Four posters at once, each through both endpoints; resolves with every acknowledged id and text. */
async function postBurst(url: string, tokens: Record<string, string>[], label: string, perPoster: number): Promise<Map<number, string>> {
  const acked = new Map<number, string>();
  await Promise.all(
    ["p1", "p2", "p3", "p4"].map(async (name, i) => {
      for (let n = 0; n < perPoster; n++) {
        const text = `${label} ${name} ${n}`;
        const id = i < 2 ? await seedPost(url, name, text) : await apiPost(url, tokens[i - 2]!, text);
        acked.set(id, text);
      }
    }),
  );
  return acked;
}

describe("--data-dir through a crash", () => {
  it("keeps every acknowledged message across kill -9: history, ids, and a cursor's rest", async () => {
    const dir = await tempDir();
    let server = await startCli(["--data-dir", dir]);
    const bob = await apiJoin(server.url, "bob");
    const carol = await fetch(`${server.url}/?name=carol&timeout=0`);
    expect(carol.status).toBe(200);
    await carol.text();
    const p3 = await apiJoin(server.url, "p3");
    const p4 = await apiJoin(server.url, "p4");
    const first = await postBurst(server.url, [p3.auth, p4.auth], "before", 5);

    // bob reads the first half and acknowledges it by cursor; the second half he never sees.
    const seen = await getJson(`${server.url}/api/poll?cursor=${bob.cursor}&timeout=0`, bob.auth);
    const seenIds = (seen.messages as Msg[]).filter((m) => m.type === "message").map((m) => m.id);
    expect(seenIds.sort()).toEqual([...first.keys()].sort());
    const cursor = seen.cursor as number;
    await getJson(`${server.url}/api/poll?cursor=${cursor}&timeout=0`, bob.auth);
    const second = await postBurst(server.url, [p3.auth, p4.auth], "after", 5);
    await kill9(server);

    server = await startCli(["--data-dir", dir]);
    expect(server.stderr()).not.toMatch(/set aside/);
    const kept = await history(server.url);
    const all = new Map([...first, ...second]);
    const texts = new Map(kept.filter((m) => m.type === "message").map((m) => [m.id, m.text]));
    expect(texts).toEqual(all);

    // Ids go on above every id issued before the crash.
    const next = await seedPost(server.url, "p1", "first after restart");
    expect(next).toBeGreaterThan(Math.max(...all.keys()));

    // bob's token still works; his old cursor gets exactly what he missed, no gap.
    const rest = await getJson(`${server.url}/api/poll?cursor=${cursor}&timeout=0`, bob.auth);
    const restMessages = rest.messages as Msg[];
    expect(restMessages.some((m) => m.type === "gap")).toBe(false);
    expect(restMessages.every((m) => m.id > cursor)).toBe(true);
    expect(restMessages.filter((m) => m.type === "message").map((m) => m.id)).toEqual([...second.keys(), next].sort((a, b) => a - b));

    // carol (the seed's way, no cursor) gets every message since her first poll.
    const carolLines = await (await fetch(`${server.url}/?name=carol&timeout=0`)).text();
    for (const text of all.values()) expect(carolLines).toContain(`: ${text}\n`);

    // A cursor older than what is kept for bob gets a gap first.
    const old = await getJson(`${server.url}/api/poll?cursor=1&timeout=0`, bob.auth);
    expect(old.messages[0].type).toBe("gap");
    expect(await stop(server)).toBe(0);
  }, 30_000);

  it("starts on a log cut mid-line: loads the records before the cut and sets the torn line aside", async () => {
    const dir = await tempDir();
    let server = await startCli(["--data-dir", dir]);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await seedPost(server.url, "alice", `m${i}`));
    await kill9(server);
    const log = join(dir, LOG);
    const text = await readFile(log, "utf8");
    const lastLine = text.slice(text.lastIndexOf("\n", text.length - 2) + 1);
    expect(lastLine).toContain('"text":"m4"');
    // A crash in the middle of writing the last line.
    await truncate(log, Buffer.byteLength(text) - Math.floor(Buffer.byteLength(lastLine) / 2));

    server = await startCli(["--data-dir", dir]);
    expect(server.stderr()).toMatch(/set aside 1 bad line \(\d+ bytes\) of .*pollchat\.log into .*pollchat\.log\.set-aside-\d+-\d+; loaded \d+ records/);
    expect((await history(server.url)).filter((m) => m.type === "message").map((m) => m.text)).toEqual(["m0", "m1", "m2", "m3"]);
    const aside = (await readdir(dir)).filter((f) => f.startsWith(`${LOG}.set-aside-`));
    expect(aside).toHaveLength(1);
    const torn = lastLine.slice(0, lastLine.length - Math.floor(Buffer.byteLength(lastLine) / 2));
    expect(await readFile(join(dir, aside[0]!), "utf8")).toBe(`${torn}\n`);
    // The torn tail is gone from the log: new lines do not follow it, and the next start is clean.
    const after = await seedPost(server.url, "alice", "m5");
    expect(after).toBeGreaterThan(ids[3]!);
    await kill9(server);
    server = await startCli(["--data-dir", dir]);
    expect(server.stderr()).toBe("");
    expect((await history(server.url)).filter((m) => m.type === "message").map((m) => m.text)).toEqual(["m0", "m1", "m2", "m3", "m5"]);
    expect(await stop(server)).toBe(0);
  }, 30_000);

  it("starts on a log with a garbage line: sets that line aside and loads everything else", async () => {
    const dir = await tempDir();
    let server = await startCli(["--data-dir", dir]);
    await seedPost(server.url, "alice", "one");
    await seedPost(server.url, "alice", "two");
    await kill9(server);
    const log = join(dir, LOG);
    // Garbage in the middle, valid records on either side: not JSON, and JSON of the wrong shape.
    const lines = (await readFile(log, "utf8")).split("\n");
    const at = lines.findIndex((l) => l.includes('"text":"one"')) + 1;
    lines.splice(at, 0, "this is not a record {{{", '{"k":"msg","m":{"id":"x"}}');
    await writeFile(log, lines.join("\n"));
    server = await startCli(["--data-dir", dir]);
    expect(server.stderr()).toMatch(/set aside 2 bad lines/);
    expect((await history(server.url)).filter((m) => m.type === "message").map((m) => m.text)).toEqual(["one", "two"]);
    expect(await stop(server)).toBe(0);
  }, 30_000);

  it("compacts to the newest --history messages per room, kept across a restart", async () => {
    const dir = await tempDir();
    let server = await startCli(["--data-dir", dir, "--history", "5", "--max-queue", "3"]);
    const posted: Record<string, string[]> = { a: [], b: [] };
    for (let i = 0; i < 20; i++) {
      for (const room of ["a", "b"]) {
        await seedPost(server.url, `poster-${room}`, `${room}${i}`, room);
        posted[room]!.push(`${room}${i}`);
      }
    }
    const logBefore = (await readFile(join(dir, LOG), "utf8")).trim().split("\n").length;
    await kill9(server);
    server = await startCli(["--data-dir", dir, "--history", "5", "--max-queue", "3"]);
    for (const room of ["a", "b"]) {
      expect((await history(server.url, room)).map((m) => m.text)).toEqual(posted[room]!.slice(-5));
    }
    // The start rewrote the log from the kept state: a head, 5 per room, the sessions and their queues.
    const lines = (await readFile(join(dir, LOG), "utf8")).trim().split("\n");
    expect(lines[0]).toMatch(/^\{"k":"head"/);
    expect(lines.length).toBeLessThan(20);
    expect(lines.length).toBeLessThan(logBefore);
    expect(await stop(server)).toBe(0);
    server = await startCli(["--data-dir", dir, "--history", "5", "--max-queue", "3"]);
    expect((await history(server.url, "a")).map((m) => m.text)).toEqual(posted.a!.slice(-5));
    expect(await stop(server)).toBe(0);
  }, 30_000);

  it("touches no file without --data-dir", async () => {
    const cwd = await tempDir();
    const server = await startCli([], cwd);
    await seedPost(server.url, "alice", "hello");
    await (await fetch(`${server.url}/?name=alice&timeout=0`)).text();
    expect(await stop(server)).toBe(0);
    expect(await readdir(cwd)).toEqual([]);
  }, 30_000);
});

describe("--data-dir with a bad directory", () => {
  it("refuses to start when DIR cannot be a directory, with a clear message", async () => {
    const dir = await tempDir();
    const file = join(dir, "plain-file");
    await writeFile(file, "x");
    const child = spawn(process.execPath, [CLI, "--port", "0", "--data-dir", file], { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    const [code] = await once(child, "exit");
    expect(code).not.toBe(0);
    expect(err).toMatch(/pollchat: .*plain-file/);
  }, 30_000);
});
