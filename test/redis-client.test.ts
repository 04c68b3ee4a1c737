import { once } from "node:events";
import { createServer, Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RedisClient, type RedisClientOptions } from "../src/redis/redis-client.js";
import { RedisConnectionError, RedisReplyError } from "../src/redis/redis-errors.js";
import { RedisScript } from "../src/redis/redis-script.js";
import type { RespReply } from "../src/redis/resp-reply.js";
import { redisPerFile, redisPerTest, type RedisServer } from "./redis-harness.js";

/** pollchat's own RESP2 client (issue 12) against a real redis-server. */

const sharedRedis = redisPerFile();
const ownRedis = redisPerTest();

const clients: RedisClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
});

function client(options: RedisClientOptions): RedisClient {
  const made = new RedisClient(options);
  clients.push(made);
  return made;
}

async function connected(options: RedisClientOptions): Promise<RedisClient> {
  const made = client(options);
  await made.connect();
  return made;
}

let shared: RedisServer | undefined;
async function sharedServer(): Promise<RedisServer> {
  shared ??= await sharedRedis();
  return shared;
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) throw new Error(`resolved with ${String(outcome.value)}`);
  return outcome.error as Error;
}

function text(reply: RespReply): string {
  if (!Buffer.isBuffer(reply)) throw new Error(`not a bulk string: ${String(reply)}`);
  return reply.toString();
}

/** How many times Redis has run `command` (INFO commandstats). */
async function calls(redis: RedisClient, command: string): Promise<number> {
  const info = text(await redis.call("INFO", "commandstats"));
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info);
  return match ? Number(match[1]) : 0;
}

/** Resolves once `done()` holds, checked every 10 ms for at most 3 s. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("not within 3 s");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Active handles by type, as Node reports them. */
function handles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

