import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

/**
 * The pollchat processes of the fault test: `node dist/cli.js --port 0 --redis …`,
 * each started by its slot (0, 1, 2), killed and restarted by PID. A slot's URL
 * changes on restart (a free port each time); while down it has none.
 */
const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
const LISTENING = /^pollchat listening on (http:\/\/\S+:\d+)$/m;
const START_WITHIN_MS = 30_000;

export class Processes {
  readonly #redisUrl: () => string;
  readonly #flags: string[];
  readonly #children: (ChildProcess | undefined)[];
  readonly #urls: (string | undefined)[];
  readonly #output: string[];

  constructor(count: number, redisUrl: () => string, flags: string[]) {
    this.#redisUrl = redisUrl;
    this.#flags = flags;
    this.#children = Array.from({ length: count }, () => undefined);
    this.#urls = Array.from({ length: count }, () => undefined);
    this.#output = Array.from({ length: count }, () => "");
  }

  get count(): number {
    return this.#children.length;
  }

  /** The slot's URL while it runs (a SIGSTOPped one keeps its URL: clients find out by timing out). */
  url(slot: number): string | undefined {
    return this.#urls[slot];
  }

  pid(slot: number): number | undefined {
    return this.#alive(slot) ? this.#children[slot]!.pid : undefined;
  }

  /** What the slot's processes printed (the last 8 KiB), for failure messages. */
  output(slot: number): string {
    return this.#output[slot]!;
  }

  /** Starts the slot's process and resolves with its URL once it prints its listening line. */
  async start(slot: number): Promise<string> {
    if (this.#alive(slot)) throw new Error(`process ${slot} is running`);
    const args = [CLI, "--port", "0", "--redis", this.#redisUrl(), ...this.#flags];
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] });
    this.#children[slot] = child;
    child.on("error", () => {});
    let out = "";
    const keep = (d: Buffer): void => {
      this.#output[slot] = (this.#output[slot] + d.toString("utf8")).slice(-8192);
    };
    child.stderr!.on("data", keep);
    child.stdout!.on("data", keep);
    const exited = once(child, "exit");
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`process ${slot}: no listening line in ${START_WITHIN_MS} ms: ${this.#output[slot]}`)),
        START_WITHIN_MS,
      );
      const check = (d: Buffer): void => {
        out += d.toString("utf8");
        const match = LISTENING.exec(out);
        if (!match) return;
        clearTimeout(timer);
        child.stdout!.off("data", check);
        resolve(match[1]!);
      };
      child.stdout!.on("data", check);
      void exited.then(([code, signal]) => {
        clearTimeout(timer);
        reject(new Error(`process ${slot} exited (${code ?? signal}) before listening: ${this.#output[slot]}`));
      });
    });
    this.#urls[slot] = url;
    return url;
  }

  /** kill -9 by PID (a stopped one too); resolves once it has exited. */
  async kill(slot: number): Promise<void> {
    this.#urls[slot] = undefined;
    const child = this.#children[slot];
    if (child === undefined || !this.#alive(slot)) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }

  signal(slot: number, signal: "SIGSTOP" | "SIGCONT"): void {
    if (!this.#alive(slot)) return;
    this.#children[slot]!.kill(signal);
  }

  /** A signal to every running process (SIGCONT at the end: a run that failed mid-fault leaves none stopped). */
  signalAll(signal: "SIGSTOP" | "SIGCONT"): void {
    for (let slot = 0; slot < this.count; slot++) this.signal(slot, signal);
  }

  /** A slot that exited by itself (not by kill()), with what it printed: a crash the checker reports. */
  crashed(): { slot: number; output: string }[] {
    const found: { slot: number; output: string }[] = [];
    for (let slot = 0; slot < this.count; slot++) {
      if (this.#urls[slot] !== undefined && !this.#alive(slot)) found.push({ slot, output: this.#output[slot]! });
    }
    return found;
  }

  /** SIGKILL to every process at once, synchronously: for an exit handler, when nothing can be awaited. */
  killNow(): void {
    for (let slot = 0; slot < this.count; slot++) if (this.#alive(slot)) this.#children[slot]!.kill("SIGKILL");
  }

  /** Every process killed by its PID. */
  async dispose(): Promise<void> {
    for (let slot = 0; slot < this.count; slot++) await this.kill(slot);
  }

  #alive(slot: number): boolean {
    const c = this.#children[slot];
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }
}
