import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Posts per second with and without --data-dir, through the CLI process:
 * POSTERS clients post at once, POSTS in all. The figures are printed, never
 * asserted (the machine is shared); what is asserted is that every post was
 * answered `ok <id>` with a fresh id.
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "dist", "cli.js");
const POSTERS = 50;
const POSTS = 3000;
const WARMUP = 500;

const children = new Set<ChildProcess>();
let dir = "";
beforeAll(async () => {
  const stale = !existsSync(join(ROOT, "dist", "store", "message-log.js")) || statSync(CLI).mtimeMs < statSync(join(ROOT, "src", "store", "message-log.ts")).mtimeMs;
  if (stale) await promisify(execFile)(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", ROOT]);
  dir = await mkdtemp(join(tmpdir(), "pollchat-bench-"));
}, 120_000);
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

async function start(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [CLI, "--port", "0", "--host", "127.0.0.1", "--rate", "1000000", "--presence-limit", "0", ...args], {
    env: { PATH: process.env.PATH },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  let out = "";
  child.stdout!.setEncoding("utf8");
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 10_000);
    child.stdout!.on("data", (d: string) => {
      out += d;
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  return { child, port };
}

function get(agent: Agent, port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => (body += d));
      res.on("end", () => resolve(body));
    })
      .on("error", reject)
      .end();
  });
}

async function measure(args: string[]): Promise<{ perSecond: number; ids: Set<number> }> {
  const { child, port } = await start(args);
  const agent = new Agent({ keepAlive: true, maxSockets: POSTERS });
  const ids = new Set<number>();
  const round = async (posts: number): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: POSTERS }, async (_, poster) => {
        while (next < posts) {
          next++;
          const body = await get(agent, port, `/?name=poster${poster}&message=hello`);
          ids.add(Number(/^ok (\d+)\n$/.exec(body)?.[1]));
        }
      }),
    );
  };
  // A first round warms the JIT and opens the connections; the second is timed.
  await round(WARMUP);
  const began = performance.now();
  await round(POSTS);
  const seconds = (performance.now() - began) / 1000;
  agent.destroy();
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
  return { perSecond: Math.round(POSTS / seconds), ids };
}

describe("throughput", () => {
  it("posts/s in memory and with --data-dir (group commit), printed", async () => {
    const durable = await measure(["--data-dir", dir]);
    const memory = await measure([]);
    process.stdout.write(
      `pollchat bench: ${POSTS} posts from ${POSTERS} concurrent posters: ` +
        `${memory.perSecond} posts/s in memory, ${durable.perSecond} posts/s with --data-dir\n`,
    );
    for (const run of [memory, durable]) {
      expect(run.ids.size).toBe(WARMUP + POSTS);
      expect(run.ids.has(NaN)).toBe(false);
    }
  }, 60_000);
});
