// The bench's own tools, proven small: the generator's delivery checks catch
// loss, duplicates, disorder and gaps in both answer forms, the baseline and
// pollchat (on both paths) deliver a fan-out completely and in order, and the
// report takes medians and marks goals met or missed.
import { fork, spawn } from "node:child_process";
import { createServer } from "node:http";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startServer } from "../helpers.ts";
import { readJoinAnswer, readJsonAnswer, readTextAnswer } from "./answers.js";
import { median } from "./median.js";
import { combine, Report } from "./report.js";

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
    // m2 never comes, so the run ends after stallMs with nothing new: 2 s, so that every poller's first answer is in by then on a busy machine.
    const r = await call("fanout", { url: `http://127.0.0.1:${server.address().port}`, n: 4, m: 3, stallMs: 2000 });
    expect(r).toMatchObject({ expected: 12, delivered: 8, lost: 4, duplicates: 4, outOfOrder: 4, gaps: 4, complete: false });
  }, 15_000);

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

/** Everything a reader visits, in order. */
function visits() {
  const seen = [];
  return { seen, visit: { seq: (rest) => seen.push(`seq ${rest}`), gap: () => seen.push("gap"), other: () => seen.push("other") } };
}

describe("bench answer readers", () => {
  it("reads the seed's text lines: the poster's messages, gaps and the rest", () => {
    const { seen, visit } = visits();
    readTextAnswer("fp : m1\n* 3 messages missed\nfp : x\n* bob joined lobby\nbob : m2\nfp : m12\nfp : m9", "fp", "m", visit);
    // The last line has no newline: not a whole line, not read.
    expect(seen).toEqual(["seq 1", "gap", "other", "other", "other", "seq 12"]);
  });

  it("reads the JSON poll answer: the poster's messages, gaps, the rest, and the cursor", () => {
    const { seen, visit } = visits();
    const messages = [
      { id: 1, type: "message", room: "lobby", from: "fp", text: "m1", ts: 1 },
      { id: 2, type: "gap", room: "lobby", from: "", text: "", ts: 1, missed: 3 },
      { id: 3, type: "message", room: "lobby", from: "bob", text: "m2", ts: 1 },
      { id: 4, type: "join", room: "lobby", from: "fp", text: "", ts: 1 },
      { id: 5, type: "message", room: "lobby", from: "fp", text: "m7_12.5", ts: 1 },
    ];
    expect(readJsonAnswer(JSON.stringify({ messages, cursor: 1795305708328005 }), "fp", "m", visit)).toBe("1795305708328005");
    expect(seen).toEqual(["seq 1", "gap", "other", "other", "seq 7_12.5"]);
  });

  it("answers no cursor for a body that is not a JSON poll answer, and visits nothing", () => {
    const { seen, visit } = visits();
    for (const body of ['{"messages":[', "fp : m1\n", '{"cursor":5}', '{"messages":[],"cursor":"5"}', "null"]) {
      expect(readJsonAnswer(body, "fp", "m", visit)).toBeUndefined();
    }
    expect(seen).toEqual([]);
  });

  it("reads a join answer's token and cursor", () => {
    expect(readJoinAnswer('{"token":"t1","name":"a","room":"lobby","cursor":42,"members":["a"]}')).toEqual({ token: "t1", cursor: "42" });
    // Members named like the keys are not the keys.
    expect(readJoinAnswer('{"token":"t-2_x","name":"cursor","room":"token","cursor":7,"members":["token","cursor"]}')).toEqual({ token: "t-2_x", cursor: "7" });
    expect(readJoinAnswer('{"error":{"code":"name_taken"}}')).toBeUndefined();
    expect(readJoinAnswer("not json")).toBeUndefined();
  });
});

