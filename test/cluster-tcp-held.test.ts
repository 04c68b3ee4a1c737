import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Session } from "../src/session.js";
import type { Hub } from "../src/hub.js";
import { resolveOptions } from "../src/config.js";
import { ClusterTcp } from "../src/cluster/cluster-tcp.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { Replica } from "../src/cluster/replica.js";
import { replicaHub } from "../src/cluster/replica-hub.js";
import { TcpConnection } from "../src/tcp/tcp-connection.js";
import { LineClient } from "./transport-clients.js";

/** With --redis, lines a TCP client sends while its name is being settled are held: a bounded number, then the socket is not read. */

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Claims wait for `gate` (a store that takes long; one that never answers if it never opens). */
class GatedClaims extends ClusterTcp {
  gate: Promise<void> = new Promise(() => {});
  override claim(name: string, address: string): Promise<Session> {
    return this.gate.then(() => super.claim(name, address));
  }
}

async function gateway(rate = 1000): Promise<{ port: number; connection: () => TcpConnection | undefined; claims: GatedClaims; hub: Hub }> {
  const log = new MemoryLog();
  const { hub, clock } = replicaHub(resolveOptions({ rate }), { lastId: 0, at: 0 });
  const replica = new Replica(hub, log.client(), clock, { origin: "p0", warn: () => {} });
  await replica.start();
  const claims = new GatedClaims(replica, hub, rate);
  let connection: TcpConnection | undefined;
  const server: Server = createServer((socket) => {
    socket.on("error", () => {});
    connection = new TcpConnection(hub, socket, {
      maxMessage: 2000,
      maxPendingBytes: 64 * 1024,
      maxQueue: 1000,
      requireToken: false,
      nameTimeoutMs: 10_000,
      onUnexpected: () => {},
      cluster: claims,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    connection?.socket.destroy();
    server.close();
    replica.close();
    hub.close();
  });
  const port = (server.address() as { port: number }).port;
  return { port, connection: () => connection, claims, hub };
}

async function until(test: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const LINE = `${"x".repeat(999)}\n`;

describe("lines held while a TCP name is settled", () => {
  it("a claim that never settles: past the cap the socket is not read, whatever the client sends", async () => {
    const { port, connection } = await gateway();
    const client = new LineClient(port);
    cleanups.push(() => client.socket.destroy());
    await client.waitFor((l) => l === "What is your name?");
    // 4 MB of lines behind the name.
    client.send(`stuck\n${LINE.repeat(4096)}`);
    await until(() => connection()?.socket.isPaused() === true, "the server to stop reading");
    // The cap (64 lines or 64 KiB), plus what reads already under way brought: nowhere near what was sent.
    expect(connection()!.socket.bytesRead).toBeLessThan(512 * 1024);
    expect(client.socket.destroyed).toBe(false);
  });

  it("once the claim settles, the held lines are posted in order and the socket is read again", async () => {
    const { port, connection, claims, hub } = await gateway();
    let open = (): void => {};
    claims.gate = new Promise((resolve) => (open = resolve));
    const client = new LineClient(port);
    cleanups.push(() => client.socket.destroy());
    await client.waitFor((l) => l === "What is your name?");
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i} ${"y".repeat(990)}`);
    client.send(`gated\n${lines.join("\n")}\n`);
    await until(() => connection()?.socket.isPaused() === true, "the server to stop reading");
    open();
    await until(() => hub.session("gated")?.rooms.has("lobby") === true, "the claim");
    const texts = (): string[] =>
      hub
        .roomWithHistory("lobby")!
        .history(Number.MAX_SAFE_INTEGER, 1000)
        .filter((e) => e.message.type === "message")
        .map((e) => e.message.text);
    await until(() => texts().length === lines.length, "every line posted", 5000);
    expect(texts()).toEqual(lines);
    expect(connection()!.socket.isPaused()).toBe(false);
  });
});
