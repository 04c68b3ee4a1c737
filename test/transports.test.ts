import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { LineClient, SseClient } from "./transport-clients.js";

let server: TestServer | undefined;
const open: { close(): void }[] = [];

afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await server?.close();
  server = undefined;
});

async function start(options: Parameters<typeof startServer>[0] = {}) {
  server = await startServer({ tcpPort: 0, ...options });
  return { url: server.url, tcpPort: server.tcpPort! };
}

function tcp(port: number, name: string): Promise<LineClient> {
  return LineClient.named(port, name).then((c) => {
    open.push({ close: () => c.socket.destroy() });
    return c;
  });
}

function sse(url: string, auth: Record<string, string>, extra: Record<string, string> = {}): SseClient {
  const client = new SseClient(`${url}/api/events`, { ...auth, ...extra });
  open.push(client);
  return client;
}

type Polled = { id: number; type: string; from: string; to?: string; text: string };

/** Polls with a cursor until `count` chat messages (or one passing `until`) arrived; bounded by `rounds`. */
async function pollMessages(url: string, auth: Record<string, string>, cursor: number, count: number, rounds = 200, until?: (m: Polled) => boolean) {
  const got: Polled[] = [];
  const done = () => (until ? got.some(until) : got.filter((m) => m.type === "message").length >= count);
  for (let i = 0; i < rounds && !done(); i++) {
    const res = await fetch(`${url}/api/poll?cursor=${cursor}&timeout=2000`, { headers: auth });
    const body = await res.json();
    got.push(...body.messages);
    cursor = body.cursor;
  }
  return got;
}

