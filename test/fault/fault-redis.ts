import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The fault test's redis-server: AOF with `appendfsync always`, DEBUG allowed
 * from 127.0.0.1, its own temp directory and free port, killed by PID. Unlike
 * test/redis-harness.ts it can start once without its AOF (from an older RDB
 * copy) and keeps every admin command bounded by a deadline of its own.
 */
const BINARY = process.env.REDIS_SERVER ?? "redis-server";
const READY_WITHIN_MS = 20_000;

export class FaultRedis {
  readonly dir = mkdtempSync(join(tmpdir(), "pollchat-fault-redis-"));
  #port = 0;
  #child: ChildProcess | undefined;
  #output = "";

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  get running(): boolean {
    const c = this.#child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  output(): string {
    return this.#output;
  }

  /** Starts on a free port (a few tries: a port can be taken between finding and binding it). */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.#port = await freePort();
      try {
        return await this.restart();
      } catch (error) {
        await this.kill();
        if (attempt >= 3 || !this.#output.includes("in use")) throw error;
      }
    }
  }

  /** Starts again on the same port and directory; `aof: false` starts from dump.rdb alone. Resolves once it answers PING. */
  async restart(aof = true): Promise<void> {
    if (this.running) throw new Error("redis-server is running");
    const persistence = aof ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
    const args = ["--port", String(this.#port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", this.dir];
    args.push("--daemonize", "no", "--loglevel", "warning", "--enable-debug-command", "local");
    const child = spawn(BINARY, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    child.on("error", () => {}); // a failed spawn shows as not running below
    const keep = (d: Buffer): void => {
      this.#output = (this.#output + d.toString("utf8")).slice(-8192);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const deadline = Date.now() + READY_WITHIN_MS;
    while (!(await this.answersPing())) {
      if (!this.running) throw new Error(`redis-server exited before answering: ${this.#output}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within ${READY_WITHIN_MS} ms: ${this.#output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async answersPing(): Promise<boolean> {
    try {
      return (await this.call(["PING"], 1000)) === "+PONG";
    } catch {
      return false;
    }
  }

  signal(signal: "SIGSTOP" | "SIGCONT"): void {
    if (this.running) this.#child!.kill(signal);
  }

  /** kill -9 by PID; resolves once it has exited. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }

  /**
   * SAVE, and a copy of dump.rdb kept aside; the copy saved the time before becomes the "older
   * RDB" a later fault restarts from, so it lacks at least one phase of answered posts.
   */
  async saveRdb(): Promise<void> {
    const reply = await this.call(["SAVE"], 20_000);
    if (reply !== "+OK") throw new Error(`SAVE: ${reply}`);
    const recent = join(this.dir, "recent.rdb");
    if (existsSync(recent)) renameSync(recent, join(this.dir, "old.rdb"));
    copyFileSync(join(this.dir, "dump.rdb"), recent);
  }

  /**
   * The RDB copies kept so far are dropped (after a fault that starts a new epoch): a Redis brought back
   * to an epoch the cluster has left since is not yet found out (README, The fault test), so no fault restores one.
   */
  forgetRdbs(): void {
    for (const name of ["old.rdb", "recent.rdb"]) rmSync(join(this.dir, name), { force: true });
  }

  /**
   * Killed (together with whatever `alsoKill` kills), its AOF removed, restarted on the old RDB
   * copy, then AOF turned on again (waits for the rewrite, so a later kill -9 finds an AOF).
   */
  async restartFromOldRdb(alsoKill: () => Promise<void> = async () => {}): Promise<void> {
    await Promise.all([this.kill(), alsoKill()]);
    rmSync(join(this.dir, "appendonlydir"), { recursive: true, force: true });
    const old = join(this.dir, existsSync(join(this.dir, "old.rdb")) ? "old.rdb" : "recent.rdb");
    if (!existsSync(old)) throw new Error("no RDB saved since the last FLUSHALL");
    copyFileSync(old, join(this.dir, "dump.rdb"));
    await this.restart(false);
    await this.call(["CONFIG", "SET", "appendonly", "yes"], 5000);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const info = String(await this.call(["INFO", "persistence"], 5000));
      if (/aof_enabled:1/.test(info) && /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) return;
      if (Date.now() > deadline) throw new Error(`AOF not on again within 20 s: ${info}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** One command on a connection of its own; the reply as text (`+OK`, `-ERR …`, `:1`, a bulk's content). */
  call(args: readonly string[], timeoutMs: number): Promise<string> {
    return resp(this.#port, args, timeoutMs);
  }

  /** SIGKILL at once, synchronously: for an exit handler, when nothing can be awaited. */
  killNow(): void {
    if (this.running) this.#child!.kill("SIGKILL");
  }

  async dispose(): Promise<void> {
    this.signal("SIGCONT");
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function resp(port: number, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let buffer = Buffer.alloc(0);
    const done = (error: Error | undefined, value?: string): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value!);
    };
    const timer = setTimeout(() => done(new Error(`redis ${args[0]}: no reply in ${timeoutMs} ms`)), timeoutMs);
    socket.on("error", (e) => done(e));
    socket.on("close", () => done(new Error(`redis ${args[0]}: connection closed`)));
    socket.on("connect", () => {
      const parts = args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`);
      socket.write(`*${args.length}\r\n${parts.join("")}`);
    });
    socket.on("data", (d: Buffer) => {
      buffer = Buffer.concat([buffer, d]);
      const end = buffer.indexOf("\r\n");
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString("latin1");
      if (head[0] !== "$") return done(undefined, head);
      const length = Number(head.slice(1));
      if (length < 0) return done(undefined, "");
      if (buffer.length >= end + 2 + length + 2) done(undefined, buffer.subarray(end + 2, end + 2 + length).toString("utf8"));
    });
  });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.on("error", () => {});
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  await new Promise((r) => server.close(r));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}
