import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import type { ChatOptions } from "../src/index.js";
import { slowLog } from "./cluster-log-wrappers.js";
import { get, seedUrl } from "./core-helpers.js";
import { serverPerTest, type TestServer } from "./helpers.js";
import { openSocket } from "./ops-helpers.js";
import { redisPerTest, until } from "./redis-harness.js";

/**
 * A request pipelined behind another waits for its turn (src/http/pipelining.ts).
 * When its connection is gone before then (the client reset it, or the server
 * closed it on a flood), Node may still hand it the dead socket: nothing
 * queued behind a closed connection may act.
 */

const start = serverPerTest();
const startRedis = redisPerTest();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "pollchat-pipelined-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Each engine that serves the seed endpoint: a request that posts is queued the same way on all. */
const ENGINES: [string, () => Promise<ChatOptions>][] = [
  ["local", async () => ({})],
  ["--data-dir", async () => ({ dataDir: tempDir() })],
  ["--redis", async () => ({ redis: (await startRedis()).url, logLevel: "silent" })],
];

const seedGet = (query: string): string => `GET /?${query} HTTP/1.1\r\nHost: t\r\n\r\n`;

/** What one raw connection did, seen from the server: its socket, and each of its requests' responses in order. */
interface Connection {
  client: Socket;
  server: Socket;
  responses: ServerResponse[];
}

/** Opens a raw connection and waits until the server accepted it, so what the test writes next reaches that socket. */
async function connection(server: TestServer): Promise<Connection> {
  const accepted = once(server.chat.server, "connection") as Promise<[Socket]>;
  const client = await openSocket(server.port);
  client.on("error", () => {});
  const [serverSide] = await accepted;
  const responses: ServerResponse[] = [];
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.socket === serverSide) responses.push(res);
  };
  server.chat.server.on("request", onRequest);
  cleanups.push(() => server.chat.server.off("request", onRequest));
  return { client, server: serverSide, responses };
}

/** Resolves once the server's side of the connection has closed (it saw the reset, or closed it itself). */
async function serverClosed(c: Connection): Promise<void> {
  // Not events.once: it would reject on the socket's "error" (the reset), which comes first.
  if (!c.server.closed) await new Promise((resolve) => c.server.once("close", resolve));
}

/** Resolves once the response at the head of the connection has closed: a request queued behind it got its turn by then. */
async function headDone(c: Connection): Promise<void> {
  const head = c.responses[0]!;
  if (!head.closed) await new Promise((resolve) => head.once("close", resolve));
}

/**
 * `name`'s chat messages in the lobby's history, read after a post of another
 * name was answered: a post that acted before it is in the history by then
 * (with --data-dir and --redis too, whose answers come once their batch is stored).
 */
async function postedBy(url: string, name: string): Promise<{ id: number; text: string }[]> {
  const barrier = await get(seedUrl(url, { name: "barrier", message: "after" }));
  expect(barrier.status).toBe(200);
  const res = await fetch(`${url}/api/rooms/lobby/messages?limit=1000`);
  const body = (await res.json()) as { messages: { id: number; type: string; from: string; text: string }[] };
  expect(body.messages.map((m) => m.text)).toContain("after");
  return body.messages.filter((m) => m.type === "message" && m.from === name).map(({ id, text }) => ({ id, text }));
}

/** Ids of the `ok <id>` answers in a raw byte stream of seed answers. */
function answeredIds(raw: string): number[] {
  return [...raw.matchAll(/\r\n\r\nok (\d+)\n/g)].map((m) => Number(m[1]));
}

const texts = (posted: { text: string }[]): string[] => posted.map((m) => m.text);

