// The bench's own tools, proven small: the generator's delivery checks catch
// loss, duplicates, disorder and gaps, and the baseline server delivers a
// fan-out completely and in order.
import { fork, spawn } from "node:child_process";
import { createServer } from "node:http";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const LOAD = fileURLToPath(new URL("./load.js", import.meta.url));
const BASELINE = fileURLToPath(new URL("./baseline-server.js", import.meta.url));
const cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function generator() {
  const child = fork(LOAD, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  cleanups.push(() => {
    if (child.exitCode === null) {
      child.disconnect();
      return once(child, "exit");
    }
  });
  let id = 0;
  return (cmd, params) =>
    new Promise((resolve, reject) => {
      const mine = ++id;
      const onMessage = (msg) => {
        if (msg.id !== mine) return;
        child.off("message", onMessage);
        if (msg.error) reject(new Error(msg.error));
        else resolve(msg.result);
      };
      child.on("message", onMessage);
      child.send({ id: mine, cmd, ...params });
    });
}

async function baseline() {
  const child = spawn(process.execPath, [BASELINE, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  cleanups.push(() => {
    if (child.exitCode !== null) return;
    child.kill("SIGTERM");
    return once(child, "exit");
  });
  let out = "";
  for await (const chunk of child.stdout) {
    out += chunk;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) return m[1];
  }
  throw new Error(`baseline did not start: ${out}`);
}

describe("bench load generator", () => {
  it("counts lost, duplicated, out-of-order and gap lines", async () => {
    // Every poller's first long-poll gets m1, m0, m1 and a gap line; m2 never comes.
    const answered = new Set();
    const server = createServer((req, res) => {
      const q = new URL(req.url, "http://x").searchParams;
      const send = (body) => {
        res.writeHead(200, { "Content-Length": Buffer.byteLength(body), "X-Cursor": "5" });
        res.end(body);
      };
      if (q.has("message")) return send("ok 1\n");
      if (q.get("timeout") === "0") return send("");
      if (!answered.has(q.get("name"))) {
        answered.add(q.get("name"));
        send("fp : m1\nfp : m0\nfp : m1\n* 3 messages missed\n");
      }
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanups.push(() => {
      server.closeAllConnections();
      server.close();
    });
    const call = generator();
    const r = await call("fanout", { url: `http://127.0.0.1:${server.address().port}`, n: 4, m: 3, stallMs: 300 });
    expect(r).toMatchObject({ expected: 12, delivered: 8, lost: 4, duplicates: 4, outOfOrder: 4, gaps: 4, complete: false });
  });

  it("sees the baseline deliver every message once and in order", async () => {
    const url = await baseline();
    const call = generator();
    const r = await call("fanout", { url, n: 20, m: 30 });
    expect(r).toMatchObject({ registered: 20, accepted: 30, delivered: 600, lost: 0, duplicates: 0, outOfOrder: 0, gaps: 0, complete: true });
  });

  it("holds polls on the baseline until a post wakes every one", async () => {
    const url = await baseline();
    const call = generator();
    const hold = await call("hold", { url, n: 50, quietMs: 200 });
    expect(hold.held).toBe(50);
    expect(hold.answeredWhileSettling).toBe(0);
    const probe = await call("probe", { url });
    expect(probe).toMatchObject({ postStatus: 200, expected: 50, served: 50 });
    await call("release", {});
  });
});
