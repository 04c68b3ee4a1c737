import { RedisClient } from "../src/redis/index.js";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach } from "vitest";

/**
 * A real redis-server for tests: started on a free 127.0.0.1 port, in a
 * directory of its own, stopped by PID. `.ci/run` installs Debian's
 * redis-server; REDIS_SERVER names another binary.
 */
export interface RedisServerOptions {
  /** `--appendonly yes --appendfsync always` (the crash tests'); default: no persistence at all. */
  appendOnly?: boolean;
  /** Where Redis keeps its files; default a fresh temp directory, removed by dispose(). */
  dir?: string;
  /** `--requirepass`. */
  password?: string;
  /** Default: a free port. */
  port?: number;
  /** More `--option value` arguments. */
  args?: string[];
}

export interface RedisServer {
  readonly port: number;
  /** `redis://[:password@]127.0.0.1:port`. */
  readonly url: string;
  readonly dir: string;
  /** The running process' PID (undefined while stopped). */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** SIGTERM (Redis shuts down cleanly) or SIGKILL (a crash); resolves once it has exited. */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** SIGSTOP: the process and its sockets stay, nothing is answered (a hung or partitioned server). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts it again on the same port and directory (after stop()); resolves once it answers PING. */
  restart(): Promise<void>;
  /** Kills it (SIGKILL) if running and removes the directory it was given by default. */
  dispose(): Promise<void>;
  /** What it printed (its log), for failure messages. */
  output(): string;
}

const BINARY = process.env.REDIS_SERVER ?? "redis-server";
const READY_WITHIN_MS = 10_000;

/** Starts a redis-server and resolves once it answers PING. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "pollchat-redis-"));
  // A free port can be taken between finding it and Redis binding it: a few tries.
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    const server = new ManagedRedis(port, dir, ownDir, options);
    try {
      await server.restart();
      return server;
    } catch (error) {
      await server.stop("SIGKILL");
      if (options.port !== undefined || attempt >= 3 || !server.output().includes("in use")) {
        if (ownDir) rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
}

/** A startRedis() for a test file's tests: each server is disposed of after its test. */
export function redisPerTest(): (options?: RedisServerOptions) => Promise<RedisServer> {
  const servers: RedisServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.dispose();
  });
  return async (options) => {
    const server = await startRedis(options);
    servers.push(server);
    return server;
  };
}

/** A startRedis() for a whole test file: disposed of after its last test. */
export function redisPerFile(): (options?: RedisServerOptions) => Promise<RedisServer> {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    for (const server of servers.splice(0)) await server.dispose();
  });
  return async (options) => {
    const server = await startRedis(options);
    servers.push(server);
    return server;
  };
}

class ManagedRedis implements RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly #ownDir: boolean;
  readonly #args: string[];
  #child: ChildProcess | undefined;
  #output = "";

  constructor(port: number, dir: string, ownDir: boolean, options: RedisServerOptions) {
    this.port = port;
    this.dir = dir;
    this.#ownDir = ownDir;
    this.url = `redis://${options.password === undefined ? "" : `:${encodeURIComponent(options.password)}@`}127.0.0.1:${port}`;
    const persistence = options.appendOnly ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
    const auth = options.password === undefined ? [] : ["--requirepass", options.password];
    this.#args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", dir, "--daemonize", "no", "--loglevel", "warning", ...auth, ...(options.args ?? [])];
  }

  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  output(): string {
    return this.#output;
  }

  async restart(): Promise<void> {
    if (this.running) throw new Error("redis-server is running; stop() it first");
    const child = spawn(BINARY, this.#args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    child.on("error", () => {}); // a failed spawn is reported below; a failed kill shows as still running
    const keep = (d: Buffer): void => {
      this.#output = (this.#output + d.toString("utf8")).slice(-8192);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const failed = await Promise.race([once(child, "spawn").then(() => undefined), once(child, "error").then(([error]) => error as Error)]);
    if (failed !== undefined) throw new Error(`cannot start ${BINARY}: ${failed.message}`);
    const deadline = Date.now() + READY_WITHIN_MS;
    while (!(await answersPing(this.port))) {
      if (!this.running) throw new Error(`redis-server exited before answering: ${this.#output}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within ${READY_WITHIN_MS} ms: ${this.#output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  pause(): void {
    if (!this.running) throw new Error("redis-server is not running");
    this.#child!.kill("SIGSTOP");
  }

  resume(): void {
    if (!this.running) throw new Error("redis-server is not running");
    this.#child!.kill("SIGCONT");
  }

  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop("SIGKILL");
    if (this.#ownDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  await new Promise((r) => server.close(r));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** True once a PING gets PONG, or NOAUTH (it answers; the password is the client's business); false on anything else. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d: Buffer) => {
      reply += d.toString("latin1");
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH"));
    });
  });
}

/** One command to Redis on a connection of its own. */
export async function redisCommand(redis: RedisServer, command: string[]): Promise<unknown> {
  const client = new RedisClient({ url: redis.url });
  try {
    await client.connect();
    return await client.send(command);
  } finally {
    await client.close();
  }
}

/** A value of a process's /metrics (NaN when it is not there). */
export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return line ? Number(line[1]) : NaN;
}

/** Waits (bounded) until `ok` holds; returns whether it did. */
export async function until(ok: () => Promise<boolean>, deadlineMs = 8000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (await ok()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