describe("three transports, one room", () => {
  it("delivers every message from TCP, long-poll and SSE to all three in the same id order", async () => {
    const { url, tcpPort } = await start();
    const poller = await joinApi(url, "poller");
    const streamer = await joinApi(url, "streamer");
    const stream = sse(url, streamer.auth);
    await stream.waitFor((e) => e.event === "join" && JSON.parse(e.data).from === "streamer", "streamer's join");
    const line = await tcp(tcpPort, "liner");

    line.send("one from tcp\n");
    await stream.waitFor((e) => JSON.parse(e.data).text === "one from tcp", "tcp's message on SSE");
    expect((await postJson(`${url}/api/messages`, { text: "two from poll" }, poller.auth)).status).toBe(201);
    await stream.waitFor((e) => JSON.parse(e.data).text === "two from poll", "poll's message on SSE");
    expect((await postJson(`${url}/api/messages`, { text: "three from sse" }, streamer.auth)).status).toBe(201);
    line.send("four from tcp\n");

    const polled = await pollMessages(url, poller.auth, poller.cursor, 4);
    const streamed = (await stream.waitFor((e) => JSON.parse(e.data).text === "four from tcp", "the last on SSE"), stream.events)
      .map((e) => JSON.parse(e.data))
      .filter((m) => m.type === "message");
    const polledMessages = polled.filter((m) => m.type === "message");
    const texts = ["one from tcp", "two from poll", "three from sse", "four from tcp"];
    expect(polledMessages.map((m) => m.text)).toEqual(texts);
    expect(streamed.map((m) => m.text)).toEqual(texts);
    expect(streamed.map((m) => m.id)).toEqual(polledMessages.map((m) => m.id));
    expect([...polledMessages.map((m) => m.id)].sort((a, b) => a - b)).toEqual(polledMessages.map((m) => m.id));
    // SSE event ids are the message ids.
    expect(stream.events.filter((e) => e.event === "message").map((e) => Number(e.id))).toEqual(polledMessages.map((m) => m.id));

    // TCP sees the others' lines in the same order, and no echo of its own.
    await line.waitFor((l) => l === "streamer : three from sse", "the SSE client's line");
    const chat = line.lines.filter((l) => / : /.test(l));
    expect(chat).toEqual(["poller : two from poll", "streamer : three from sse"]);
  });

  it("answers /who, /rooms, /join and @name on TCP, and exit closes the connection", async () => {
    const { url, tcpPort } = await start();
    const bob = await joinApi(url, "bob");
    const alice = await tcp(tcpPort, "alice");
    alice.send("/who\n");
    await alice.waitFor((l) => l === "* members of lobby: alice, bob", "/who");
    alice.send("/rooms\n");
    await alice.waitFor((l) => l === "* rooms: lobby (2)", "/rooms");
    alice.send("@bob psst\n");
    const got = await pollMessages(url, bob.auth, bob.cursor, 0, 20, (m) => m.type === "private");
    expect(got.find((m) => m.type === "private")).toMatchObject({ from: "alice", to: "bob", text: "psst" });
    alice.send("/join dev\n");
    await alice.waitFor((l) => l === "* alice joined dev", "the join of dev");
    alice.send("in dev\n");
    const history = await (await fetch(`${url}/api/rooms/dev/messages`)).json();
    expect(history.messages.map((m: { text: string }) => m.text)).toContain("in dev");
    alice.send("exit\n");
    await alice.waitFor((l) => l === "Bye", "Bye");
    await alice.closed;
    // The connection was the session: its name is free again.
    expect((await postJson(`${url}/api/join`, { name: "alice" })).status).toBe(200);
  });

  it("greets with the client's own address and port", async () => {
    const { tcpPort } = await start();
    const c = new LineClient(tcpPort);
    open.push({ close: () => c.socket.destroy() });
    const greeting = await c.waitFor((l) => l.startsWith("Hello "), "the greeting");
    expect(greeting).toBe(`Hello ${c.socket.localAddress}:${c.socket.localPort}`);
  });

  it("reads CRLF lines and lines split across packets", async () => {
    const { url, tcpPort } = await start();
    const reader = await joinApi(url, "reader");
    const c = new LineClient(tcpPort);
    open.push({ close: () => c.socket.destroy() });
    await c.waitFor((l) => l === "What is your name?");
    c.send("tel");
    c.send("net\r\n");
    await c.waitFor((l) => l === "* telnet joined lobby", "join after a split name");
    c.send("hel");
    await new Promise((r) => setImmediate(r));
    c.send("lo wor");
    c.send("ld\r\nsecond\r");
    c.send("\n");
    const got = await pollMessages(url, reader.auth, reader.cursor, 2);
    expect(got.filter((m) => m.type === "message").map((m) => m.text)).toEqual(["hello world", "second"]);
  });

  it("refuses a TCP name that an HTTP client uses, and asks again", async () => {
    const { url, tcpPort } = await start();
    expect((await fetch(`${url}/?name=Carol&timeout=0`)).status).toBe(200);
    const c = new LineClient(tcpPort);
    open.push({ close: () => c.socket.destroy() });
    await c.waitFor((l) => l === "What is your name?");
    c.send("carol\n");
    await c.waitFor((l) => l.startsWith("error name_taken"), "name_taken");
    c.send("bad name!\n");
    await c.waitFor((l) => l.startsWith("error invalid_name"), "invalid_name");
    c.send("carol2\n");
    await c.waitFor((l) => l === "* carol2 joined lobby", "join with a free name");
    // And HTTP cannot speak as the TCP client's name.
    expect((await fetch(`${url}/?name=carol2&message=impostor`)).status).toBe(401);
  });

  it("drops an overlong line and a line that is not UTF-8 with an error, and carries on", async () => {
    const { url, tcpPort } = await start({ maxMessage: 10 });
    const reader = await joinApi(url, "reader");
    const c = await tcp(tcpPort, "writer");
    c.send("x".repeat(200) + "\n");
    await c.waitFor((l) => l.startsWith("error message_too_long"), "too long (bytes)");
    c.send("y".repeat(11) + "\n");
    await c.waitFor((l) => l.startsWith("error message_too_long") && c.lines.filter((x) => x.startsWith("error message_too_long")).length === 2, "too long (chars)");
    c.socket.write(Buffer.from([0xff, 0xfe, 0x41, 0x0a]));
    await c.waitFor((l) => l.startsWith("error bad_encoding"), "bad encoding");
    c.send("fine\n");
    const got = await pollMessages(url, reader.auth, reader.cursor, 1);
    expect(got.filter((m) => m.type === "message").map((m) => m.text)).toEqual(["fine"]);
  });
});

