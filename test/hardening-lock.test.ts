import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { DirLock, LOCK_FILE, parseHolder, type LeaseOptions } from "../src/store/dir-lock.js";
import { CLI, ensureBuilt, killChildren } from "./helpers.js";
import { runCli } from "./hardening-store-helpers.js";

/**
 * One server per --data-dir across pid namespaces and hosts (review finding 4
 * of issue 10): the lock is a lease. A holder in our pid namespace on this boot
 * is judged by pid and start time at once; any other by its lease (its mtime,
 * refreshed every 2 s, stale after 10 s unrefreshed).
 */

beforeAll(ensureBuilt, 120_000);

const children = new Set<ChildProcess>();
const dirs: string[] = [];
const locks: DirLock[] = [];
afterEach(async () => {
  for (const lock of locks.splice(0)) lock.release();
  await killChildren(children);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "pollchat-lock-"));
  dirs.push(dir);
  return dir;
}

const BOOT = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
const OUR_NS = readlinkSync("/proc/self/ns/pid");
const lockPath = (dir: string): string => join(dir, LOCK_FILE);
const cliArgs = (dir: string): string[] => ["--port", "0", "--host", "127.0.0.1", "--data-dir", dir, "--log-level", "warn"];

/** A lock as a server in another pid namespace writes it: pid 1 there, and its lease. */
function foreignLock(dir: string, fields: Record<string, unknown> = {}, mtimeMs = Date.now()): void {
  writeFileSync(lockPath(dir), JSON.stringify({ pid: 1, start: "42", boot: BOOT, ns: "pid:[1]", host: "elsewhere", lease: 2000, ...fields }) + "\n");
  utimesSync(lockPath(dir), new Date(mtimeMs), new Date(mtimeMs));
}

