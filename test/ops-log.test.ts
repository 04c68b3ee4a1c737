import { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger, type Logger } from "../src/log.js";
import { joinApi, postJson, startServer, type TestServer } from "./helpers.js";

let server: TestServer | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  await server?.close();
  server = undefined;
});

/** A stream that keeps what is written to it. */
function sink(): Writable & { text: () => string } {
  let text = "";
  const s = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return Object.assign(s, { text: () => text });
}

describe("createLogger", () => {
  it("writes one text line per event, errors and warnings to err, at or above its level only", () => {
    const out = sink();
    const err = sink();
    const log = createLogger({ level: "info", out, err, now: () => 0 });
    log.info("join", { name: "alice", room: "lobby" });
    log.debug("session", { name: "alice" });
    log.warn("slow", { text: 'two\nlines "quoted"' });
    log.error("error", { code: 5 });
    expect(out.text()).toBe("1970-01-01T00:00:00.000Z info join name=alice room=lobby\n");
    // A value with a line break stays on its line: no one forges a log line.
    expect(err.text()).toBe(
      '1970-01-01T00:00:00.000Z warn slow text="two\\nlines \\"quoted\\""\n1970-01-01T00:00:00.000Z error error code=5\n',
    );
    expect(log.enabled("debug")).toBe(false);
    expect(log.enabled("info")).toBe(true);
  });

  it("writes JSON lines whose time, level and event no field can overwrite", () => {
    const out = sink();
    const log = createLogger({ level: "debug", format: "json", out, err: out, now: () => 0 });
    log.debug("leave", { name: "bob", room: "x", event: "forged", level: "error" } as never);
    const line = JSON.parse(out.text());
    expect(line).toEqual({ time: "1970-01-01T00:00:00.000Z", level: "debug", event: "leave", name: "bob", room: "x" });
    expect(out.text().endsWith("}\n")).toBe(true);
  });

  it("writes nothing at level silent, and flush resolves", async () => {
    const out = sink();
    const log = createLogger({ level: "silent", out, err: out });
    log.error("error");
    log.info("join");
    await log.flush();
    expect(out.text()).toBe("");
  });
});

describe("logging in the server", () => {
  it("is silent by default as a library", async () => {
    const out = vi.spyOn(process.stdout, "write");
    const err = vi.spyOn(process.stderr, "write");
    server = await startServer();
    const a = await joinApi(server.url, "quiet");
    await postJson(`${server.url}/api/leave`, {}, a.auth);
    await server.close();
    server = undefined;
    expect(out).not.toHaveBeenCalled();
    expect(err).not.toHaveBeenCalled();
  });

  it("logs start, join, leave and stop through a given logger", async () => {
    const events: [string, string, Record<string, unknown>][] = [];
    const record = (level: string) => (event: string, fields: Record<string, unknown> = {}) => void events.push([level, event, fields]);
    const logger: Logger = {
      error: record("error"),
      warn: record("warn"),
      info: record("info"),
      debug: record("debug"),
      enabled: () => true,
      flush: async () => {},
    };
    server = await startServer({ logger });
    const a = await joinApi(server.url, "erin", "den");
    await postJson(`${server.url}/api/leave`, { room: "den" }, a.auth);
    await postJson(`${server.url}/api/leave`, {}, a.auth);
    await server.close();
    server = undefined;
    const seen = events.map(([level, event, f]) => `${level} ${event} ${f.name ?? f.url ?? ""} ${f.room ?? f.reason ?? ""}`.trim());
    expect(seen[0]).toMatch(/^info start http:\/\/127\.0\.0\.1:\d+$/);
    expect(seen).toEqual(
      expect.arrayContaining(["debug session erin", "info join erin den", "info leave erin den", "debug session-end erin left", "info stop"]),
    );
    expect(seen.at(-1)).toBe("info stop");
  });
});