describe("TCP gateway limits", () => {
  it("reads nothing after exit, even in the same packet", async () => {
    const { url, tcpPort } = await start();
    const watcher = await joinApi(url, "watcher");
    const named = await tcp(tcpPort, "named");
    named.send("exit\nafter exit\n");
    await named.closed;
    const unnamed = new LineClient(tcpPort);
    open.push({ close: () => unnamed.socket.destroy() });
    await unnamed.waitFor((l) => l === "What is your name?");
    unnamed.send("exit\nghost\nboo\n");
    await unnamed.closed;
    expect(unnamed.lines).toContain("Bye");
    expect(server!.chat.hub.session("ghost")).toBeUndefined();
    const polled = await (await fetch(`${url}/api/poll?cursor=${watcher.cursor}&timeout=0`, { headers: watcher.auth })).json();
    expect(polled.messages.map((m: { text: string; from: string }) => `${m.from}:${m.text}`)).not.toContain("named:after exit");
    expect(polled.messages.some((m: { from: string }) => m.from === "ghost")).toBe(false);
  });

  it("refuses the lines of a client that sends without reading, and holds its output to the cap", async () => {
    const maxPendingBytes = 8 * 1024;
    const { tcpPort } = await start({ maxPendingBytes, rate: 1 });
    const flooder = await tcp(tcpPort, "flooder");
    flooder.socket.pause();
    // 2 MB of one-character lines: each would be answered "error rate_limited".
    flooder.send("x\n".repeat(1024 * 1024));
    let largest = 0;
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 25));
      largest = Math.max(largest, server!.chat.tcp!.largestPendingOutput());
    }
    expect(largest).toBeLessThanOrEqual(maxPendingBytes + 200);
    flooder.socket.resume();
    await flooder.waitFor((l) => /^error not_reading: \d+ lines refused/.test(l), "the not_reading notice", 10_000);
    // 2 MB through a paused reader takes seconds on a loaded 2-core machine: the wait above is the bound.
  }, 20_000);

  it("closes its side too after a goodbye, even when the peer keeps its half open", async () => {
    const { tcpPort } = await start();
    const peer = connect({ port: tcpPort, host: "127.0.0.1", allowHalfOpen: true });
    open.push({ close: () => peer.destroy() });
    let text = "";
    peer.setEncoding("utf8").on("data", (d: string) => (text += d));
    const ended = new Promise((r) => peer.once("end", r));
    peer.write("exit\n");
    await ended;
    expect(text).toContain("Bye\n");
    // The server freed the connection although this peer never closed its half.
    for (let i = 0; i < 100 && server!.chat.tcp!.connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server!.chat.tcp!.connections).toBe(0);
  });

  it("turns away connections past the per-address cap", async () => {
    const { tcpPort } = await start({ maxConnectionsPerIp: 2 });
    await tcp(tcpPort, "one");
    await tcp(tcpPort, "two");
    const third = new LineClient(tcpPort);
    open.push({ close: () => third.socket.destroy() });
    await third.waitFor((l) => l === "* too many connections from your address", "the refusal");
    await third.closed;
  });
});

