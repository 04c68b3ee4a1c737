import { readFileSync } from "node:fs";
import { CLI, type RunningCli } from "./helpers.js";
import { call } from "./property-hostile-net.js";

/** The server's old generation, in MiB: its 20 runs pass with 64 too. */
export const OLD_SPACE_MIB = 96;

/**
 * The built CLI as a child process, as the property test drives it: its HTTP
 * and TCP ports, whether it lives, and what it costs (RSS, /metrics gauges).
 */
export class ServerUnderTest {
  readonly cli: RunningCli;
  readonly port: number;
  readonly tcpPort: number;

  private constructor(cli: RunningCli, port: number, tcpPort: number) {
    this.cli = cli;
    this.port = port;
    this.tcpPort = tcpPort;
  }

  /**
   * Starts `node dist/cli.js <args>` through the test file's startCli and waits (at most 5 s) for its TCP port line.
   * Its old generation is capped at OLD_SPACE_MIB: V8 then collects before it grows the heap past it, so the RSS
   * measured is what the server holds, not what V8 has not collected yet (which differs between Node majors),
   * and a leak kills it (out of memory) instead of waiting for a measurement.
   */
  static async start(startCli: (script: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }) => Promise<RunningCli>, args: string[]): Promise<ServerUnderTest> {
    const cli = await startCli(CLI, args, { env: { PATH: process.env.PATH, NODE_OPTIONS: `--max-old-space-size=${OLD_SPACE_MIB}` } });
    const port = Number(new URL(cli.url).port);
    const tcpLine = /^pollchat tcp gateway on \S+:(\d+)$/m;
    const deadline = Date.now() + 5000;
    while (!tcpLine.test(cli.stdout())) {
      if (Date.now() > deadline || !isRunning(cli)) throw new Error(`no TCP port line; stdout: ${cli.stdout()} stderr: ${cli.stderr()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        cli.child.stdout!.once("data", () => (clearTimeout(timer), resolve()));
      });
    }
    return new ServerUnderTest(cli, port, Number(tcpLine.exec(cli.stdout())![1]));
  }

  get alive(): boolean {
    return isRunning(this.cli);
  }

  /** How the process ended, with the end of its stderr: the reason a run failed when it died. */
  deathNote(): string {
    const { exitCode, signalCode } = this.cli.child;
    return `the server exited (code ${exitCode}, signal ${signalCode}); stderr ends: ${this.cli.stderr().slice(-1500)}`;
  }

  /** Resident set size of the child, from /proc/<pid>/status (VmRSS), in MiB. */
  rssMiB(): number {
    const status = readFileSync(`/proc/${this.cli.child.pid}/status`, "utf8");
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    if (!kib) throw new Error(`no VmRSS in /proc/${this.cli.child.pid}/status`);
    return Number(kib[1]) / 1024;
  }

  async healthz(): Promise<number | undefined> {
    return (await call(this.port, "GET", "/healthz", { deadlineMs: 10_000 }))?.status;
  }

  /** The gauges of /metrics (name without labels -> value); undefined when /metrics did not answer. */
  async gauges(): Promise<Map<string, number> | undefined> {
    const answer = await call(this.port, "GET", "/metrics", { deadlineMs: 3000 });
    if (answer?.status !== 200) return undefined;
    const values = new Map<string, number>();
    for (const line of answer.body.split("\n")) {
      const m = /^([a-z_]+) (\S+)$/.exec(line);
      if (m) values.set(m[1]!, Number(m[2]));
    }
    return values;
  }
}

function isRunning(cli: RunningCli): boolean {
  return cli.child.exitCode === null && cli.child.signalCode === null;
}
