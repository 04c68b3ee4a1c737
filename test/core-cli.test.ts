import { execFile } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatServer } from "../src/index.js";
import { get, seedPost, seedUrl } from "./core-helpers.js";
import { CLI, cliPerTest, ensureBuilt } from "./helpers.js";

/** The CLI as a process, the library mounted elsewhere, and the packed tarball (spec §9). */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

beforeAll(ensureBuilt, 120_000);

const startCli = cliPerTest();

/** Runs the CLI to completion (for --help and bad flags). */
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 10_000, env: { PATH: process.env.PATH } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("the CLI", () => {
  it("prints `pollchat listening on http://127.0.0.1:PORT` with --port 0, serves, and exits 0 on SIGTERM", { timeout: 20_000 }, async () => {
    const cli = await startCli(CLI, ["--port", "0"]);
    expect(cli.line).toMatch(/^pollchat listening on http:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(cli.url).port);
    expect(port).toBeGreaterThan(0);
    expect((await get(`${cli.url}/healthz`)).text).toBe("ok\n");
    const cursor = Number((await get(seedUrl(cli.url, { name: "bob", cursor: 0, timeout: 0 }))).headers.get("x-cursor"));
    await seedPost(cli.url, "alice", "over the CLI");
    expect((await get(seedUrl(cli.url, { name: "bob", cursor, timeout: 0 }))).text).toBe("* alice joined lobby\nalice : over the CLI\n");
    expect(await cli.stop("SIGTERM")).toBe(0);
  });

  it("answers a held poll on SIGTERM and exits 0 within 5 s", { timeout: 20_000 }, async () => {
    // --presence-limit 0: bob's first poll queues no join notice, so it is held.
    const cli = await startCli(CLI, ["--port", "0", "--presence-limit", "0"]);
    const poll = get(seedUrl(cli.url, { name: "bob", room: "side", cursor: 0, timeout: 20_000 }));
    // The poll registers bob before it is held: once he is a member, it is waiting. Bounded: 100 checks.
    for (let i = 0; i < 100; i++) {
      const room = await fetch(`${cli.url}/api/rooms/side`);
      if (room.status === 200) break;
      await room.text();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await (await fetch(`${cli.url}/api/rooms/side`)).json()).toEqual({ name: "side", members: ["bob"] });
    const started = performance.now();
    expect(await cli.stop("SIGTERM")).toBe(0);
    expect(performance.now() - started).toBeLessThan(5000);
    const answer = await poll;
    expect(answer.status).toBe(200);
    expect(answer.text).toBe("");
  });

  it("takes HOST and PORT from the environment", async () => {
    const cli = await startCli(CLI, [], { env: { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0" } });
    expect(cli.line).toMatch(/^pollchat listening on http:\/\/127\.0\.0\.1:\d+$/);
    expect((await get(`${cli.url}/healthz`)).status).toBe(200);
    expect(await cli.stop("SIGINT")).toBe(0);
  });

  it("applies its flags", async () => {
    const cli = await startCli(CLI, ["--port", "0", "--host", "127.0.0.1", "--max-message", "5", "--require-token", "--rate", "100"]);
    expect((await get(seedUrl(cli.url, { name: "bob", timeout: 0 }))).status).toBe(401);
    const join = await fetch(`${cli.url}/api/join`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"name":"dave"}' });
    const { token } = (await join.json()) as { token: string };
    const long = await fetch(`${cli.url}/api/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: '{"text":"123456"}',
    });
    expect(long.status).toBe(413);
    await long.text();
    expect(await cli.stop()).toBe(0);
  });

  it("lists every flag of the spec with --help", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    const flags = [
      "--host", "--port", "--max-queue", "--session-ttl", "--presence-limit", "--max-message", "--rate",
      "--max-sessions", "--require-token", "--cors-origin", "--data-dir", "--tcp-port", "--help",
    ];
    for (const flag of flags) expect(r.stdout, flag).toMatch(new RegExp(`^\\s+${flag}\\b`, "m"));
    expect(r.stdout).toMatch(/HOST/);
    expect(r.stdout).toMatch(/PORT/);
  });

  it("refuses an unknown flag or a bad value with exit code 2 and the usage", async () => {
    for (const args of [["--bogus"], ["--port", "abc"], ["--rate", "0"], ["--max-queue", "-3"]]) {
      const r = await runCli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^pollchat: /);
      expect(r.stderr).toMatch(/Usage: pollchat/);
    }
  });
});

describe("createChatServer as a library", () => {
  it("mounts its handle in someone else's http.Server", async () => {
    const chat = createChatServer({ pollTimeoutMs: 5000 });
    const outer = createServer((req, res) => {
      if (req.url === "/mine") {
        res.end("my own route");
        return;
      }
      chat.handle(req, res);
    });
    outer.listen(0, "127.0.0.1");
    await once(outer, "listening");
    const url = `http://127.0.0.1:${(outer.address() as AddressInfo).port}`;
    try {
      expect((await get(`${url}/mine`)).text).toBe("my own route");
      expect((await get(`${url}/healthz`)).text).toBe("ok\n");
      const cursor = Number((await get(seedUrl(url, { name: "bob", cursor: 0, timeout: 0 }))).headers.get("x-cursor"));
      await seedPost(url, "alice", "first");
      const cursor2 = Number((await get(seedUrl(url, { name: "bob", cursor, timeout: 0 }))).headers.get("x-cursor"));
      // A held poll in the outer server is released by a post.
      const held = once(outer, "request");
      const poll = get(seedUrl(url, { name: "bob", cursor: cursor2 }));
      await held;
      await seedPost(url, "alice", "mounted");
      expect((await poll).text).toBe("alice : mounted\n");
      expect(chat.hub.session("alice")).toBeDefined();

      // close() answers a poll held in the outer server at once, as it does in its own.
      const cursor3 = Number((await get(seedUrl(url, { name: "bob", cursor: cursor2, timeout: 0 }))).headers.get("x-cursor"));
      const heldAgain = once(outer, "request");
      const last = get(seedUrl(url, { name: "bob", cursor: cursor3, timeout: 30_000 }));
      await heldAgain;
      const closing = chat.close();
      const answered = await last;
      expect(answered.status).toBe(200);
      expect(answered.text).toBe("");
      await closing;
    } finally {
      await chat.close();
      outer.closeAllConnections();
      await new Promise((r) => outer.close(r));
    }
  });

  it("re-exports the server, options and errors from the package entry", async () => {
    const lib = await import("../src/index.js");
    expect(typeof lib.createChatServer).toBe("function");
    expect(lib.DEFAULTS.pollTimeoutMs).toBe(4500);
    expect(lib.DEFAULTS.maxPollTimeoutMs).toBe(30_000);
    expect(lib.DEFAULTS).toMatchObject({ maxQueue: 1000, sessionTtlMs: 30_000, presenceLimit: 200, maxMessage: 2000, rate: 10, maxSessions: 10_000 });
    expect(new lib.ChatError("rate_limited").status).toBe(429);
  });
});

describe("the packed tarball", () => {
  let dir = "";
  let pkg = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "pollchat-pack-"));
    const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: ROOT, timeout: 60_000 });
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    await run("tar", ["xzf", join(dir, filename), "-C", dir]);
    pkg = join(dir, "package");
  }, 90_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function files(root: string): Promise<string[]> {
    const found: string[] = [];
    for (const entry of await readdir(root, { withFileTypes: true })) {
      const path = join(root, entry.name);
      if (entry.isDirectory()) found.push(...(await files(path)));
      else if (entry.isFile()) found.push(path);
    }
    return found;
  }

  it("holds dist, public and README, no sources or tests, and declares no dependencies", async () => {
    const all = (await files(pkg)).map((f) => relative(pkg, f).split(sep).join("/"));
    expect(all).toContain("dist/cli.js");
    expect(all).toContain("dist/index.js");
    expect(all).toContain("public/index.html");
    expect(all).toContain("README.md");
    expect(all).toContain("package.json");
    expect(all.filter((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("node_modules/"))).toEqual([]);
    const manifest = JSON.parse(await readFile(join(pkg, "package.json"), "utf8")) as Record<string, unknown>;
    expect(manifest["dependencies"]).toBeUndefined();
    expect(manifest["type"]).toBe("module");
    expect(manifest["bin"]).toEqual({ pollchat: "dist/cli.js" });
  });

  it("imports nothing but node: built-ins and its own relative files", async () => {
    const js = (await files(pkg)).filter((f) => f.endsWith(".js"));
    expect(js.length).toBeGreaterThan(5);
    const specifier = /\b(?:import|export)\s*(?:[\w*{}\s,$]*?\s*from\s*)?["']([^"']+)["']|\bimport\s*\(\s*([^)]*?)\s*\)|\brequire\s*\(\s*([^)]*?)\s*\)/g;
    const bad: string[] = [];
    let checked = 0;
    for (const file of js) {
      const source = (await readFile(file, "utf8")).replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, "");
      for (const match of source.matchAll(specifier)) {
        checked++;
        const dynamic = match[2] ?? match[3];
        const spec = match[1] ?? /^["']([^"']+)["']$/.exec(dynamic ?? "")?.[1];
        const where = `${relative(pkg, file)}: ${match[0]}`;
        if (spec === undefined) {
          bad.push(`${where} (not a literal)`);
        } else if (spec.startsWith("node:")) {
          continue;
        } else if (spec.startsWith("./") || spec.startsWith("../")) {
          let target = resolve(dirname(file), spec);
          // The page imports the client library by its URL, /client.js, which the server answers with dist/client.js.
          if (target === join(pkg, "public", "client.js")) target = join(pkg, "dist", "client.js");
          if (!target.startsWith(pkg + sep) || !existsSync(target)) bad.push(`${where} (no such file in the package)`);
        } else {
          bad.push(where);
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(bad).toEqual([]);
  });

  it("runs from a temporary folder with plain node and no node_modules", { timeout: 20_000 }, async () => {
    for (let d = dir; ; d = dirname(d)) {
      expect(existsSync(join(d, "node_modules")), d).toBe(false);
      if (dirname(d) === d) break;
    }
    const cli = await startCli(join(pkg, "dist", "cli.js"), ["--port", "0"], { cwd: dir });
    expect(cli.line).toMatch(/^pollchat listening on http:\/\/127\.0\.0\.1:\d+$/);
    expect((await get(`${cli.url}/healthz`)).text).toBe("ok\n");
    const page = await get(`${cli.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.text).toBe(await readFile(join(pkg, "public", "index.html"), "utf8"));
    const cursor = Number((await get(seedUrl(cli.url, { name: "bob", cursor: 0, timeout: 0 }))).headers.get("x-cursor"));
    const id = await seedPost(cli.url, "alice", "from the tarball");
    const r = await get(seedUrl(cli.url, { name: "bob", cursor, timeout: 0 }));
    expect(r.text).toBe("* alice joined lobby\nalice : from the tarball\n");
    expect(r.headers.get("x-cursor")).toBe(String(id));
    expect(await cli.stop()).toBe(0);
  });
});