/** `unshare --pid --fork --mount-proc node dist/cli.js ...args`: pollchat as pid 1 of a namespace of its own, as in a container. */
function inNamespace(args: string[]): { child: ChildProcess; listening: Promise<string>; stderr: () => string; exited: Promise<number | null> } {
  // --kill-child: the server goes with unshare when the test kills it.
  const child = spawn("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", process.execPath, CLI, ...args], {
    env: { PATH: process.env.PATH },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  // No unshare (ENOENT) fails the test loudly: CI runs as root where util-linux has it.
  const failed = once(child, "error").then(([error]) => Promise.reject(error as Error));
  const exited = Promise.race([once(child, "exit").then(([code]) => code as number | null), failed]);
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${err}`)), 10_000);
    child.stdout!.on("data", () => {
      const match = /^pollchat listening on (http:\/\/\S+)$/m.exec(out);
      if (match) (clearTimeout(timer), resolve(match[1]!));
    });
    exited.then(
      (code) => (clearTimeout(timer), reject(new Error(`exited ${code} before listening; stderr: ${err}`))),
      (error: unknown) => (clearTimeout(timer), reject(error as Error)),
    );
  });
  listening.catch(() => {});
  return { child, listening, stderr: () => err, exited };
}

/** The pid, in our namespace, of unshare's one child (the server). */
function childOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ");
  expect(children).toHaveLength(1);
  return Number(children[0]);
}

describe("servers in other pid namespaces (containers)", () => {
  it("two servers under unshare --pid on one directory: the second refuses in one line, the first serves on and gives the directory up when stopped", async () => {
    const dir = tempDir();
    const first = inNamespace(cliArgs(dir));
    const url = await first.listening;
    const held = parseHolder(readFileSync(lockPath(dir), "utf8"))!;
    // pid 1 of a namespace that is not ours: its pid says nothing here.
    expect(held.pid).toBe(1);
    expect(held.ns).toMatch(/^pid:\[\d+\]$/);
    expect(held.ns).not.toBe(OUR_NS);

    const started = Date.now();
    const second = inNamespace(cliArgs(dir));
    await expect(second.listening).rejects.toThrow(/exited 1 before listening/);
    // It saw the lease refreshed (every 2 s): it refuses well before the lease could lapse.
    expect(Date.now() - started).toBeLessThan(8000);
    if (second.child.stderr!.readable) await once(second.child.stderr!, "close");
    expect(second.stderr().trimEnd().split("\n")).toHaveLength(1);
    expect(second.stderr()).toMatch(/^pollchat: .* is in use by pollchat pid 1 on \S+ in another pid namespace or on another host \(pollchat\.lock\)/);

    expect((await fetch(`${url}/?name=alice&message=still%20mine`)).status).toBe(200);
    // SIGTERM to the server itself: it closes and removes its lock, so the next start waits for nothing.
    process.kill(childOf(first.child.pid!), "SIGTERM");
    expect(await first.exited).toBe(0);
    expect(existsSync(lockPath(dir))).toBe(false);
    const next = await runCli(cliArgs(dir), { children });
    const history = (await (await fetch(`${next.url}/api/rooms/lobby/messages`)).json()) as { messages: { text: string }[] };
    expect(history.messages.map((m) => m.text)).toContain("still mine");
  }, 30_000);

  it("a lock of a holder in another namespace that stopped refreshing long ago is taken over at once", async () => {
    const dir = tempDir();
    foreignLock(dir, {}, Date.now() - 60_000);
    const started = Date.now();
    const run = await runCli(cliArgs(dir), { children });
    // Same boot, same clock: the lease is 60 s old, stale without waiting.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(parseHolder(readFileSync(lockPath(dir), "utf8"))!.pid).toBe(run.child.pid);
    expect(run.stderr()).toBe("");
  }, 15_000);
});

describe("DirLock lease (short timings)", () => {
  const fast: LeaseOptions = { refreshMs: 100, staleMs: 600, waitMs: 1200 };

  /** DirLock.acquire, timed; a lock it takes is released after the test. */
  function acquire(dir: string, options: LeaseOptions = fast): { lock?: DirLock; error?: Error; ms: number } {
    const started = Date.now();
    try {
      const lock = DirLock.acquire(dir, options);
      locks.push(lock);
      return { lock, ms: Date.now() - started };
    } catch (error) {
      return { error: error as Error, ms: Date.now() - started };
    }
  }

  it("a fresh lease nobody refreshes is waited out, then taken over", () => {
    const dir = tempDir();
    foreignLock(dir);
    const { lock, ms } = acquire(dir);
    expect(lock).toBeDefined();
    expect(ms).toBeGreaterThanOrEqual(500);
    expect(ms).toBeLessThan(3000);
    expect(parseHolder(readFileSync(lockPath(dir), "utf8"))!.pid).toBe(process.pid);
  });

  it("a lease from another boot (another host's clock) is watched for 1.5 refreshes even when it looks old", () => {
    const dir = tempDir();
    foreignLock(dir, { boot: "another-boot" }, Date.now() - 60_000);
    const { lock, ms } = acquire(dir, { ...fast, refreshMs: 400 });
    expect(lock).toBeDefined();
    expect(ms).toBeGreaterThanOrEqual(600);
    expect(ms).toBeLessThan(3000);
  });

  it("a lease kept fresh by a live holder is refused as soon as a refresh is seen", async () => {
    const dir = tempDir();
    foreignLock(dir);
    // Another process refreshes it, as a server in another container would.
    const holder = spawn(
      process.execPath,
      ["-e", `const fs = require("fs"); setInterval(() => fs.utimesSync(${JSON.stringify(lockPath(dir))}, new Date(), new Date()), 30); console.log("on");`],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    children.add(holder);
    await once(holder.stdout!, "data");
    // Stale only after 4 s: a refresh seen late on a busy machine is still told from a lapsed lease.
    const { error, ms } = acquire(dir, { refreshMs: 400, staleMs: 4000, waitMs: 6000 });
    expect(error?.message).toMatch(/is in use by pollchat pid 1 on elsewhere in another pid namespace or on another host \(pollchat\.lock\), its lease kept fresh/);
    expect(error?.message).not.toContain("\n");
    expect(ms).toBeLessThan(3500);
    expect(parseHolder(readFileSync(lockPath(dir), "utf8"))!.pid).toBe(1);
  }, 15_000);

  it("a lease that never lapses (a clock ahead of ours) is refused once waitMs pass", () => {
    const dir = tempDir();
    foreignLock(dir, {}, Date.now() + 60_000);
    const { error, ms } = acquire(dir);
    expect(error?.message).toMatch(/its lease did not lapse within 1\.2 s \(stale after 0\.6 s unrefreshed\): one server per directory$/);
    expect(ms).toBeGreaterThanOrEqual(1200);
    expect(ms).toBeLessThan(3000);
    expect(parseHolder(readFileSync(lockPath(dir), "utf8"))!.pid).toBe(1);
  });

  it("the holder refreshes its lease until release(); a lock someone replaced is reported and left alone", async () => {
    const dir = tempDir();
    const warnings: string[] = [];
    const lock = DirLock.acquire(dir, { refreshMs: 20, warn: (line) => warnings.push(line) });
    locks.push(lock);
    const old = Date.now() - 60_000;
    utimesSync(lockPath(dir), new Date(old), new Date(old));
    const deadline = Date.now() + 3000;
    while (statSync(lockPath(dir)).mtimeMs < old + 50_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(statSync(lockPath(dir)).mtimeMs).toBeGreaterThan(old + 50_000);
    expect(lock.refreshing).toBe(true);
    lock.release();
    expect(lock.refreshing).toBe(false);
    expect(existsSync(lockPath(dir))).toBe(false);

    const second = DirLock.acquire(dir, { refreshMs: 20, warn: (line) => warnings.push(line) });
    locks.push(second);
    writeFileSync(join(dir, "theirs"), "{}\n");
    renameSync(join(dir, "theirs"), lockPath(dir));
    while (second.refreshing && Date.now() < deadline + 3000) await new Promise((r) => setTimeout(r, 10));
    expect(second.refreshing).toBe(false);
    expect(warnings).toEqual([expect.stringMatching(/pollchat\.lock was replaced by someone else: this server no longer holds its directory alone$/)]);
    second.release();
    expect(readFileSync(lockPath(dir), "utf8")).toBe("{}\n");
  });
});
