import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach } from "vitest";
import { ChatError, createChatServer, type ChatOptions, type ChatServer } from "../src/index.js";

export interface TestServer {
  chat: ChatServer;
  url: string;
  port: number;
  /** The TCP gateway's port, when options.tcpPort was given. */
  tcpPort: number | undefined;
  close(): Promise<void>;
}

/** The real server on 127.0.0.1, port 0, with short timeouts unless a test says otherwise. */
export async function startServer(options: ChatOptions = {}): Promise<TestServer> {
  const chat = createChatServer({ pollTimeoutMs: 1000, ...options });
  const { url, port, tcpPort } = await chat.listen(0, "127.0.0.1");
  return { chat, url, port, tcpPort, close: () => chat.close() };
}

/** A start() for a test file: each server it starts is closed after its test. */
export function serverPerTest(): (options?: ChatOptions) => Promise<TestServer> {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  return async (options = {}) => (server = await startServer(options));
}

/**
 * Several servers and temp dirs per test, all closed and removed after it (newest server first):
 * for tests that restart a server on one --data-dir or run two on one shared log.
 */
export function serversPerTest(prefix: string): {
  start: (options: ChatOptions) => Promise<TestServer>;
  /** Closes one before the test ends (a restart on its directory), so it is not closed again after. */
  stop: (server: TestServer) => Promise<void>;
  tempDir: () => Promise<string>;
} {
  const open: TestServer[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const s of open.splice(0).reverse()) await s.close();
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  return {
    async start(options) {
      const s = await startServer(options);
      open.push(s);
      return s;
    },
    async stop(server) {
      open.splice(open.indexOf(server), 1);
      await server.close();
    },
    async tempDir() {
      const dir = await mkdtemp(join(tmpdir(), `pollchat-${prefix}-`));
      dirs.push(dir);
      return dir;
    },
  };
}

/** The code of the ChatError a call throws; undefined when it throws nothing. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof ChatError ? error.code : `not a ChatError: ${String(error)}`;
  }
  return undefined;
}

/** POST a JSON body; returns status, parsed body and headers. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/** Joins through the JSON API; returns the token and the cursor to poll from. */
export async function joinApi(url: string, name: string, room?: string): Promise<{ token: string; cursor: number; auth: Record<string, string> }> {
  const r = await postJson(`${url}/api/join`, room === undefined ? { name } : { name, room });
  if (r.status !== 200) throw new Error(`join ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  return { token: r.body.token, cursor: r.body.cursor, auth: { authorization: `Bearer ${r.body.token}` } };
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The built CLI, as `npm start` and the packed tarball run it. */
export const CLI = join(ROOT, "dist", "cli.js");

/**
 * Builds dist/ when it is missing or older than src/: `npm test` builds first,
 * a lone `vitest run` of a file that starts the CLI builds here.
 */
export async function ensureBuilt(): Promise<void> {
  const newestSource = Math.max(...readdirSync(join(ROOT, "src"), { recursive: true, encoding: "utf8" }).map((f) => statSync(join(ROOT, "src", f)).mtimeMs));
  const built = [CLI, CLIENT_BUNDLE];
  if (built.every((file) => existsSync(file) && statSync(file).mtimeMs >= newestSource)) return;
  await promisify(execFile)(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", ROOT]);
  await promisify(execFile)(process.execPath, [join(ROOT, "scripts", "bundle-client.js")]);
}

/** The client library as one module (scripts/bundle-client.js): `pollchat/client`, and /client.js. */
export const CLIENT_BUNDLE = join(ROOT, "dist", "client.js");

const LISTENING = /^pollchat listening on (http:\/\/(\S+):(\d+))$/m;

export interface RunningCli {
  child: ChildProcess;
  url: string;
  line: string;
  stdout(): string;
  stderr(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * A startCli() for a test file: `node <script> <args>` as a process, resolved
 * once it prints its listening line (at most 10 s), killed after its test.
 */
export function cliPerTest(): (script: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; cwd?: string }) => Promise<RunningCli> {
  const children = new Set<ChildProcess>();
  afterEach(() => killChildren(children));
  return (script, args, opts = {}) => startCli(children, script, args, opts);
}

/** Kills every child process still running (SIGKILL) and waits until each has exited, so none outlives its test. */
export async function killChildren(children: Set<ChildProcess>): Promise<void> {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }
  children.clear();
}

async function startCli(children: Set<ChildProcess>, script: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string }): Promise<RunningCli> {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? { PATH: process.env.PATH },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = once(child, "exit");
  const line = await new Promise<string>((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line in 10 s; stdout: ${out} stderr: ${err}`)), 10_000);
    const check = (): void => {
      const match = LISTENING.exec(out);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off("data", check);
        resolveLine(match[0]);
      }
    };
    child.stdout!.on("data", check);
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before listening; stdout: ${out} stderr: ${err}`));
    });
  });
  return {
    child,
    url: LISTENING.exec(line)![1]!,
    line,
    stdout: () => out,
    stderr: () => err,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

/**
 * Sends one post after another until one is refused with 429 (at most `max`): a token bucket refills
 * continuously, so on a slow machine a post a second after the burst is rightly granted, and a test cannot
 * insist that exactly the one past the burst is refused. Returns the answers (the last the 429, unless
 * none came) and how long since `started` (taken before the session, and so its bucket, was made).
 */
export async function postUntilRefused<T extends { status: number }>(
  send: (i: number) => Promise<T>,
  started: number,
  max = 12,
): Promise<{ answers: T[]; elapsedMs: number }> {
  const answers: T[] = [];
  for (let i = 0; i < max; i++) {
    const answer = await send(i);
    answers.push(answer);
    if (answer.status === 429) break;
  }
  return { answers, elapsedMs: Date.now() - started };
}
