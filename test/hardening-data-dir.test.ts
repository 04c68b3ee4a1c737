import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI, ensureBuilt, killChildren } from "./helpers.js";
import { mountTmpfs } from "./hardening-store-helpers.js";

/**
 * A --data-dir the server cannot use ends the start in one line on stderr,
 * exit 1, at once (README "Persistence": a start that cannot use DIR): a path
 * on /proc or /sys (where Node's recursive mkdir used to loop for ever), a
 * file where a directory should be, a read-only file system, a name too long,
 * a full disk. Each start runs as a real CLI process; the mounts are made by
 * the test (it runs as root, as CI does) and unmounted after it, even when it fails.
 */

beforeAll(ensureBuilt, 120_000);

const children = new Set<ChildProcess>();
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await killChildren(children);
  // Last made, first undone: a mount before the directory it is on.
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** How long a refused start may take: it takes well under a second; the old code never ended on /proc. */
const BOUND_MS = 5000;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "pollchat-datadir-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A read-only mount on a new directory: a tmpfs mounted ro, or a bind of a writable directory remounted ro. */
function readOnlyMount(kind: "tmpfs" | "bind"): string {
  const dir = tempDir();
  const target = join(dir, "mnt");
  mkdirSync(target);
  if (kind === "tmpfs") {
    execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", target]);
  } else {
    const source = join(dir, "source");
    mkdirSync(source);
    execFileSync("mount", ["--bind", source, target]);
    // A bind's own flags change only by a remount of the bind: the source stays writable.
    try {
      execFileSync("mount", ["-o", "remount,ro,bind", target]);
    } catch (error) {
      execFileSync("umount", [target]);
      throw error;
    }
  }
  cleanups.push(() => execFileSync("umount", [target]));
  return target;
}

/** `node dist/cli.js --port 0 --data-dir DIR`, expected to refuse: its exit code (or "still running" at the bound) and output. */
async function start(dir: string): Promise<{ code: number | null | "still running"; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [CLI, "--port", "0", "--host", "127.0.0.1", "--data-dir", dir], {
    env: { PATH: process.env.PATH },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const closed = once(child, "close").then(() => child.exitCode);
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<"still running">((resolve) => (timer = setTimeout(() => resolve("still running"), BOUND_MS)));
  const code = await Promise.race([closed, bound]);
  clearTimeout(timer);
  if (code === "still running") child.kill("SIGKILL");
  return { code, stderr: err, stdout: out };
}

/** The start refused in one line naming the problem, exit 1, no listening line. */
async function expectRefused(dir: string, problem: RegExp): Promise<string> {
  const { code, stderr, stdout } = await start(dir);
  expect({ code, stdout }).toEqual({ code: 1, stdout: "" });
  expect(stderr.endsWith("\n")).toBe(true);
  expect(stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(stderr).toMatch(/^pollchat: data-dir .*: cannot start: /);
  expect(stderr).toMatch(problem);
  return stderr;
}

describe("a --data-dir that cannot be used ends the start in one line, exit 1", () => {
  it("a path under /proc or /sys: refused by name, no mkdir tried", async () => {
    for (const dir of ["/proc/nope", "/proc/self/nope/deeper", "/proc", "/sys/nope"]) {
      await expectRefused(dir, /: (\/proc|\/sys) is a virtual file system of the kernel: it keeps no data$/m);
    }
  }, 30_000);

  it("a proc file system mounted elsewhere, or a link to /proc: refused by its type", async () => {
    const parent = tempDir();
    const target = join(parent, "proc");
    mkdirSync(target);
    execFileSync("mount", ["-t", "proc", "proc", target]);
    cleanups.push(() => execFileSync("umount", [target]));
    await expectRefused(join(target, "nope"), /: \S+\/proc is on a proc file system, which keeps no data$/m);
    const link = join(parent, "link");
    symlinkSync("/proc", link);
    await expectRefused(link, /: \S+\/link is on a proc file system, which keeps no data$/m);
    await expectRefused(join(link, "nope"), /: \S+\/link is on a proc file system, which keeps no data$/m);
  }, 15_000);

  it("a file where the directory should be: the directory itself, or a parent", async () => {
    const dir = tempDir();
    const file = join(dir, "a-file");
    writeFileSync(file, "not a directory\n");
    await expectRefused(file, new RegExp(`: ${file} is not a directory$`, "m"));
    await expectRefused(join(file, "sub", "deeper"), new RegExp(`: ${file} is not a directory$`, "m"));
    expect(readdirSync(dir)).toEqual(["a-file"]);
  }, 15_000);

  it("a FIFO or a directory where the log or the lock should be (an open would block for ever, or read nothing)", async () => {
    for (const name of ["pollchat.log", "pollchat.lock", "pollchat.log.tmp"]) {
      for (const make of ["fifo", "directory"] as const) {
        const dir = tempDir();
        if (make === "fifo") execFileSync("mkfifo", [join(dir, name)]);
        else mkdirSync(join(dir, name));
        await expectRefused(dir, new RegExp(`: ${dir}/${name.replace(/\./g, "\\.")} is not a regular file$`, "m"));
        expect(readdirSync(dir)).toEqual([name]);
      }
    }
  }, 30_000);

  for (const kind of ["tmpfs", "bind"] as const) {
    it(`a read-only file system (a ${kind} mounted ro): the directory on it, or one to make there`, async () => {
      const target = readOnlyMount(kind);
      await expectRefused(target, /EROFS: read-only file system, open '.*pollchat\.lock\.[^']*'$/m);
      await expectRefused(join(target, "sub", "deeper"), /EROFS: read-only file system, mkdir '.*\/mnt\/sub'$/m);
      expect(readdirSync(target)).toEqual([]);
    }, 15_000);
  }

  it("a name too long: one component past 255 bytes, or a path past PATH_MAX; what was made is removed", async () => {
    const dir = tempDir();
    const line = await expectRefused(join(dir, "a".repeat(300)), /ENAMETOOLONG: name too long/);
    // The name is shortened in the line, never printed whole.
    expect(line.length).toBeLessThan(600);
    // Components of 250 bytes: the first ones are made before the path gets too long, and removed again.
    const deep = join(dir, ...Array.from({ length: 20 }, (_, i) => String(i).padStart(250, "d")));
    await expectRefused(deep, /ENAMETOOLONG: name too long/);
    expect(readdirSync(dir)).toEqual([]);
  }, 15_000);

  it("a full disk at start (a 64 KiB tmpfs filled up): a directory to make there, or the full one itself", async () => {
    const fs = mountTmpfs("64k");
    cleanups.push(() => fs.unmount());
    fs.fill();
    await expectRefused(join(fs.dir, "fresh"), /ENOSPC: no space left on device/);
    await expectRefused(fs.dir, /ENOSPC: no space left on device/);
    expect(readdirSync(fs.dir)).toEqual(["filler"]);
  }, 15_000);
});
