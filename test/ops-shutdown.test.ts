import { spawn, type ChildProcess } from "node:child_process";
import { request, Agent } from "node:http";
import { createInterface } from "node:readline";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI as cli, ensureBuilt, startServer, type TestServer } from "./helpers.js";
import { scrape, valueOf } from "./ops-helpers.js";

let child: ChildProcess | undefined;
let server: TestServer | undefined;

beforeAll(ensureBuilt, 120_000);

afterEach(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  child = undefined;
  await server?.close();
  server = undefined;
});

interface Answer {
  status: number;
  body: string;
  complete: boolean;
}

/** A GET whose answer counts only when its body arrived whole (Content-Length met, no abort). */
function getWhole(url: string, agent: Agent): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(url, { agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        const length = Number(res.headers["content-length"]);
        resolve({ status: res.statusCode!, body, complete: res.complete && Buffer.byteLength(body) === length });
      });
      res.on("error", () => resolve({ status: res.statusCode!, body, complete: false }));
    });
    req.on("error", () => resolve({ status: 0, body: "", complete: false }));
    req.end();
  });
}

describe("SIGTERM", () => {
  it("answers 100 held polls completely and exits 0 within 5 s", { timeout: 30_000 }, async () => {
    child = spawn(process.execPath, [cli, "--port", "0", "--log-format", "json"], { stdio: ["ignore", "pipe", "pipe"] });
    const lines: string[] = [];
    const errors: string[] = [];
    createInterface({ input: child.stderr! }).on("line", (l) => errors.push(l));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${lines.join("\n")}`)), 10_000);
      createInterface({ input: child!.stdout! }).on("line", (line) => {
        lines.push(line);
        const m = /^pollchat listening on (http:\/\/\S+)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    const exited = new Promise<number | null>((r) => child!.once("exit", (code) => r(code)));

    // Each poller in a room of its own, so no one's join wakes another's poll.
    const agent = new Agent({ keepAlive: true, maxSockets: 200 });
    const cursors = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const res = await fetch(`${url}/?name=p${i}&room=r${i}&timeout=0`);
        await res.text();
        return res.headers.get("x-cursor")!;
      }),
    );
    const polls = cursors.map((cursor, i) => getWhole(`${url}/?name=p${i}&cursor=${cursor}&timeout=25000`, agent));
    let held = 0;
    for (let i = 0; i < 250 && held < 100; i++) {
      held = valueOf(await scrape(url), "pollchat_open_polls");
      if (held < 100) await new Promise((r) => setTimeout(r, 20));
    }
    expect(held).toBe(100);

    const started = Date.now();
    child.kill("SIGTERM");
    const answers = await Promise.all(polls);
    const code = await exited;
    const took = Date.now() - started;
    agent.destroy();

    expect(code).toBe(0);
    expect(took).toBeLessThan(5000);
    expect(answers.filter((a) => a.status === 200 && a.complete)).toHaveLength(100);
    // Held polls with nothing queued end as their timer would: 200 with an empty body.
    expect(answers.every((a) => a.body === "")).toBe(true);
    // The log: every line but the listening line is JSON, and shutdown and stop were logged.
    const events = lines.filter((l) => !l.startsWith("pollchat ")).map((l) => JSON.parse(l) as { event: string; level: string });
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(["start", "join", "shutdown", "stop"]));
    expect(events.filter((e) => e.event === "join")).toHaveLength(100);
    expect(errors).toEqual([]);
  });
});

describe("close()", () => {
  it("runs the shutdown hooks with a reason and awaits them, then refuses new requests", async () => {
    server = await startServer();
    const reasons: string[] = [];
    let finished = false;
    server.chat.ops.shutdown.onClose(async (reason) => {
      reasons.push(reason);
      await new Promise((r) => setTimeout(r, 50));
      finished = true;
    });
    // A request mounted through the library handler while closing is refused with 503 shutting_down.
    const closing = server.chat.close();
    expect(server.chat.ops.shutdown.closing).toBe(true);
    await closing;
    expect(reasons).toEqual(["server shutting down"]);
    expect(finished).toBe(true);
    const other = (await import("node:http")).createServer(server.chat.handle);
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    const { port } = other.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/?name=late&timeout=0`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await res.text()).toMatch(/^error shutting_down: /);
    const stopped = new Promise((r) => other.close(r));
    other.closeAllConnections();
    await stopped;
  });
});
