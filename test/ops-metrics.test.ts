import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { Metrics } from "../src/ops/metrics.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { openSocket, parsePrometheus, scrape, valueOf } from "./ops-helpers.js";

let server: TestServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const REQUIRED: [string, string][] = [
  ["pollchat_sessions", "gauge"],
  ["pollchat_open_polls", "gauge"],
  ["pollchat_sse_streams", "gauge"],
  ["pollchat_tcp_connections", "gauge"],
  ["pollchat_messages_total", "counter"],
  ["pollchat_deliveries_total", "counter"],
  ["pollchat_dropped_total", "counter"],
  ["pollchat_http_requests_total", "counter"],
  ["pollchat_poll_duration_seconds", "histogram"],
];

describe("Metrics registry", () => {
  it("renders counters, labelled counters, gauges and cumulative histograms", () => {
    const m = new Metrics();
    const c = m.counter("x_total", "An x.");
    const l = m.counter("y_total", "A y, by kind.", ["kind"]);
    let g = 3;
    m.gauge("z", "A z.", () => g);
    const h = m.histogram("d_seconds", "A duration.", [1, 0.1]);
    c.inc();
    c.inc({}, 4);
    l.inc({ kind: 'a"b\\c\nd' });
    h.observe(0.05);
    h.observe(0.5);
    h.observe(7);
    g = 9;
    const families = parsePrometheus(m.render());
    expect(valueOf(families, "x_total")).toBe(5);
    expect(valueOf(families, "y_total", { kind: 'a"b\\c\nd' })).toBe(1);
    expect(valueOf(families, "z")).toBe(9);
    expect(valueOf(families, "d_seconds", { le: "0.1" }, "d_seconds_bucket")).toBe(1);
    expect(valueOf(families, "d_seconds", { le: "1" }, "d_seconds_bucket")).toBe(2);
    expect(valueOf(families, "d_seconds", { le: "+Inf" }, "d_seconds_bucket")).toBe(3);
    expect(valueOf(families, "d_seconds", {}, "d_seconds_sum")).toBeCloseTo(7.55);
  });

  it("reads a gauge at scrape time and refuses a name registered twice", () => {
    const m = new Metrics();
    let streams = 0;
    m.gauge("pollchat_sse_streams", "Streams.", () => streams);
    streams = 4;
    expect(valueOf(parsePrometheus(m.render()), "pollchat_sse_streams")).toBe(4);
    expect(() => m.gauge("pollchat_sse_streams", "again", () => 0)).toThrow(/twice/);
    expect(() => m.counter("pollchat_sse_streams", "again")).toThrow(/twice/);
  });
});

describe("GET /metrics", () => {
  it("parses as the Prometheus text format with HELP and TYPE for every required metric", async () => {
    server = await startServer();
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(await res.text());
    for (const [name, type] of REQUIRED) {
      expect(families.get(name)?.type, name).toBe(type);
      expect(families.get(name)?.help.length, name).toBeGreaterThan(0);
    }
    expect((await fetch(`${server.url}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it("moves its counters and gauges as messages flow", async () => {
    server = await startServer({ maxQueue: 2 });
    const alice = await joinApi(server.url, "alice");
    const bob = await joinApi(server.url, "bob");
    const before = await scrape(server.url);
    expect(valueOf(before, "pollchat_sessions")).toBe(2);

    // A poll held for bob shows as an open poll until a message answers it.
    // The server's own handler is the first "request" listener: once this fires, the poll is held.
    const first = (await (await fetch(`${server.url}/api/poll?cursor=${bob.cursor}&timeout=0`, { headers: bob.auth })).json()) as { cursor: number };
    const arrived = once(server.chat.server, "request");
    const held = fetch(`${server.url}/api/poll?cursor=${first.cursor}&timeout=5000`, { headers: bob.auth });
    await arrived;
    const during = await scrape(server.url);
    expect(valueOf(during, "pollchat_open_polls")).toBe(1);

    for (let i = 0; i < 3; i++) {
      const r = await postJson(`${server.url}/api/messages`, { text: `m${i}` }, alice.auth);
      expect(r.status).toBe(201);
    }
    expect((await held).status).toBe(200);
    const after = await scrape(server.url);

    const delta = (name: string, labels: Record<string, string> = {}, sample?: string) =>
      valueOf(after, name, labels, sample) - valueOf(before, name, labels, sample);
    expect(delta("pollchat_messages_total")).toBe(3);
    // Each post reaches both members of the lobby.
    expect(delta("pollchat_deliveries_total")).toBe(6);
    expect(delta("pollchat_http_requests_total", { route: "api_messages", status: "201" })).toBe(3);
    expect(delta("pollchat_http_requests_total", { route: "api_poll", status: "200" })).toBe(2);
    expect(delta("pollchat_poll_duration_seconds", {}, "pollchat_poll_duration_seconds_count")).toBe(2);
    expect(valueOf(after, "pollchat_open_polls")).toBe(0);
    // bob's queue holds 2 at most: with his poll acknowledged by nothing, the third post dropped one.
    expect(delta("pollchat_dropped_total", { reason: "queue_full" })).toBeGreaterThanOrEqual(1);
  });

  it("labels requests by a fixed route, never by the raw path", async () => {
    server = await startServer();
    await fetch(`${server.url}/api/secret-path-1`);
    await fetch(`${server.url}/secret-path-2.html`);
    await fetch(`${server.url}/?name=carol&timeout=0`);
    await fetch(`${server.url}/?name=carol&message=hi`);
    await fetch(`${server.url}/api/rooms/lobby/messages`);
    await fetch(`${server.url}/healthz`);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).not.toMatch(/secret/);
    const families = parsePrometheus(text);
    const routes = new Set(families.get("pollchat_http_requests_total")!.samples.map((s) => s.labels.route));
    expect([...routes].sort()).toEqual(["api_room_messages", "healthz", "not_found", "seed_poll", "seed_post", "static"]);
    expect(valueOf(families, "pollchat_http_requests_total", { route: "not_found", status: "404" })).toBe(1);
    expect(valueOf(families, "pollchat_http_requests_total", { route: "static", status: "404" })).toBe(1);
  });

  it("counts SSE streams and TCP connections through their gauges", async () => {
    server = await startServer({ tcpPort: 0 });
    const dave = await joinApi(server.url, "dave");
    // A raw socket: the test decides exactly when the stream's connection ends.
    const stream = await openSocket(server.port);
    stream.write(`GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: ${dave.auth.authorization}\r\n\r\n`);
    const [head] = (await once(stream, "data")) as [Buffer];
    expect(head.toString("latin1")).toMatch(/^HTTP\/1\.1 200 /);
    const socket = await openSocket(server.tcpPort!);
    await once(socket, "data"); // the greeting: the gateway has the connection
    const during = await scrape(server.url);
    expect(valueOf(during, "pollchat_sse_streams")).toBe(1);
    expect(valueOf(during, "pollchat_tcp_connections")).toBe(1);
    stream.destroy();
    socket.destroy();
    let after = await scrape(server.url);
    for (let i = 0; i < 100 && valueOf(after, "pollchat_tcp_connections") + valueOf(after, "pollchat_sse_streams") > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      after = await scrape(server.url);
    }
    expect(valueOf(after, "pollchat_sse_streams")).toBe(0);
    expect(valueOf(after, "pollchat_tcp_connections")).toBe(0);
  });
});