describe("Redis client: commands", () => {
  it("pipelines 10,000 commands, replies in order, the server running them in order", async () => {
    const redis = await connected({ url: (await sharedServer()).url });
    await redis.call("DEL", "pipe:n", "pipe:list");
    const started = Date.now();
    const incrs = Array.from({ length: 10_000 }, () => redis.call("INCR", "pipe:n"));
    const pushes = Array.from({ length: 10_000 }, (_, i) => redis.call("RPUSH", "pipe:list", i));
    expect(await Promise.all(incrs)).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
    expect(await Promise.all(pushes)).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
    const list = (await redis.call("LRANGE", "pipe:list", 0, -1)) as Buffer[];
    expect(list.map((b) => Number(b.toString()))).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(redis.waiting).toBe(0);
  });

  it("writes the commands of one tick in one write, and each later tick's in its own", async () => {
    const redis = await connected({ url: (await sharedServer()).url });
    const writes = vi.spyOn(Socket.prototype, "write");
    try {
      const replies = await Promise.all(Array.from({ length: 1000 }, () => redis.call("PING")));
      expect(replies.every((r) => r === "PONG")).toBe(true);
      expect(writes).toHaveBeenCalledTimes(1);
      await redis.call("PING");
      await redis.call("PING");
      expect(writes).toHaveBeenCalledTimes(3);
    } finally {
      writes.mockRestore();
    }
  });

  it("keeps binary values byte for byte", async () => {
    const redis = await connected({ url: (await sharedServer()).url });
    const value = Buffer.from([0, 255, 13, 10, 36, 42, 0xc3, 0x28]);
    expect(await redis.call("SET", Buffer.from("bin:\r\n"), value)).toBe("OK");
    expect(Buffer.compare((await redis.call("GET", Buffer.from("bin:\r\n"))) as Buffer, value)).toBe(0);
  });

  it("rejects a refused command with the server's error, and goes on", async () => {
    const redis = await connected({ url: (await sharedServer()).url });
    const [bad, good] = await Promise.allSettled([redis.call("NOSUCHCOMMAND"), redis.call("PING")]);
    expect(bad.status === "rejected" && bad.reason instanceof RedisReplyError && bad.reason.code === "ERR").toBe(true);
    expect(good).toEqual({ status: "fulfilled", value: "PONG" });
  });

  it("SELECTs the database of the URL", async () => {
    const server = await sharedServer();
    const db3 = await connected({ url: `${server.url}/3` });
    const db0 = await connected({ url: server.url });
    await db3.call("SET", "select:k", "in three");
    expect(text(await db3.call("GET", "select:k"))).toBe("in three");
    expect(await db0.call("GET", "select:k")).toBeNull();
    expect(text(await db3.call("CLIENT", "INFO"))).toMatch(/ db=3 /);
  });

  it("refuses a database the server does not have, in one line", async () => {
    const error = await rejection(client({ url: `${(await sharedServer()).url}/99` }).connect());
    expect(error.message).toMatch(/^redis:\/\/127\.0\.0\.1:\d+\/99: ERR DB index is out of range$/);
  });

  it("runs a script by EVALSHA, falling back to EVAL after SCRIPT FLUSH", async () => {
    const redis = await connected({ url: (await sharedServer()).url });
    const script = new RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    await redis.call("DEL", "script:n");
    await redis.call("SCRIPT", "FLUSH");
    const evals = await calls(redis, "eval");
    expect(await redis.runScript(script, ["script:n"], [5])).toBe(5); // NOSCRIPT, then EVAL
    expect(await redis.runScript(script, ["script:n"], [5])).toBe(10); // EVALSHA
    expect(await calls(redis, "eval")).toBe(evals + 1);
    await redis.call("SCRIPT", "FLUSH");
    expect(await redis.runScript(script, ["script:n"], [1])).toBe(11);
    expect(await calls(redis, "eval")).toBe(evals + 2);
    const error = await rejection(redis.runScript(new RedisScript("return redis.call('NOPE')")));
    expect(error).toBeInstanceOf(RedisReplyError);
  });

  it("blocks on XREAD on a second connection while the first goes on", async () => {
    const writer = await connected({ url: (await sharedServer()).url });
    const reader = writer.duplicate();
    clients.push(reader);
    await reader.connect();
    await writer.call("DEL", "xread:s");
    const read = reader.call("XREAD", "COUNT", 10, "BLOCK", 5000, "STREAMS", "xread:s", "0-0");
    // The reader is blocked (its XREAD is in Redis' blocked list); the writer is not.
    for (let i = 0; i < 200 && !/^blocked_clients:1/m.test(text(await writer.call("INFO", "clients"))); i++) await new Promise((r) => setTimeout(r, 10));
    expect(text(await writer.call("INFO", "clients"))).toMatch(/^blocked_clients:1/m);
    const record = Buffer.from([1, 0, 13, 10, 2]);
    const id = text(await writer.call("XADD", "xread:s", "*", "r", record));
    const reply = (await read) as [[Buffer, [[Buffer, Buffer[]]]]];
    expect(reply[0][0].toString()).toBe("xread:s");
    expect(reply[0][1][0][0].toString()).toBe(id);
    expect(reply[0][1][0][1][0]!.toString()).toBe("r");
    expect(reply[0][1][0][1][1]!.equals(record)).toBe(true);
  });
});

describe("Redis client: AUTH", () => {
  it("logs in with the URL's password, and refuses a wrong or missing one in one line", async () => {
    const server = await ownRedis({ password: "s3cret pass" });
    const redis = await connected({ url: server.url });
    expect(await redis.call("PING")).toBe("PONG");
    const wrong = await rejection(client({ url: `redis://:nope@127.0.0.1:${server.port}` }).connect());
    expect(wrong).toBeInstanceOf(RedisConnectionError);
    expect(wrong.message).toMatch(/WRONGPASS/);
    expect(wrong.message).not.toContain("nope");
    const missing = await rejection(client({ url: `redis://127.0.0.1:${server.port}` }).connect());
    expect(missing.message).toMatch(/NOAUTH/);
    expect(missing.message).not.toContain("\n");
  });

  it("logs in as an ACL user with user:password", async () => {
    const server = await ownRedis();
    const admin = await connected({ url: server.url });
    expect(await admin.call("ACL", "SETUSER", "alice", "on", ">pw:1", "~*", "&*", "+@all")).toBe("OK");
    const alice = await connected({ url: `redis://alice:${encodeURIComponent("pw:1")}@127.0.0.1:${server.port}/2` });
    expect(text(await alice.call("ACL", "WHOAMI"))).toBe("alice");
    expect(text(await alice.call("CLIENT", "INFO"))).toMatch(/ db=2 /);
    const wrong = await rejection(client({ url: `redis://alice:bad@127.0.0.1:${server.port}` }).connect());
    expect(wrong.message).toMatch(/WRONGPASS/);
  });
});