describe.each(ENGINES)("pipelined requests on a connection that is gone (%s)", (engine, options) => {
  it("a poll and two posts pipelined, then a reset: neither post acts", async () => {
    const server = await start(await options());
    expect((await get(seedUrl(server.url, { name: "w", timeout: 0 }))).status).toBe(200);
    const c = await connection(server);
    // The poll is answered at once; the posts wait behind it. The reset reaches the server's
    // socket with the requests (same process, so before the server reads any), and the
    // poll's answer finishes on a dead socket: the posts' turns come after the connection is gone.
    c.client.write(seedGet("name=w&timeout=0") + seedGet("name=p&message=one") + seedGet("name=p&message=two"));
    c.client.resetAndDestroy();
    await serverClosed(c);
    // All three came in one read, before the reset was seen.
    expect(c.responses.length).toBe(3);
    await headDone(c);
    expect(await postedBy(server.url, "p")).toEqual([]);
  });

  it("two posts pipelined, then a reset: the head is handled as a lone request is; the one queued behind it never acts", async () => {
    const server = await start(await options());
    const c = await connection(server);
    c.client.write(seedGet("name=p&message=one") + seedGet("name=p&message=two"));
    c.client.resetAndDestroy();
    await serverClosed(c);
    expect(c.responses.length).toBe(2);
    await headDone(c);
    const posted = texts(await postedBy(server.url, "p"));
    // The first was read and handled before the reset was seen (so is a lone request whose client resets).
    expect(posted).not.toContain("two");
    expect(posted.length).toBeLessThanOrEqual(1);
  });

  it("40 posts in one write: the server ends the connection, and no post acts after the close", async () => {
    const server = await start({ ...(await options()), rate: 100_000 });
    const c = await connection(server);
    let raw = "";
    c.client.setEncoding("latin1").on("data", (d: string) => (raw += d));
    const closed = new Promise((resolve) => c.client.once("close", resolve));
    let requests = "";
    for (let i = 0; i < 40; i++) requests += seedGet(`name=p&message=m${i}`);
    c.client.write(requests);
    // 1 at the head, 16 waiting, 1 refused, 16 dropped: the next one ends the connection.
    await closed;
    await serverClosed(c);
    await headDone(c);
    const posted = await postedBy(server.url, "p");
    // Only the head acted: it was handled as it was read, before the flood behind it ended the connection.
    expect(texts(posted)).toEqual(["m0"]);
    // Nothing answered that did not act; locally the head's answer went out at once, before the close.
    const answered = answeredIds(raw);
    for (const id of answered) expect(posted.map((m) => m.id)).toContain(id);
    if (engine === "local") expect(answered).toEqual([posted[0]!.id]);
  });
});

describe("lines sent over TCP while a name settles through the shared log (--redis)", () => {
  it("a reset meanwhile: the lines that waited behind the name do nothing", async () => {
    // The claim of a name is settled once this process reads it back from the log: half a second here.
    const log = new MemoryLog();
    const server = await start({ tcpPort: 0, sharedLog: slowLog(log.client(), { readDelayMs: 500 }) });
    const client = await openSocket(server.tcpPort!);
    client.on("error", () => {});
    // The greeting says the server has the connection and reads it.
    await new Promise((resolve) => client.once("data", resolve));
    // "alice" starts a claim; the next lines wait for it (a name, then what would be its messages).
    const before = log.tip();
    client.write("alice\nbobby\nhello there\n");
    // Reset once the claim is in the log, before this process has read it back.
    expect(await until(async () => log.tip() !== before)).toBe(true);
    client.resetAndDestroy();
    const lobby = async (): Promise<string[]> => {
      const res = await fetch(`${server.url}/api/rooms/lobby/messages?limit=1000`);
      if (res.status === 404) return []; // no one has joined it yet
      const body = (await res.json()) as { messages: { type: string; from: string }[] };
      return body.messages.map((m) => `${m.type} ${m.from}`);
    };
    // The claim was in flight when the connection went: it settles, and the session goes with the connection.
    expect(await until(async () => (await lobby()).includes("leave alice"))).toBe(true);
    // Whatever the waiting lines did is in the log before this post, and applied by its answer.
    expect((await get(seedUrl(server.url, { name: "barrier", message: "after" }))).status).toBe(200);
    expect((await lobby()).filter((m) => !m.endsWith(" barrier"))).toEqual(["join alice", "leave alice"]);
  }, 20_000);
});
