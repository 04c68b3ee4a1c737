import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { RedisClient } from "../src/redis/redis-client.js";
import { RedisConnectionError } from "../src/redis/redis-errors.js";
import { RespParser } from "../src/redis/resp-parser.js";

/** The Redis client against a fake server (node:net) that splits, breaks and bends its replies. */

type Handler = (socket: Socket, command: string[], connection: number) => void | Promise<void>;

const servers: { server: Server; sockets: Set<Socket> }[] = [];
const clients: RedisClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  for (const { server, sockets } of servers.splice(0)) {
    for (const socket of sockets) socket.destroy();
    await new Promise((r) => server.close(r));
  }
});

/** A server reading commands with the reply parser (a command is a RESP array), answering through `handler`. */
async function fakeRedis(handler: Handler): Promise<{ url: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    const connection = ++connections;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    const parser = new RespParser();
    let chain = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      parser.push(chunk, (reply) => {
        const command = (reply as Buffer[]).map((b) => b.toString());
        chain = chain.then(() => handler(socket, command, connection));
      });
    });
  });
  servers.push({ server, sockets });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return { url: `redis://127.0.0.1:${port}`, sockets };
}

function client(url: string): RedisClient {
  const made = new RedisClient({ url, reconnectMinMs: 10, reconnectMaxMs: 50, connectTimeoutMs: 2000 });
  clients.push(made);
  return made;
}

async function writeByteByByte(socket: Socket, wire: string): Promise<void> {
  for (const byte of Buffer.from(wire, "binary")) {
    if (socket.destroyed) return;
    socket.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  if (outcome === undefined) throw new Error("resolved");
  return outcome;
}

describe("Redis client against a fake server", () => {
  it("settles pipelined commands in order from replies that arrive one byte at a time", async () => {
    const fake = await fakeRedis(async (socket, [name, arg]) => {
      if (name === "PING") return writeByteByByte(socket, "+PONG\r\n");
      if (name === "ECHO") return writeByteByByte(socket, `*2\r\n$${Buffer.byteLength(arg!)}\r\n${arg}\r\n:${arg!.length}\r\n`);
      socket.write("-ERR unknown\r\n");
    });
    const redis = client(fake.url);
    await redis.connect();
    const words = Array.from({ length: 20 }, (_, i) => `w${i}\r\n${"x".repeat(i)}`);
    const replies = await Promise.all(words.map((w) => redis.call("ECHO", w)));
    expect(replies.map((r) => [(r as [Buffer, number])[0].toString(), (r as [Buffer, number])[1]])).toEqual(words.map((w) => [w, w.length]));
  });

  it.each([
    ["a bad bulk length", "$-7\r\n"],
    ["an unknown type byte", "?\r\n"],
    ["a bulk announced past 512 MiB", "$536870913\r\n"],
    ["an array announced past a million elements", "*2000000\r\n"],
    ["a line that never ends", "+" + "a".repeat(70_000)],
    ["a non-digit integer", ":4x\r\n"],
  ])("closes the connection on %s, rejects what waits as sent, and reconnects", async (_, hostile) => {
    const fake = await fakeRedis((socket, [name], connection) => {
      if (name === "PING") socket.write("+PONG\r\n");
      else if (connection === 1) socket.write(hostile);
      else socket.write("+fine\r\n");
    });
    const redis = client(fake.url);
    await redis.connect();
    const lost = once(redis, "disconnected");
    const back = once(redis, "connected");
    const [first, second] = [rejection(redis.call("GET", "k")), rejection(redis.call("GET", "k2"))];
    const error = (await first) as RedisConnectionError;
    expect(error).toBeInstanceOf(RedisConnectionError);
    expect(error.sent).toBe(true);
    expect(error.message).toMatch(/protocol error/);
    expect(((await second) as RedisConnectionError).sent).toBe(true);
    await lost;
    await back;
    expect(redis.reconnects).toBe(1);
    expect(await redis.call("GET", "k")).toBe("fine");
  });

  it("retries with a doubling backoff, with jitter, capped, and stops at close()", async () => {
    const accepted: number[] = [];
    const fake = await fakeRedis((socket) => {
      socket.write("+PONG\r\n");
    });
    // After the first connection, every attempt is cut at once, before its handshake is answered.
    servers[0]!.server.prependListener("connection", (socket: Socket) => {
      accepted.push(Date.now());
      if (accepted.length > 1) socket.destroy();
    });
    const redis = new RedisClient({ url: fake.url, reconnectMinMs: 20, reconnectMaxMs: 160 });
    clients.push(redis);
    await redis.connect();
    for (const socket of fake.sockets) socket.destroy();
    const deadline = Date.now() + 5000;
    while (accepted.length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await redis.close();
    const attempts = accepted.length;
    expect(attempts).toBeGreaterThanOrEqual(8);
    // Attempt k (from 0) waits between half and all of min(160, 20 * 2^k) after the previous one ended.
    const gaps = accepted.slice(2).map((t, i) => t - accepted[i + 1]!);
    gaps.forEach((gap, k) => expect(gap).toBeGreaterThanOrEqual(Math.min(160, 20 * 2 ** (k + 1)) / 2 - 5));
    // Uncapped, the last three would wait at least 320, 640 and 1280 ms.
    expect(Math.min(...gaps.slice(4, 7))).toBeLessThan(320);
    expect(redis.reconnects).toBe(0);
    expect(redis.state).toBe("closed");
    await new Promise((r) => setTimeout(r, 200));
    expect(accepted.length).toBe(attempts);
  });

  it("closes the connection on a reply to no command", async () => {
    const fake = await fakeRedis((socket, [name]) => {
      socket.write(name === "PING" ? "+PONG\r\n+EXTRA\r\n" : "+fine\r\n");
    });
    const redis = client(fake.url);
    const connecting = redis.connect().then(
      () => "connected",
      (error: Error) => error.message,
    );
    // The extra reply arrives with the handshake's: that attempt fails as a protocol error.
    expect(await connecting).toMatch(/protocol error: a reply to no command/);
  });

  it("reports a server that refuses at once (max clients) in one line", async () => {
    const fake = await fakeRedis(() => {});
    const refuse = (socket: Socket): void => {
      socket.end("-ERR max number of clients reached\r\n");
    };
    // Answer the moment it connects, before any command, as Redis does.
    servers[0]!.server.prependListener("connection", refuse);
    const error = await rejection(client(fake.url).connect());
    expect(error.message).toMatch(/^redis:\/\/127\.0\.0\.1:\d+: ERR max number of clients reached$/);
  });

  it("rejects a command whose reply is cut off by the server closing, as sent", async () => {
    const fake = await fakeRedis((socket, [name]) => {
      if (name === "PING") socket.write("+PONG\r\n");
      else socket.end("$10\r\nabc");
    });
    const redis = client(fake.url);
    await redis.connect();
    const error = (await rejection(redis.call("GET", "k"))) as RedisConnectionError;
    expect(error.sent).toBe(true);
    expect(error.message).toMatch(/connection closed by the server/);
  });
});
