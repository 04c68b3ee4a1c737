import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { createServer, type Socket } from "node:net";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { resolveOptions } from "../src/config.js";
import { Hub } from "../src/hub.js";
import { Envelope } from "../src/message.js";
import { pumpSubscription } from "../src/subscription-stream.js";
import { get, nextRequest, seedPollJson, seedPost, seedUrl, type TextAnswer } from "./core-helpers.js";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson, serverPerTest } from "./helpers.js";
import { openSocket, scrape, valueOf } from "./ops-helpers.js";

/** Issue 10, items 1, 2 and 8: no stream writes after its end, no cut answer is lost, no held poll is unbounded. */

const start = serverPerTest();
const startCli = cliPerTest();

/** Size of the messages that fill queues here: well under the JSON API's 64 KiB body. */
const BIG = 60_000;
/** Queues of several MB here: the queued bytes' caps (tested in hardening-queue-bytes.test.ts) are raised out of the way. */
const BIG_OPTIONS = { rate: 100_000, maxMessage: BIG, maxQueue: 10_000, maxQueueBytes: 64 * 1024 * 1024, maxQueuedBytesPerIp: 0 };
/** Spec §8: one poll answer carries at most 1 MiB of body (at least one message). */
const ANSWER_MAX_BYTES = 1024 * 1024;

/** Posts `count` messages of `size` characters into the lobby as `poster`; returns their ids. */
async function flood(url: string, poster: string, count: number, size: number): Promise<number[]> {
  const { auth } = await joinApi(url, poster);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const text = `${String(i).padStart(6, "0")}:${"m".repeat(size - 7)}`;
    const r = await postJson(`${url}/api/messages`, { text }, auth);
    if (r.status !== 201) throw new Error(`post ${i}: ${r.status} ${JSON.stringify(r.body)}`);
    ids.push(r.body.id);
  }
  return ids;
}

/** The ids in a text poll body, from each line's number ("p1 : 000012:mmm…" is the 12th of `byIndex`). */
function idsIn(body: string, byIndex: readonly number[]): number[] {
  return [...body.matchAll(/^\S+ : (\d{6}):/gm)].map((m) => byIndex[Number(m[1])]!);
}

/** Polls `name` without a cursor as JSON (each answer read whole) until one comes back empty; returns the ids received. */
async function drainJson(url: string, name: string): Promise<number[]> {
  const got: number[] = [];
  for (let i = 0; i < 50; i++) {
    const r = await seedPollJson(url, name, { timeout: 0 });
    expect(r.status).toBe(200);
    if (r.messages.length === 0) return got;
    got.push(...r.messages.map((m) => m.id));
  }
  throw new Error("still answering after 50 polls");
}