describe("Redis client: faults", () => {
  it("reconnects after Redis is killed and restarted on the same port: events, state and counter", async () => {
    const server = await ownRedis();
    const redis = await connected({ url: server.url, reconnectMinMs: 20, reconnectMaxMs: 200 });
    const seen: string[] = [];
    redis.on("connected", () => seen.push("connected"));
    redis.on("disconnected", () => seen.push("disconnected"));
    expect(redis.state).toBe("connected");
    const lost = once(redis, "disconnected");
    await server.stop("SIGKILL");
    const [reason] = (await lost) as [Error];
    expect(reason).toBeInstanceOf(RedisConnectionError);
    expect(redis.state === "disconnected" || redis.state === "connecting").toBe(true);
    const refused = await rejection(redis.call("PING"));
    expect(refused).toBeInstanceOf(RedisConnectionError);
    expect((refused as RedisConnectionError).sent).toBe(false);
    // Attempts fail while it is down: they are not reconnects.
    await until(() => /ECONNREFUSED/.test(redis.lastError?.message ?? ""));
    expect(redis.reconnects).toBe(0);
    const back = once(redis, "connected");
    await server.restart();
    await back;
    expect(redis.state).toBe("connected");
    expect(redis.reconnects).toBe(1);
    expect(await redis.call("PING")).toBe("PONG");
    expect(seen).toEqual(["disconnected", "connected"]);
  }, 15_000);

  it("rejects commands on a lost connection, telling those sent (fate unknown) from those never sent", async () => {
    const server = await ownRedis();
    const redis = await connected({ url: server.url, reconnectMinMs: 10_000 });
    const blocked = rejection(redis.call("BLPOP", "lost:never", 0));
    const watcher = await connected({ url: server.url });
    for (let i = 0; i < 200 && !/^blocked_clients:1/m.test(text(await watcher.call("INFO", "clients"))); i++) await new Promise((r) => setTimeout(r, 10));
    const lost = once(redis, "disconnected");
    await server.stop("SIGKILL");
    const sent = await blocked;
    expect(sent).toBeInstanceOf(RedisConnectionError);
    expect((sent as RedisConnectionError).sent).toBe(true);
    expect(sent.message).toMatch(/fate is unknown/);
    await lost;

    // Queued in this tick, not yet written when the connection goes: never sent.
    await server.restart();
    const again = await connected({ url: server.url });
    const queued = rejection(again.call("SET", "lost:k", "v"));
    await again.close();
    const unsent = await queued;
    expect((unsent as RedisConnectionError).sent).toBe(false);
    const check = await connected({ url: server.url });
    expect(await check.call("EXISTS", "lost:k")).toBe(0);
  });

  it("loses no answered write when Redis with appendfsync always is killed -9 and restarted on its directory", async () => {
    const server = await ownRedis({ appendOnly: true });
    const redis = await connected({ url: server.url, reconnectMinMs: 10, reconnectMaxMs: 50 });
    const answered = await Promise.all(Array.from({ length: 2000 }, (_, i) => redis.call("XADD", "aof:log", "*", "n", i)));
    expect(answered).toHaveLength(2000);
    const back = once(redis, "connected");
    await server.stop("SIGKILL");
    await server.restart();
    await back;
    expect(await redis.call("XLEN", "aof:log")).toBe(2000);
    const last = (await redis.call("XREVRANGE", "aof:log", "+", "-", "COUNT", 1)) as [[Buffer, Buffer[]]];
    expect(last[0][0].toString()).toBe(text(answered[1999]!));
  });

  it("takes a server that stops answering for lost after the reply timeout, and reconnects when it answers again", async () => {
    const server = await ownRedis();
    const redis = await connected({ url: server.url, replyTimeoutMs: 300, connectTimeoutMs: 300, reconnectMinMs: 20, reconnectMaxMs: 100 });
    const lost = once(redis, "disconnected");
    server.pause();
    try {
      const started = Date.now();
      const error = (await rejection(redis.call("PING"))) as RedisConnectionError;
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(error.sent).toBe(true);
      expect(error.message).toMatch(/no reply within 300 ms/);
      const [reason] = (await lost) as [Error];
      // Attempts meanwhile connect (the kernel accepts) but time out in their handshake (connect or reply timeout, both 300 ms).
      await until(() => redis.lastError !== reason && /no (answer|reply) within 300 ms/.test(redis.lastError?.message ?? ""));
      expect(redis.reconnects).toBe(0);
    } finally {
      server.resume();
    }
    await once(redis, "connected");
    expect(redis.reconnects).toBe(1);
    expect(await redis.call("PING")).toBe("PONG");
  }, 15_000);

  it("does not take quiet for silence: idle, or blocked for less than the reply timeout", async () => {
    const redis = await connected({ url: (await sharedServer()).url, replyTimeoutMs: 1000 });
    const reader = redis.duplicate();
    clients.push(reader);
    await reader.connect();
    await new Promise((r) => setTimeout(r, 1200));
    expect(await redis.call("PING")).toBe("PONG");
    // Blocked 1.2 s in all, each XREAD well under the timeout (with room for a loaded machine).
    for (let i = 0; i < 6; i++) expect(await reader.call("XREAD", "BLOCK", 200, "STREAMS", "quiet:s", "$")).toBeNull();
    expect(reader.state).toBe("connected");
    expect(reader.reconnects + redis.reconnects).toBe(0);
  });

  it("fails to connect to a closed port at once, with a one-line reason", async () => {
    const server = await ownRedis();
    const port = server.port;
    await server.stop("SIGKILL");
    const started = Date.now();
    // At once: well before the connect timeout (5 s), with room for a busy machine.
    const error = await rejection(client({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 5000 }).connect());
    expect(Date.now() - started).toBeLessThan(4000);
    expect(error).toBeInstanceOf(RedisConnectionError);
    expect(error.message).toMatch(new RegExp(`^redis://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  });

  it("gives up on a server that accepts but never answers within the connect timeout", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    });
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    try {
      const { port } = silent.address() as { port: number };
      const started = Date.now();
      const error = await rejection(client({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 }).connect());
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(Date.now() - started).toBeLessThan(4000);
      expect(error.message).toMatch(/no answer within 300 ms/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it("close() leaves no socket and no timer, connected or waiting to reconnect", async () => {
    const server = await ownRedis();
    const before = handles();
    const redis = client({ url: server.url, reconnectMinMs: 60_000, reconnectMaxMs: 60_000 });
    const reader = redis.duplicate();
    clients.push(reader);
    await redis.connect();
    await reader.connect();
    const read = rejection(reader.call("XREAD", "BLOCK", 0, "STREAMS", "close:s", "$"));
    expect(await redis.call("PING")).toBe("PONG");
    await reader.close();
    expect(((await read) as RedisConnectionError).sent).toBe(true);
    const lost = once(redis, "disconnected");
    await server.stop("SIGKILL");
    await lost; // a reconnect timer of 30-60 s is pending now
    await redis.close();
    expect(redis.state).toBe("closed");
    const after = handles();
    expect(after.get("TCPSocketWrap") ?? 0).toBeLessThanOrEqual(before.get("TCPSocketWrap") ?? 0);
    expect(after.get("Timeout") ?? 0).toBeLessThanOrEqual(before.get("Timeout") ?? 0);
    expect(await rejection(redis.call("PING"))).toBeInstanceOf(RedisConnectionError);
  });
});
