import { connect, type Socket } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "./helpers.js";

/**
 * Property test over random TCP lines (issue 7): whatever bytes a client
 * sends, the gateway keeps serving it, answers only well-formed lines, and
 * the server stays up. 1,000 cases against one server.
 */
const RUNS = 1000;

let server: TestServer;

beforeAll(async () => {
  // Hundreds of clients from 127.0.0.1: the per-address caps would shape the run (README: load tests turn them off).
  server = await startServer({ tcpPort: 0, maxConnectionsPerIp: 0, ratePerIp: 0 });
});

afterAll(async () => {
  await server.close();
});

/** Reads a socket line by line; next(pred) resolves with the first line passing pred, within a bound. */
class Lines {
  readonly all: string[] = [];
  #buffer = "";
  #waiter: (() => void) | undefined;
  closed = false;

  constructor(socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      let nl: number;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        this.all.push(this.#buffer.slice(0, nl));
        this.#buffer = this.#buffer.slice(nl + 1);
      }
      this.#waiter?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#waiter?.();
    });
    socket.on("error", () => {});
  }

  async next(pred: (line: string) => boolean, timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.all.find(pred);
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`closed before the line came: ${JSON.stringify(this.all)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such line within ${timeoutMs} ms: ${JSON.stringify(this.all)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** What the gateway may write: its greeting, its errors, § 3's text lines. */
const WELL_FORMED = [
  /^Hello 127\.0\.0\.1:\d+$/,
  /^What is your name\?$/,
  /^error [a-z_]+: .*$/,
  /^\* .*$/,
  /^[A-Za-z0-9_.-]{1,32} (-> [A-Za-z0-9_.-]{1,32} )?: .*$/,
  /^Bye$/,
];

describe("property: random TCP lines", () => {
  it("never stop the gateway, and every line it writes is well-formed", { timeout: 120_000 }, async () => {
    let run = 0;
    const noNewline = (s: string) => s.replace(/\n/g, "");
    const line = fc.oneof(
      fc.string({ maxLength: 50 }).map(noNewline),
      fc.string({ unit: "grapheme", maxLength: 30 }).map(noNewline),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b.filter((x) => x !== 10))),
      fc.constantFrom("/who", "/rooms", "/join side", "/join bad room!", "/leave", "@nobody hi", "@ ", "\r", "", " exit", "x".repeat(2001), "y".repeat(9000)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 5 }), async (sent) => {
        const name = `t${run++}`;
        const socket = connect(server.tcpPort!, "127.0.0.1");
        const lines = new Lines(socket);
        try {
          await lines.next((l) => l === "What is your name?");
          socket.write(`${name}\n`);
          for (const l of sent) {
            if ((typeof l === "string" ? l : l.toString("latin1")).trim() === "exit") continue;
            socket.write(l);
            socket.write("\n");
          }
          // The connection still answers, in order, after whatever came before.
          socket.write(`/join h${name}\n/who\n`);
          await lines.next((l) => l === `* members of h${name}: ${name}`);
          for (const l of lines.all) expect(WELL_FORMED.some((p) => p.test(l)), JSON.stringify(l)).toBe(true);
          socket.write("exit\n");
          await lines.next((l) => l === "Bye");
        } finally {
          socket.destroy();
        }
      }),
      { numRuns: RUNS },
    );
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
