import { connect, Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ChatOptions } from "../src/index.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";
import { apiPoll } from "./core-helpers.js";
import { LineClient } from "./transport-clients.js";

/**
 * Issue 10 on the TCP gateway: --require-token (item 10, spec §6), control
 * characters that would spoof a sender on a terminal (item 11, spec §3), and
 * writers that stop when the connection ends (item 1's rule, for the gateway).
 */

let server: TestServer | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await server?.close();
  server = undefined;
  vi.restoreAllMocks();
});

async function start(options: ChatOptions = {}): Promise<TestServer & { tcpPort: number }> {
  server = await startServer({ tcpPort: 0, ...options });
  return server as TestServer & { tcpPort: number };
}

function lineClient(port: number): LineClient {
  const client = new LineClient(port);
  sockets.push(client.socket);
  return client;
}

async function named(port: number, name: string): Promise<LineClient> {
  const client = await LineClient.named(port, name);
  sockets.push(client.socket);
  return client;
}

/** Waits for a condition on the server, checked every 10 ms for at most `ms`. */
async function until(what: string, test: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("--require-token on the TCP gateway", () => {
  it("asks for /token first: until then a line names no one and posts nothing", async () => {
    const s = await start({ requireToken: true });
    const watcher = await joinApi(s.url, "watcher");
    const c = lineClient(s.tcpPort);
    await c.waitFor((l) => l.startsWith("Hello "), "the greeting");
    await c.waitFor((l) => l === "Send your token: /token T (from POST /api/join)", "the token prompt");
    c.send("alice\n");
    await c.waitFor((l) => l.startsWith("error unauthorized: "), "a refusal of a bare name");
    c.send("hello everyone\n/token not-a-token\n/token\n");
    await until("four refusals", () => c.lines.filter((l) => l.startsWith("error unauthorized: ")).length === 4);
    expect(s.chat.hub.session("alice")).toBeUndefined();
    expect(s.chat.hub.sessionCount).toBe(1);
    const seen = await apiPoll(s.url, watcher.auth, { cursor: watcher.cursor, timeout: 0 });
    expect(seen.messages.filter((m) => m.type !== "join" || m.from !== "watcher")).toEqual([]);
  });

  it("speaks as the session a token names; closing the connection ends only the connection", async () => {
    const s = await start({ requireToken: true });
    const watcher = await joinApi(s.url, "watcher");
    const dora = await joinApi(s.url, "dora");
    const c = lineClient(s.tcpPort);
    await c.waitFor((l) => l.startsWith("Send your token"), "the token prompt");
    c.send(`/token ${dora.token}\n`);
    await c.waitFor((l) => l === "* you are dora, in lobby", "who it speaks as");
    expect(s.chat.hub.session("dora")!.presenceHolds).toBe(1);

    c.send("hi from nc\n");
    const seen = await apiPoll(s.url, watcher.auth, { cursor: watcher.cursor, timeout: 2000 });
    const said = seen.messages.filter((m) => m.type === "message");
    expect(said.map((m) => [m.from, m.text])).toEqual([["dora", "hi from nc"]]);
    // Others' lines reach the connection as text lines.
    await postJson(`${s.url}/api/messages`, { text: "hello dora" }, watcher.auth);
    await c.waitFor((l) => l === "watcher : hello dora", "watcher's line");

    c.socket.end();
    await c.closed;
    await until("the connection is gone", () => s.chat.tcp!.connections === 0);
    // The web page stays signed in: same session, same token.
    expect(s.chat.hub.session("dora")?.presenceHolds).toBe(0);
    const page = await apiPoll(s.url, dora.auth, { timeout: 0 });
    expect(page.status).toBe(200);
  });

  it("counts as presence while open: the session does not expire under it, and does after it", async () => {
    // A TTL well above the time from the join to /token on a busy machine (the session must not expire before the connection holds it).
    const s = await start({ requireToken: true, sessionTtlMs: 500 });
    const dora = await joinApi(s.url, "dora");
    const c = lineClient(s.tcpPort);
    c.send(`/token ${dora.token}\n`);
    await c.waitFor((l) => l.startsWith("* you are dora"), "who it speaks as");
    // Four times the TTL with no poll: the connection alone keeps it.
    await new Promise((r) => setTimeout(r, 2000));
    expect(s.chat.hub.session("dora")).toBeDefined();
    c.socket.destroy();
    await until("the session expires once nothing holds it", () => s.chat.hub.session("dora") === undefined);
  }, 15_000);

  it("`exit` closes the connection, not the session; the session ending closes the connection", async () => {
    const s = await start({ requireToken: true });
    const dora = await joinApi(s.url, "dora");
    const first = lineClient(s.tcpPort);
    first.send(`/token ${dora.token}\n`);
    await first.waitFor((l) => l.startsWith("* you are dora"), "who it speaks as");
    first.send("exit\n");
    await first.waitFor((l) => l === "Bye", "Bye");
    await first.closed;
    expect(s.chat.hub.session("dora")).toBeDefined();

    const second = lineClient(s.tcpPort);
    second.send(`/token ${dora.token}\n`);
    await second.waitFor((l) => l.startsWith("* you are dora"), "who it speaks as");
    expect((await postJson(`${s.url}/api/leave`, {}, dora.auth)).status).toBe(200);
    await second.waitFor((l) => l === "* your session ended", "the end of the session");
    await second.closed;
  });

  it("without --require-token takes /token T in place of a name, for a name claimed over HTTP", async () => {
    const s = await start();
    const dora = await joinApi(s.url, "dora");
    const c = lineClient(s.tcpPort);
    await c.waitFor((l) => l === "What is your name?", "the name prompt");
    c.send("dora\n");
    await c.waitFor((l) => l.startsWith("error name_taken"), "the claimed name refused");
    c.send(`/token ${dora.token}\n`);
    await c.waitFor((l) => l === "* you are dora, in lobby", "who it speaks as");
  });
});

describe("sessions a TCP connection makes", () => {
  it("count against --max-sessions-per-ip as the peer's address", async () => {
    const s = await start({ maxSessionsPerIp: 1 });
    expect((await fetch(`${s.url}/?name=first&timeout=0`)).status).toBe(200);
    const c = lineClient(s.tcpPort);
    await c.waitFor((l) => l === "What is your name?", "the name prompt");
    c.send("second\n");
    await c.waitFor((l) => l.startsWith("error too_many_sessions: "), "the refusal");
    expect(s.chat.hub.session("second")).toBeUndefined();
  });
});

describe("control characters from a TCP line (§3)", () => {
  it("are refused with an error line, and nobody sees a spoofed sender", async () => {
    const s = await start();
    const bob = await named(s.tcpPort, "bob");
    const mallory = await named(s.tcpPort, "mallory");
    await bob.waitFor((l) => l === "* mallory joined lobby", "mallory's join");
    const spoofs = ["\x1b[2K\x1b[1Galice : hi", "\b\b\b\b\b\b\b\b\b\balice : hi", "\u202eih : ecila", "\x7f\x7falice : hi", "\u009b2Kalice : hi"];
    for (const spoof of spoofs) mallory.send(`${spoof}\n`);
    await until("every spoof refused", () => mallory.lines.filter((l) => l.startsWith("error invalid_text: ")).length === spoofs.length);
    mallory.send("plain\n");
    await bob.waitFor((l) => l === "mallory : plain", "mallory's plain line");
    // Everything bob got after mallory joined: only the plain line, and no control character at all.
    const after = bob.lines.slice(bob.lines.indexOf("* mallory joined lobby") + 1);
    expect(after).toEqual(["mallory : plain"]);
    expect(bob.lines.join("\n")).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
  });
});

describe("the gateway's writers stop when a connection ends", () => {
  /** Every write the process makes to a socket that was already ended or destroyed. */
  function watchLateWrites(): string[] {
    const late: string[] = [];
    const write = Socket.prototype.write;
    vi.spyOn(Socket.prototype, "write").mockImplementation(function (this: Socket, ...args: Parameters<Socket["write"]>) {
      if (this.writableEnded || this.destroyed) late.push(String(args[0]).slice(0, 80));
      return write.apply(this, args);
    });
    return late;
  }

  it("writes nothing after goodbye: not for lines still in the packet after exit", async () => {
    const s = await start({ maxMessage: 10 });
    const c = await named(s.tcpPort, "quitter");
    const late = watchLateWrites();
    c.socket.write(Buffer.concat([Buffer.from("exit\nafter exit\n"), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from("x".repeat(200) + "\n")]));
    await c.waitFor((l) => l === "Bye", "Bye");
    await c.closed;
    expect(c.lines.slice(c.lines.indexOf("Bye"))).toEqual(["Bye"]);
    expect(late).toEqual([]);
  });

  it("writes nothing after goodbye when the server shuts down with connections in rooms", async () => {
    const s = await start();
    const clients = [await named(s.tcpPort, "one"), await named(s.tcpPort, "two"), await named(s.tcpPort, "three")];
    await clients[0]!.waitFor((l) => l === "* three joined lobby", "everyone in");
    const late = watchLateWrites();
    await s.close();
    server = undefined;
    await Promise.all(clients.map((c) => c.closed));
    expect(late).toEqual([]);
  });

  it("cuts a connection that does not read its goodbye, instead of holding it and its timers", async () => {
    const s = await start({ rate: 1000, maxMessage: 60_000, maxPendingBytes: 1024 });
    const sender = await joinApi(s.url, "sender");
    // A peer that names itself, then never reads a byte.
    const peer = connect(s.tcpPort, "127.0.0.1");
    sockets.push(peer);
    peer.on("error", () => {});
    peer.pause();
    peer.write("dora\n");
    await until("the peer is dora", () => s.chat.hub.session("dora")?.presenceHolds === 1);
    // Fill the kernel's buffers towards it until output waits in the server.
    const big = "x".repeat(50_000);
    for (let i = 0; i < 600 && s.chat.tcp!.largestPendingOutput() === 0; i++) {
      expect((await postJson(`${s.url}/api/messages`, { text: big }, sender.auth)).status).toBe(201);
    }
    expect(s.chat.tcp!.largestPendingOutput()).toBeGreaterThan(0);
    // Lines it sends now are read while its output waits: its input is paused and watched.
    peer.write("are you there?\n".repeat(50));
    // Its session ends (as on expiry): the goodbye cannot be delivered, and the connection must not stay.
    s.chat.hub.endSession(s.chat.hub.session("dora")!, "expired");
    await until("the connection is cut", () => s.chat.tcp!.connections === 0, 6000);
  }, 15_000);
});