describe("SSE: nothing writes to a stream after its end (item 1)", () => {
  it("a stream whose session ends while its output is still buffered does not take the process down", async () => {
    await ensureBuilt();
    // The built server in its own process, so a crash is an exit we can see, with a 50 ms heartbeat and
    // room for everything in the response's buffer (so each heartbeat tries to write).
    const index = pathToFileURL(CLI.replace(/cli\.js$/, "index.js")).href;
    const script = `import { createChatServer } from ${JSON.stringify(index)};
      const chat = createChatServer({ heartbeatMs: 50, maxPendingBytes: 64 * 1024 * 1024, rate: 100000, maxMessage: ${BIG} });
      const { url } = await chat.listen(0, "127.0.0.1");
      console.log("pollchat listening on " + url);`;
    const cli = await startCli("--input-type=module", ["-e", script]);
    const { token, auth } = await joinApi(cli.url, "slow");
    const stream = await openSocket(Number(new URL(cli.url).port));
    stream.on("error", () => {});
    let tail = ""; // the last bytes received: enough to see how the stream ended
    stream.setEncoding("latin1").on("data", (d: string) => (tail = (tail + d).slice(-300)));
    stream.write(`GET /api/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    await once(stream, "data");
    stream.pause(); // a client that reads slowly: from here on nothing is read
    // ~8 MB for it: more than loopback's buffers take from a reader that reads nothing.
    await flood(cli.url, "poster", 140, BIG);
    const left = await postJson(`${cli.url}/api/leave`, {}, auth);
    expect(left.status).toBe(200);
    // Ten heartbeats' time: each one found the response ended but not yet flushed.
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(cli.child.exitCode, cli.stderr()).toBe(null);
      expect((await fetch(`${cli.url}/healthz`)).status).toBe(200);
    }
    // The stream then ends as it should: everything, then its close event, then the chunked body's end.
    stream.resume();
    const closing = `event: close\ndata: {"reason":"session ended"}\n\n\r\n0\r\n\r\n`;
    await waitFor(() => tail.endsWith(closing), 5000);
    expect(cli.child.exitCode).toBe(null);
    stream.destroy();
  }, 20_000);

  it("the queue pump stops at its stream's end: a message published after it writes nothing", async () => {
    const hub = new Hub(resolveOptions({ presenceLimit: 0 }));
    const client = hub.joinWithToken("reader", "lobby", { resumable: false });
    const poster = hub.joinWithToken("poster", "lobby", { resumable: false });
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    const accepted = once(server, "connection") as Promise<[Socket]>;
    const peer = await openSocket(port);
    const [socket] = await accepted;
    const errors: Error[] = [];
    socket.on("error", (e) => errors.push(e));
    let ended = 0;
    pumpSubscription(hub.open(client), socket, { format: (e) => e.line, maxPending: 65536, onEnd: () => ended++ });
    socket.end("bye\n");
    hub.post(poster, { text: "after the end" });
    await once(socket, "finish");
    hub.post(poster, { text: "after the finish" });
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual([]);
    // Nothing is left listening for the client: a stopped pump holds no memory.
    expect(client.wakerCount).toBe(0);
    expect(client.queue.length).toBe(2); // still queued: the stream never took them
    peer.destroy();
    server.close();
    hub.close();
  });
});

describe("a poll answer is acknowledged only once handed over, and bounded (item 2)", () => {
  it("a poll without a cursor cut mid-body loses nothing that was not handed to the kernel", async () => {
    const server = await start(BIG_OPTIONS);
    await get(seedUrl(server.url, { name: "x", timeout: 0 }));
    // ~8 MB from two posters: several answers, and more than loopback's buffers take from a reader that stops.
    const ids = [...(await flood(server.url, "p1", 70, BIG)), ...(await flood(server.url, "p2", 70, BIG))];
    const client = server.chat.hub.session("x")!;
    const socket = await openSocket(server.port);
    socket.on("error", () => {});
    // The client reads ~300 KB, then no more.
    let read = 0;
    socket.on("data", (c: Buffer) => {
      read += c.length;
      if (read >= 300_000) socket.pause();
    });
    // One poll at a time on this connection, each sent once the one before was handed over, until one is not.
    let cut: ServerResponse | undefined;
    for (let i = 0; i < 20 && cut === undefined; i++) {
      const handled = nextRequest(server);
      socket.write("GET /?name=x HTTP/1.1\r\nHost: t\r\n\r\n");
      const [, res] = await handled;
      // Handed over whole (finished), or stuck once the client stopped reading.
      await waitFor(() => res.writableFinished || socket.isPaused(), 3000);
      if (!res.writableFinished) cut = res;
    }
    expect(cut, "an answer stuck behind a reader that stopped").toBeDefined();
    // What the server had acknowledged when the connection died: the answers handed over whole.
    const ackedUpTo = client.queue.since;
    expect(ackedUpTo).toBeLessThan(ids[ids.length - 1]!);
    socket.destroy();
    await once(cut!, "close");
    // Everything after that comes with the next polls: the cut answer's messages too.
    const again = await drainJson(server.url, "x");
    const missing = ids.filter((id) => id > ackedUpTo && !again.includes(id));
    expect(missing).toEqual([]);
  }, 30_000);

  it("an answer holds at most 1 MiB of body (plus one message); the next poll goes on from its X-Cursor", async () => {
    const server = await start(BIG_OPTIONS);
    await get(seedUrl(server.url, { name: "x", timeout: 0 }));
    const { auth, cursor } = await joinApi(server.url, "j");
    const ids = await flood(server.url, "p1", 50, BIG); // ~3 MB
    // The seed's text poll, without a cursor: each answer is read whole, so each is acknowledged.
    const seen: number[] = [];
    for (let i = 0; i < 10 && seen.length < ids.length; i++) {
      const r = await get(seedUrl(server.url, { name: "x", timeout: 0 }));
      const bytes = Buffer.byteLength(r.text);
      expect(bytes).toBeGreaterThan(0);
      expect(bytes).toBeLessThanOrEqual(ANSWER_MAX_BYTES + BIG + 100);
      const got = idsIn(r.text, ids);
      expect(Number(r.headers.get("x-cursor"))).toBe(got[got.length - 1]);
      seen.push(...got);
    }
    expect(seen).toEqual(ids);
    // The JSON API's poll, with a cursor: the same bound, and the cursor says the last id included.
    let next = cursor;
    const viaApi: number[] = [];
    for (let i = 0; i < 10 && viaApi.length < ids.length; i++) {
      const res = await fetch(`${server.url}/api/poll?cursor=${next}&timeout=0`, { headers: auth });
      const text = await res.text();
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(ANSWER_MAX_BYTES + BIG + 200);
      const body = JSON.parse(text) as { messages: { id: number; type: string }[]; cursor: number };
      const got = body.messages.filter((m) => m.type === "message").map((m) => m.id);
      expect(body.messages.length).toBeGreaterThan(0);
      expect(body.cursor).toBe(body.messages[body.messages.length - 1]!.id);
      expect(res.headers.get("x-cursor")).toBe(String(body.cursor));
      next = body.cursor;
      viaApi.push(...got);
    }
    expect(viaApi).toEqual(ids);
  }, 30_000);

  it("answerEntries takes whole messages up to 1 MiB of body, and always at least one", async () => {
    const { answerEntries, pollBody, ANSWER_MAX_BYTES: bound } = await import("../src/http/poll-answer.js");
    expect(bound).toBe(ANSWER_MAX_BYTES);
    const entry = (id: number, chars: number): Envelope =>
      new Envelope({ id, type: "message", room: "lobby", from: "a", text: "é".repeat(chars), ts: 0 });
    const ids = (entries: readonly Envelope[]): number[] => entries.map((e) => e.id);
    // 300,000 "é" are 600,000 bytes: two of them pass 1 MiB, so the second waits.
    const big = [entry(1, 300_000), entry(2, 300_000), entry(3, 1)];
    expect(ids(answerEntries(big, "text"))).toEqual([1]);
    expect(ids(answerEntries(big, "json"))).toEqual([1]);
    // A message longer than the bound still goes, alone.
    expect(ids(answerEntries([entry(7, 700_000), entry(8, 1)], "text"))).toEqual([7]);
    // Under the bound everything goes; nothing queued, nothing taken.
    const small = [entry(1, 10), entry(2, 10), entry(3, 10)];
    expect(ids(answerEntries(small, "json"))).toEqual([1, 2, 3]);
    expect(answerEntries([], "text")).toEqual([]);
    // Up to the byte: as many 1000-character lines as fit in 1 MiB, and not one more.
    const line = Buffer.byteLength(entry(1, 1000).line);
    const fill = (n: number): Envelope[] => Array.from({ length: n }, (_, i) => entry(i + 1, 1000));
    const fitting = Math.floor(ANSWER_MAX_BYTES / line);
    expect(answerEntries(fill(fitting + 5), "text").length).toBe(fitting);
    const json = pollBody(answerEntries(fill(2000), "json"), "json", 2000);
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(ANSWER_MAX_BYTES);
    expect((JSON.parse(json) as { cursor: number }).cursor).toBe(2000);
  });
});

describe("held polls: at most 4 per session, none outliving its connection (item 8)", () => {
  it("300 polls pipelined on one connection: one is held, the server ends the connection, and nothing stays held", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): number => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const server = await start();
      await get(seedUrl(server.url, { name: "x", timeout: 0 }));
      const socket = await openSocket(server.port);
      socket.on("error", () => {});
      let received = "";
      socket.setEncoding("latin1").on("data", (d: string) => (received += d));
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.write("GET /?name=x&timeout=30000 HTTP/1.1\r\nHost: t\r\n\r\n".repeat(300));
      // Only the request at the head of a connection is handled (that poll is held); 16 may wait behind
      // it; the next is refused, and 16 more after the refusal make the server end the connection itself.
      await within(closed, 3000);
      expect(received).not.toContain("HTTP/1.1 200 "); // the held poll was never answered: it died with its socket
      // The socket's close released the held poll, and the requests queued behind it never ran.
      await waitFor(async () => valueOf(await scrape(server.url), "pollchat_open_polls") === 0, 1000);
      expect(server.chat.hub.session("x")!.presenceHolds).toBe(0);
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("a fifth held poll of one session answers the oldest at once; the other four wait for a message", async () => {
    const server = await start();
    await get(seedUrl(server.url, { name: "x", timeout: 0 }));
    const polls: Promise<TextAnswer>[] = [];
    for (let i = 0; i < 5; i++) {
      const handled = nextRequest(server);
      polls.push(get(seedUrl(server.url, { name: "x", timeout: 30_000 })));
      await handled;
    }
    const oldest = await within(polls[0]!, 2000);
    expect(oldest.status).toBe(200);
    expect(oldest.text).toBe("");
    expect(valueOf(await scrape(server.url), "pollchat_open_polls")).toBe(4);
    await seedPost(server.url, "y", "hello");
    for (const answer of await within(Promise.all(polls.slice(1)), 2000)) expect(answer.text).toContain("y : hello\n");
  });
});

/** The promise's value, or a rejection after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Polls until `check` holds, every 10 ms, for at most `ms`. */
async function waitFor(check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not so after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