describe("SSE", () => {
  it("sends the stream headers and resumes after Last-Event-ID with exactly the missed ids", async () => {
    const { url } = await start();
    const viewer = await joinApi(url, "viewer");
    const poster = await joinApi(url, "poster");
    const res = await fetch(`${url}/api/events`, { headers: viewer.auth });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("cache-control")).toMatch(/no-cache/);
    expect(res.headers.get("x-accel-buffering")).toBe("no");
    await res.body?.cancel();

    const first = sse(url, viewer.auth);
    const ids: number[] = [];
    for (const text of ["a", "b"]) ids.push((await postJson(`${url}/api/messages`, { text }, poster.auth)).body.id);
    const seenB = await first.waitFor((e) => e.event === "message" && JSON.parse(e.data).text === "b", "b");
    first.close();
    for (const text of ["c", "d", "e"]) ids.push((await postJson(`${url}/api/messages`, { text }, poster.auth)).body.id);

    const again = sse(url, viewer.auth, { "Last-Event-ID": seenB.id! });
    await again.waitFor((e) => JSON.parse(e.data).text === "e", "e");
    const resumed = again.events.map((e) => Number(e.id));
    expect(resumed).toEqual(ids.slice(2));
  });

  it("replays what a dead connection had been sent but its reader never got, after Last-Event-ID", async () => {
    const { url } = await start({ rate: 1e6 });
    const port = server!.port;
    const viewer = await joinApi(url, "viewer");
    const poster = await joinApi(url, "poster");
    // A raw stream that reads its first event, then stops reading and dies.
    const raw = connect(port, "127.0.0.1");
    raw.write(`GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${viewer.token}\r\n\r\n`);
    let text = "";
    raw.setEncoding("utf8");
    const lastSeen = await new Promise<string>((resolve) => {
      raw.on("data", (d: string) => {
        text += d;
        const m = /id: (\d+)\n/.exec(text);
        if (m) {
          raw.pause();
          resolve(m[1]!);
        }
      });
    });
    const ids: number[] = [];
    for (let i = 0; i < 150; i++) ids.push((await postJson(`${url}/api/messages`, { text: `${i} ${"z".repeat(1500)}` }, poster.auth)).body.id);
    raw.destroy();
    const again = sse(url, viewer.auth, { "Last-Event-ID": lastSeen });
    await again.waitFor((e) => Number(e.id) === ids.at(-1), "the last message");
    const replayed = again.events.filter((e) => e.event === "message").map((e) => Number(e.id));
    expect(again.events.some((e) => e.event === "gap")).toBe(false);
    expect(replayed).toEqual(ids);
  });

  it("resumes from ?cursor= too, and a cursor from before a restart starts with a gap", async () => {
    const { url } = await start();
    const viewer = await joinApi(url, "viewer");
    const stream = sse(url, viewer.auth, {});
    const poster = await joinApi(url, "poster2");
    await postJson(`${url}/api/messages`, { text: "x" }, poster.auth);
    await stream.waitFor((e) => JSON.parse(e.data).text === "x");
    stream.close();
    const behind = new SseClient(`${url}/api/events?cursor=1`, viewer.auth);
    open.push(behind);
    const gap = await behind.waitFor((e) => e.event === "gap", "a gap");
    expect(JSON.parse(gap.data).missed).toBeNull();
  });

  it("sends a heartbeat comment and counts the stream as presence", async () => {
    // A TTL well above the time from the join to the stream's opening on a busy machine.
    const { url } = await start({ heartbeatMs: 250, sessionTtlMs: 500 });
    const viewer = await joinApi(url, "viewer");
    const res = await fetch(`${url}/api/events`, { headers: viewer.auth });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (let i = 0; i < 50 && !text.includes(": heartbeat"); i++) text += decoder.decode((await reader.read()).value);
    expect(text).toContain(": heartbeat\n\n");
    // Six heartbeats are three session TTLs: the open stream kept the session alive.
    for (let beats = 0, reads = 0; beats < 6 && reads < 100; reads++) {
      beats += decoder.decode((await reader.read()).value).split(": heartbeat").length - 1;
    }
    expect(server!.chat.hub.session("viewer")).toBeDefined();
    await reader.cancel();
  }, 15_000);

  it("needs a token", async () => {
    const { url } = await start();
    expect((await fetch(`${url}/api/events`)).status).toBe(401);
  });
});

