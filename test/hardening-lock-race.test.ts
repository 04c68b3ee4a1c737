import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { DirLock, LOCK_FILE, parseHolder } from "../src/store/dir-lock.js";
import { nodeFs, type LockFs } from "../src/store/lock-files.js";
import { LOG_FILE } from "../src/store/message-log.js";
import { CLI, ensureBuilt, killChildren } from "./helpers.js";

/**
 * One server per --data-dir when several start at once on a stale lock
 * (README "Persistence", one server per directory): the take-over is atomic,
 * so of any number of starters exactly one holds DIR, whatever the order in
 * which their file-system calls interleave. Proven twice: three starters in
 * this process, each paused at every point of another's take-over through
 * the lock's injected file-system object; and eight real CLI processes at once.
 */

beforeAll(ensureBuilt, 120_000);

const children = new Set<ChildProcess>();
const dirs: string[] = [];
afterEach(async () => {
  await killChildren(children);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "pollchat-lockrace-"));
  dirs.push(dir);
  return dir;
}

const BOOT = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
const OUR_NS = readlinkSync("/proc/self/ns/pid");

/** A pid no process has now (a child that ended), for a lock left by a crash. */
async function deadPid(): Promise<number> {
  const gone = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  children.add(gone);
  await once(gone, "exit");
  return gone.pid!;
}

/** The lock of a server of this namespace and boot that crashed (kill -9): stale at once, judged by its pid. */
function staleLock(dir: string, pid: number): void {
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, start: "1", boot: BOOT, ns: OUR_NS, host: "here", lease: 2000 }) + "\n");
}

/**
 * node:fs, with `before()` called ahead of every call: the test starts other
 * starters there. A sync is a pause point but syncs nothing (the order of
 * calls is what this test is about; a thousand fsyncs only make it slow).
 */
function hooked(before: () => void): LockFs {
  const f = { ...nodeFs, fdatasyncSync: () => {} } as Record<keyof LockFs, (...args: never[]) => unknown>;
  for (const key of Object.keys(nodeFs) as (keyof LockFs)[]) {
    const real = f[key]!;
    f[key] = (...args: never[]) => (before(), real(...args));
  }
  return f as unknown as LockFs;
}

type Outcome = { lock: DirLock } | { error: Error };

/**
 * Starters A, B and C on one directory holding a stale lock, in this process.
 * Counting the file-system calls of all three together, B starts just before
 * call `b` and C just before call `c`: each runs to its end right there (acquire
 * is synchronous), so A is paused at that point of its own take-over (or B is,
 * when C starts during B). Who has not started when the others are done starts then.
 */
function race(dir: string, b: number, c: number): { outcomes: Map<string, Outcome>; calls: number } {
  const outcomes = new Map<string, Outcome>();
  let calls = 0;
  const waiting = [
    { name: "B", at: b },
    { name: "C", at: c },
  ];
  const startDue = (force: boolean): void => {
    while (waiting.length > 0 && (force || calls >= waiting[0]!.at)) run(waiting.shift()!.name);
  };
  const fs = hooked(() => {
    calls++;
    startDue(false);
  });
  const run = (name: string): void => {
    try {
      outcomes.set(name, { lock: DirLock.acquire(dir, { fs, refreshMs: 60_000 }) });
    } catch (error) {
      outcomes.set(name, { error: error as Error });
    }
  };
  run("A");
  startDue(true);
  return { outcomes, calls };
}