describe("bench report", () => {
  it("takes the median of runs, NaN left out", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, NaN, 1, 3])).toBe(3);
    expect(median([])).toBeNaN();
    expect(combine([2, 9, 4])).toBe(4);
    expect(combine(["0 / 0 / 0", "0 / 0 / 0", "1 / 0 / 0"])).toBe("0 / 0 / 0; 1 / 0 / 0");
  });

  it("puts each path's median beside the baseline's, with the ratio and the goal met or missed", () => {
    const run = (deliveries, cpuUs) => ({ deliveriesPerSec: deliveries, serverCpuUsPerDelivery: cpuUs, cpu: { serverUtil: 0.5, util: 0.3, wait: 0.01 } });
    const results = {
      seed: [run(900, 30), run(1200, 20), run(1100, 25)],
      api: [run(800, 40), run(700, 35), run(850, 50)],
      baseline: [run(1000, 25), run(1000, 25), run(1000, 25)],
    };
    const report = new Report();
    report.add("S2", "deliveries/s", results, (x) => x.deliveriesPerSec, { target: 1.0, goal: "S2 deliveries/s, N=1,000" });
    report.add("S2", "server CPU per delivery", results, (x) => x.serverCpuUsPerDelivery, { better: "lower", target: 1.0, goal: "S2 CPU, N=1,000" });
    expect(report.rows.map((r) => [r.path, r.pollchat, r.baseline, r.ratio, r.verdict])).toEqual([
      ["seed", 1100, 1000, 1.1, "met"],
      ["api", 800, 1000, 0.8, "missed"],
      ["seed", 25, 25, 1, "met"],
      ["api", 40, 25, 1.6, "missed"],
    ]);
    expect(report.rows[0].runRatios).toEqual([0.9, 1.2, 1.1]);
    const goals = report.goals();
    expect(goals).toContain("| S2 deliveries/s, N=1,000 | 1.10× met | 0.80× missed | ≥ 1.0× |");
    expect(goals).toContain("| S2 CPU, N=1,000 | 1.00× met | 1.60× missed | ≤ 1.0× |");
    expect(goals).toContain("Missed (2):");
    expect(report.table()).toContain("| S2 | deliveries/s | api | 800 | 1,000 | 0.80 | 0.80, 0.70, 0.85 | ≥ 1.0× missed |");
  });
});

describe("bench load generator on pollchat", () => {
  it("reads pollchat's answers on both paths: every message once and in order", async () => {
    const call = generator();
    for (const path of ["seed", "api"]) {
      // A server each: the API path claims the names the seed path left open.
      const server = await startServer({ rate: 1_000_000, ratePerIp: 0, presenceLimit: 0, maxSessionsPerIp: 0 });
      cleanups.push(() => server.close());
      const r = await call("fanout", { url: server.url, n: 10, m: 20, path });
      expect(r).toMatchObject({ path, registered: 10, accepted: 20, delivered: 200, lost: 0, duplicates: 0, outOfOrder: 0, gaps: 0, complete: true });
    }
  });

  it("holds polls on pollchat's API path until a post by one of them wakes every one", async () => {
    const server = await startServer();
    cleanups.push(() => server.close());
    const call = generator();
    const hold = await call("hold", { url: server.url, n: 30, path: "api", quietMs: 200 });
    expect(hold).toMatchObject({ held: 30, errors: {} });
    const probe = await call("probe", { url: server.url });
    expect(probe).toMatchObject({ postStatus: 201, expected: 30, served: 30 });
    await call("release", {});
  });

  it("counts a gap entry in a JSON answer, and a message its reader did not expect", async () => {
    // The API path: a join answers a token; the first poll carries m0, a gap, m0 again and another poster's line.
    const polled = new Set();
    const server = createServer((req, res) => {
      const send = (body) => {
        res.writeHead(200, { "Content-Length": Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.method === "POST") {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => send(JSON.stringify({ token: `t-${JSON.parse(body).name}`, cursor: 1 })));
        return;
      }
      if (req.url.startsWith("/?")) return send("ok 1\n");
      const token = req.headers.authorization;
      if (!polled.has(token)) {
        polled.add(token);
        const m = (id, from, text, type = "message") => ({ id, type, room: "lobby", from, text, ts: 0 });
        send(JSON.stringify({ messages: [m(2, "fp", "m0"), { ...m(3, "", "", "gap"), missed: 4 }, m(4, "fp", "m0"), m(5, "x", "m1")], cursor: 5 }));
      }
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanups.push(() => {
      server.closeAllConnections();
      server.close();
    });
    const call = generator();
    const r = await call("fanout", { url: `http://127.0.0.1:${server.address().port}`, n: 3, m: 2, path: "api", stallMs: 300 });
    expect(r).toMatchObject({ registered: 3, expected: 6, delivered: 3, lost: 3, duplicates: 3, gaps: 3, otherLines: 3, complete: false });
  });
});