describe("a client that stops reading", () => {
  it("costs bounded memory, gets a gap when it reads again, and slows nobody else", async () => {
    const maxQueue = 200;
    const maxPendingBytes = 16 * 1024;
    const { url, tcpPort } = await start({ rate: 1e9, maxQueue, maxPendingBytes, presenceLimit: 10 });
    const watcher = await joinApi(url, "watcher");
    const slow = await tcp(tcpPort, "slow");
    slow.socket.pause();
    const fast = await tcp(tcpPort, "fast");
    const poster = await tcp(tcpPort, "poster");

    // The poster sends 10,000 long lines in batches; the watcher long-polls with a cursor
    // after each batch and must see every message, in order, with no gap.
    const total = 10_000;
    const batchSize = 100;
    const body = "m".repeat(1000);
    let cursor = watcher.cursor;
    let seen = 0;
    let largestPending = 0;
    for (let sent = 0; sent < total; sent += batchSize) {
      let batch = "";
      for (let i = sent; i < sent + batchSize; i++) batch += `${i} ${body}\n`;
      poster.send(batch);
      for (let round = 0; round < 100 && seen < sent + batchSize; round++) {
        const res = await fetch(`${url}/api/poll?cursor=${cursor}&timeout=2000`, { headers: watcher.auth });
        const { messages, cursor: next } = await res.json();
        for (const m of messages) {
          expect(m.type).not.toBe("gap");
          if (m.type === "message") expect(Number(m.text.split(" ")[0])).toBe(seen++);
        }
        cursor = next;
      }
      largestPending = Math.max(largestPending, server!.chat.tcp!.largestPendingOutput());
      expect(server!.chat.hub.session("slow")!.queue.length).toBeLessThanOrEqual(maxQueue + 1);
    }
    expect(seen).toBe(total);
    await fast.waitFor((l) => l.startsWith(`poster : ${total - 1} `), "the fast reader's last line", 20_000);

    // What waits for the slow reader in the server is capped: its queue and one write past the cap.
    expect(largestPending).toBeLessThanOrEqual(maxPendingBytes + 2 * (body.length + 20));
    expect(server!.chat.hub.session("slow")!.queue.length).toBeLessThanOrEqual(maxQueue + 1);

    slow.socket.resume();
    await slow.waitFor((l) => /^\* \d+ messages missed$/.test(l), "the gap line", 20_000);
    await slow.waitFor((l) => l.startsWith(`poster : ${total - 1} `), "the slow reader's last line", 20_000);
    const missed = Number(/^\* (\d+) messages missed$/.exec(slow.lines.find((l) => l.includes("messages missed"))!)![1]);
    const received = slow.lines.filter((l) => l.startsWith("poster : ")).length;
    // Nothing vanished silently: what it got plus what it was told it missed covers everything.
    expect(received + missed).toBeGreaterThanOrEqual(total);
  }, 60_000);
});

describe("shutdown", () => {
  it("closes SSE streams and TCP connections with a reason", async () => {
    const { url, tcpPort } = await start();
    const viewer = await joinApi(url, "viewer");
    const stream = sse(url, viewer.auth);
    await stream.waitFor((e) => e.event === "join", "the stream's first event");
    const line = await tcp(tcpPort, "liner");
    const closing = server!.close();
    const close = await stream.waitFor((e) => e.event === "close", "the close event");
    expect(JSON.parse(close.data)).toEqual({ reason: "server shutting down" });
    await line.waitFor((l) => l === "* server shutting down", "the TCP goodbye");
    await line.closed;
    await closing;
  });
});

describe("TCP and --data-dir", () => {
  it("does not bring a TCP session back after a crash: the name is free again", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "pollchat-tcp-"));
    try {
      const { url, tcpPort } = await start({ dataDir: dir });
      const api = await joinApi(url, "webuser");
      const liner = await tcp(tcpPort, "liner");
      liner.send("from tcp\n");
      await pollMessages(url, api.auth, api.cursor, 1);
      await server!.chat.store!.durable();
      // A second server on the same log, the first never closed: as after kill -9, whose
      // lock names a dead process (here the first server lives in this process: its lock goes).
      await rm(join(dir, "pollchat.lock"));
      const after = await startServer({ dataDir: dir });
      try {
        expect(after.chat.hub.session("webuser")).toBeDefined();
        expect(after.chat.hub.session("liner")).toBeUndefined();
        const history = await (await fetch(`${after.url}/api/rooms/lobby/messages`)).json();
        expect(history.messages.map((m: { text: string }) => m.text)).toContain("from tcp");
      } finally {
        await after.close();
      }
    } finally {
      await server?.close();
      server = undefined;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
