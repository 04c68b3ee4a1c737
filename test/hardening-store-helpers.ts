import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI } from "./helpers.js";

/** Helpers of test/hardening-store.test.ts: a small tmpfs to fill, and the CLI as a process. */

export interface Tmpfs {
  dir: string;
  /** Writes a file of zeros until the file system is full (ENOSPC). */
  fill(name?: string): void;
  unmount(): void;
}

/** A tmpfs of `size` (e.g. "256k") on a new directory; the test runs as root. */
export function mountTmpfs(size: string): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), "pollchat-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  return {
    dir,
    fill(name = "filler") {
      const fd = openSync(join(dir, name), "a");
      const block = Buffer.alloc(4096);
      try {
        // Bounded: a tmpfs of a few hundred KiB is full after a few hundred blocks.
        for (let i = 0; i < 100_000; i++) writeSync(fd, block);
        throw new Error(`${dir} never filled up`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
      } finally {
        closeSync(fd);
      }
    },
    unmount() {
      execFileSync("umount", [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CliRun {
  child: ChildProcess;
  url: string;
  stderr(): string;
  /** Resolves with the exit code once the process is gone. */
  exited: Promise<number | null>;
}

const LISTENING = /^pollchat listening on (http:\/\/\S+)$/m;

/**
 * `node dist/cli.js ...args` with `nodeArgs` (e.g. a heap limit). Resolves
 * with the URL once it prints its listening line, or rejects with what it
 * said if it exits first or `deadlineMs` passes.
 */
export function runCli(args: string[], opts: { nodeArgs?: string[]; deadlineMs?: number; children: Set<ChildProcess> }): Promise<CliRun> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, ...args], { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] });
  opts.children.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line in ${opts.deadlineMs ?? 10_000} ms; stderr: ${err}`)), opts.deadlineMs ?? 10_000);
    const check = (): void => {
      const match = LISTENING.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off("data", check);
      resolve({ child, url: match[1]!, stderr: () => err, exited });
    };
    child.stdout!.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before listening; stderr: ${err}`));
    });
  });
}

/** Runs the CLI expecting it to refuse to start: its exit code and what it wrote on stderr. */
export async function refusedStart(args: string[], children: Set<ChildProcess>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [CLI, "--port", "0", "--host", "127.0.0.1", ...args], { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const [code] = (await once(child, "exit")) as [number | null];
  // Output still in the pipes arrives before they close.
  if (child.stderr!.readable) await once(child.stderr!, "close");
  return { code, stderr: err, stdout: out };
}