describe("simultaneous starters on a stale lock: exactly one holds the directory", () => {
  it("three starters, each pause point of one starter's take-over given to the others: one lock, the others refused", async () => {
    const pid = await deadPid();
    let schedules = 0;
    const dir = tempDir();
    // b and c range over every call of the three together, until B starts only once A is done (a run makes
    // a few dozen calls; the bound only guards against a loop that would never end).
    let bDone = false;
    for (let b = 1; !bDone && b < 400; b++) {
      for (let c = b; c < 400; c++) {
        for (const name of readdirSync(dir)) rmSync(join(dir, name));
        staleLock(dir, pid);
        const { outcomes, calls } = race(dir, b, c);
        const held = [...outcomes].filter((entry): entry is [string, { lock: DirLock }] => "lock" in entry[1]);
        const refused = [...outcomes].filter((entry): entry is [string, { error: Error }] => "error" in entry[1]);
        const where = `B before call ${b}, C before call ${c}`;
        // C started only after all were done: this and every later c are one schedule, checked once.
        const last = c > calls;
        if (!last || c === b) schedules++;
        bDone = b > calls;
        try {
          expect(held.map(([name]) => name), where).toHaveLength(1);
          const [, { lock }] = held[0]!;
          // The lock file is the winner's: its lease goes on (a replaced lock would be reported lost).
          lock.refresh();
          expect(lock.refreshing, where).toBe(true);
          expect(parseHolder(readFileSync(lock.path, "utf8"))?.pid, where).toBe(process.pid);
          for (const [, { error }] of refused) {
            expect(error.message, where).toMatch(/ is in use by this process \(.*\): one server per directory$/);
          }
          // Nothing of the take-over is left beside the lock: no claim, no file set aside, no temporary file.
          expect(readdirSync(dir), where).toEqual([LOCK_FILE]);
        } finally {
          for (const [, { lock }] of held) lock.release();
        }
        if (last) break;
      }
    }
    // Every pause point was visited: all three orders and each call of a take-over.
    expect(bDone).toBe(true);
    expect(schedules).toBeGreaterThan(100);
  }, 120_000);

  it("a claim is dated when it is made, not when the starter wrote its lease (it may have waited out a lease for 12 s)", async () => {
    const dir = tempDir();
    staleLock(dir, await deadPid());
    const started = Date.now();
    let claimAge: number | undefined;
    let claim: string | undefined;
    const fs = hooked(() => {
      if (claim !== undefined && claimAge === undefined) claimAge = Date.now() - statSync(claim).mtimeMs;
    });
    const link = fs.linkSync;
    fs.linkSync = (existing, name) => {
      // The first link is the lock's own attempt, made with the lease written a minute ago (as after a long wait).
      if (!name.includes(".take-")) utimesSync(existing, new Date(started - 60_000), new Date(started - 60_000));
      link(existing, name);
      if (name.includes(".take-")) claim = name;
    };
    const lock = DirLock.acquire(dir, { fs });
    lock.release();
    expect(claimAge).toBeDefined();
    expect(claimAge!).toBeLessThan(5000);
  });

  /** Starter A claims the stale lock, then dies (every later call fails, as after kill -9): its claim stays. Returns the claim's path. */
  function claimThenDie(dir: string): string {
    let claim: string | undefined;
    const fs = hooked(() => {
      if (claim !== undefined) throw new Error("died");
    });
    const link = fs.linkSync;
    fs.linkSync = (existing, name) => {
      link(existing, name);
      if (name.includes(".take-")) claim = name;
    };
    expect(() => DirLock.acquire(dir, { fs })).toThrow("died");
    expect(claim).toBeDefined();
    return claim!;
  }

  it("a claim whose maker died midway is passed over; one whose maker lives is refused while it lives", async () => {
    const pid = await deadPid();
    const dir = tempDir();
    staleLock(dir, pid);
    const claim = claimThenDie(dir);
    // Its maker is this process, alive: the take-over is its, the next starter refuses.
    const refusal = / is in use by this process \(taking over a stale pollchat\.lock\): one server per directory$/;
    expect(() => DirLock.acquire(dir)).toThrow(refusal);
    expect(parseHolder(readFileSync(join(dir, LOCK_FILE), "utf8"))?.pid).toBe(pid);
    // Now as if its maker were gone (a dead pid): the next claim is made, the lock taken, every claim removed.
    writeFileSync(claim, JSON.stringify({ pid, start: "1", boot: BOOT, ns: OUR_NS, lease: 2000 }) + "\n");
    const lock = DirLock.acquire(dir);
    try {
      expect(parseHolder(readFileSync(join(dir, LOCK_FILE), "utf8"))?.pid).toBe(process.pid);
      // Besides the lock only the dead starter's own lease file is left, as by any start killed midway.
      expect(readdirSync(dir).sort()).toEqual([LOCK_FILE, expect.stringMatching(/^pollchat\.lock\.\d+-[0-9a-f]+\.tmp$/)]);
    } finally {
      lock.release();
    }
  });
});

describe("eight CLI processes started at once on one directory", () => {
  /** Starts them together; resolves once each has printed its listening line or exited. */
  type Started = { listening: ChildProcess[]; refused: { code: number | null; stderr: string }[] };
  async function startAll(dir: string, count: number): Promise<Started> {
    const runs = Array.from({ length: count }, () => {
      const child = spawn(process.execPath, [CLI, "--port", "0", "--host", "127.0.0.1", "--data-dir", dir, "--log-level", "warn"], {
        env: { PATH: process.env.PATH },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.add(child);
      let out = "";
      let err = "";
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
      return new Promise<{ child: ChildProcess; listening: boolean; code: number | null; stderr: string }>((resolve) => {
        child.stdout!.setEncoding("utf8").on("data", (d: string) => {
          out += d;
          if (out.includes("pollchat listening on ")) resolve({ child, listening: true, code: null, stderr: err });
        });
        child.on("close", (code: number | null) => resolve({ child, listening: false, code, stderr: err }));
      });
    });
    const results = await Promise.all(runs);
    return {
      listening: results.filter((r) => r.listening).map((r) => r.child),
      refused: results.filter((r) => !r.listening).map(({ code, stderr }) => ({ code, stderr })),
    };
  }

  for (const lock of ["a stale lock (a server killed with -9)", "no lock"] as const) {
    it(`on ${lock}: one serves, seven exit 1 with the lock's one line`, async () => {
      const dir = tempDir();
      if (lock !== "no lock") staleLock(dir, await deadPid());
      const { listening, refused } = await startAll(dir, 8);
      expect(listening).toHaveLength(1);
      expect(refused).toHaveLength(7);
      const winner = listening[0]!.pid!;
      for (const { code, stderr } of refused) {
        expect(code).toBe(1);
        expect(stderr.trimEnd().split("\n")).toHaveLength(1);
        expect(stderr).toMatch(new RegExp(`^pollchat: ${dir} is in use by pollchat pid ${winner} \\(.*\\): one server per directory\\n$`));
      }
      expect(parseHolder(readFileSync(join(dir, LOCK_FILE), "utf8"))?.pid).toBe(winner);
      expect(readdirSync(dir).sort()).toEqual([LOG_FILE, LOCK_FILE].sort());
    }, 60_000);
  }
});
