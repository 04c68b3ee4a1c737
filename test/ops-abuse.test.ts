import { once } from "node:events";
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { closed, openSocket, scrape, valueOf } from "./ops-helpers.js";

let server: TestServer | undefined;
const sockets: { destroy(): void }[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.close();
  server = undefined;
});

async function socket(port: number) {
  const s = await openSocket(port);
  sockets.push(s);
  return s;
}

/** A GET on a connection of its own (no pooling), resolved with status, headers and the whole body. */
function getAlone(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

const until = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("slow clients", () => {
  it("cuts a slowloris client while a held poll beside it is answered normally", { timeout: 15_000 }, async () => {
    server = await startServer({ headersTimeoutMs: 1500, requestTimeoutMs: 2000, maxPollTimeoutMs: 20_000 });
    const { url, port } = server;
    // alice and carol register; carol then holds a poll with her cursor, nothing queued for her.
    expect((await fetch(`${url}/?name=alice&timeout=0`)).status).toBe(200);
    const first = await fetch(`${url}/?name=carol&timeout=0`);
    const cursor = first.headers.get("x-cursor")!;
    await first.text();
    const started = Date.now();
    const arrived = once(server.chat.server, "request");
    const held = fetch(`${url}/?name=carol&cursor=${cursor}&timeout=15000`).then(async (r) => ({
      status: r.status,
      text: await r.text(),
      at: Date.now() - started,
    }));
    await arrived;

    // The slowloris: one byte of its headers per second, at most 10 bytes.
    const slow = await socket(port);
    const cut = closed(slow, 8000);
    const bytes = "GET /?name=x HTTP/1.1\r\n";
    let sent = 0;
    const trickle = setInterval(() => {
      if (sent < 10 && !slow.destroyed) slow.write(bytes[sent++]!);
    }, 1000);
    const answer = await cut.finally(() => clearInterval(trickle));
    const cutAfter = Date.now() - started;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(sent).toBeLessThan(10);
    expect(cutAfter).toBeGreaterThanOrEqual(1400);
    // Cut at the 1.5 s headers timeout (sent < 10 already says before the trickle ended); room for a busy machine.
    expect(cutAfter).toBeLessThan(6000);

    // Past both the headers and the request timeout, carol's poll is still held, not cut.
    await until(Math.max(0, 2000 + 1200 - (Date.now() - started)));
    expect(valueOf(await scrape(url), "pollchat_open_polls")).toBe(1);
    const post = await fetch(`${url}/?name=alice&message=${encodeURIComponent("past the slowloris")}`);
    expect(post.status).toBe(200);
    const polled = await held;
    expect(polled.status).toBe(200);
    expect(polled.text).toContain("alice : past the slowloris\n");
    expect(polled.at).toBeGreaterThanOrEqual(3000);
  });

  it("cuts a body trickled slower than the request timeout", { timeout: 10_000 }, async () => {
    server = await startServer({ headersTimeoutMs: 1000, requestTimeoutMs: 1500 });
    const slow = await socket(server.port);
    const cut = closed(slow, 6000);
    slow.write("POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    const started = Date.now();
    const trickle = setInterval(() => {
      if (!slow.destroyed) slow.write(" ");
    }, 300);
    const answer = await cut.finally(() => clearInterval(trickle));
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    // Cut at the 1.5 s request timeout, though bytes keep coming (room for a busy machine, under the 6 s wait).
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("closes an idle keep-alive connection after keepAliveTimeoutMs", async () => {
    server = await startServer({ keepAliveTimeoutMs: 200 });
    const s = await socket(server.port);
    const done = closed(s, 3000);
    const started = Date.now();
    s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const answer = await done;
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });
});

describe("connections per address", () => {
  it("answers 503 too_many_connections past the cap, and serves again once one closes", { timeout: 20_000 }, async () => {
    server = await startServer({ maxConnectionsPerIp: 3 });
    const { url, port } = server;
    const open = [];
    for (let i = 0; i < 3; i++) {
      const s = await socket(port);
      s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      const [data] = (await once(s, "data")) as [Buffer];
      expect(data.toString("latin1")).toMatch(/^HTTP\/1\.1 200 /);
      open.push(s);
    }
    expect(server.chat.ops.connections.count("127.0.0.1")).toBe(3);

    const refused = await getAlone(`${url}/api/rooms`);
    expect(refused.status).toBe(503);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.headers.connection).toBe("close");
    expect(JSON.parse(refused.body).error.code).toBe("too_many_connections");

    // A connection past the cap that sends nothing is not kept until the headers timeout.
    const silent = await socket(port);
    const started = Date.now();
    await closed(silent, 9000);
    // Cut after the 2 s grace, well before the 10 s headers timeout (room for a busy machine).
    expect(Date.now() - started).toBeLessThan(6500);

    const gone = once(open[0]!, "close");
    open[0]!.destroy();
    await gone;
    for (let i = 0; i < 200 && server.chat.ops.connections.count("127.0.0.1") > 2; i++) await until(5);
    expect((await getAlone(`${url}/healthz`)).status).toBe(200);
    const metrics = await scrape(url);
    expect(valueOf(metrics, "pollchat_http_requests_total", { route: "api_rooms", status: "503" })).toBe(1);
  });

  it("has no cap with maxConnectionsPerIp 0", async () => {
    server = await startServer({ maxConnectionsPerIp: 0 });
    const open = [];
    for (let i = 0; i < 20; i++) open.push(await socket(server.port));
    expect((await getAlone(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe("limits of spec §8 say when to come back", () => {
  it("answers 429 rate_limited with Retry-After, on / and on /api", async () => {
    server = await startServer({ rate: 1 });
    const { url } = server;
    let seed: Response | undefined;
    for (let i = 0; i < 5; i++) {
      seed = await fetch(`${url}/?name=flood&message=m${i}`);
      if (seed.status !== 200) break;
    }
    expect(seed!.status).toBe(429);
    expect(Number(seed!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await seed!.text()).toMatch(/^error rate_limited: /);

    const api = await joinApi(url, "flood2");
    let r: Awaited<ReturnType<typeof postJson>> | undefined;
    for (let i = 0; i < 5; i++) {
      r = await postJson(`${url}/api/messages`, { text: `m${i}` }, api.auth);
      if (r.status !== 201) break;
    }
    expect(r!.status).toBe(429);
    expect(Number(r!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(r!.body.error.code).toBe("rate_limited");
  });

  it("answers 503 server_full with Retry-After, on / and on /api", async () => {
    server = await startServer({ maxSessions: 1 });
    const { url } = server;
    expect((await fetch(`${url}/?name=first&timeout=0`)).status).toBe(200);
    const seed = await fetch(`${url}/?name=second&timeout=0`);
    expect(seed.status).toBe(503);
    expect(Number(seed.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await seed.text();
    const api = await postJson(`${url}/api/join`, { name: "third" });
    expect(api.status).toBe(503);
    expect(api.body.error.code).toBe("server_full");
    expect(Number(api.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });
});
