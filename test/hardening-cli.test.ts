import { spawn } from "node:child_process";
import { once } from "node:events";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCli } from "../src/cli-options.js";
import { DEFAULTS } from "../src/config.js";
import { get } from "./core-helpers.js";
import { CLI, cliPerTest, ensureBuilt } from "./helpers.js";

/** Issue 10, "Smaller": `PORT= HOST= npm start` — an empty environment variable means unset (spec §8). */

beforeAll(ensureBuilt, 120_000);

const startCli = cliPerTest();

describe("parseCli reads empty HOST and PORT as unset", () => {
  it("PORT='' and HOST='' leave port and host to the defaults", () => {
    const options = parseCli([], { PORT: "", HOST: "" });
    expect(options).not.toBe("help");
    if (options === "help") return;
    expect(options.port).toBeUndefined();
    expect(options.host).toBeUndefined();
  });

  it("set HOST and PORT still apply, and flags still win over them", () => {
    const fromEnv = parseCli([], { PORT: "9000", HOST: "::1" });
    expect(fromEnv !== "help" && [fromEnv.host, fromEnv.port]).toEqual(["::1", 9000]);
    const fromFlags = parseCli(["--port", "0", "--host", "127.0.0.1"], { PORT: "9000", HOST: "::1" });
    expect(fromFlags !== "help" && [fromFlags.host, fromFlags.port]).toEqual(["127.0.0.1", 0]);
  });

  it("a PORT that is set but not a whole number is still refused, and so is an empty --port flag", () => {
    expect(() => parseCli([], { PORT: "http" })).toThrow('--port takes a whole number, not "http"');
    expect(() => parseCli(["--port", ""], {})).toThrow('--port takes a whole number, not ""');
  });
});

describe("the CLI with PORT='' and HOST=''", () => {
  it("listens on the default host with --port 0", async () => {
    const cli = await startCli(CLI, ["--port", "0"], { env: { PATH: process.env.PATH, PORT: "", HOST: "" } });
    expect(cli.line).toMatch(new RegExp(`^pollchat listening on http://${DEFAULTS.host.replaceAll(".", "\\.")}:\\d+$`));
    expect((await get(`${cli.url}/healthz`)).text).toBe("ok\n");
    expect(await cli.stop("SIGTERM")).toBe(0);
  });

  it("without flags goes for the default port: it listens there, or says that address is in use", { timeout: 15_000 }, async () => {
    // Port 8080 may be taken on this machine, so both outcomes count; what may not happen is the old
    // `--port takes a whole number, not ""` (exit 2) or a listen on some other address.
    const child = spawn(process.execPath, [CLI], { env: { PATH: process.env.PATH, PORT: "", HOST: "" }, stdio: ["ignore", "pipe", "pipe"] });
    child.on("error", () => {});
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const exited = once(child, "exit");
    const address = `${DEFAULTS.host}:${DEFAULTS.port}`;
    try {
      const outcome = await new Promise<"listening" | "exited">((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`neither listened nor exited in 10 s; stdout: ${out} stderr: ${err}`)), 10_000);
        child.stdout.on("data", () => {
          if (/^pollchat listening on \S+$/m.test(out)) {
            clearTimeout(timer);
            resolve("listening");
          }
        });
        void exited.then(() => {
          clearTimeout(timer);
          resolve("exited");
        });
      });
      if (outcome === "listening") {
        expect(out).toMatch(new RegExp(`^pollchat listening on http://${address.replaceAll(".", "\\.")}$`, "m"));
      } else {
        expect(err).not.toContain("whole number");
        expect(err).toContain(address);
        expect(child.exitCode).toBe(1);
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
    }
  });
});
