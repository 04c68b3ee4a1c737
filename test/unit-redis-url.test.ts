import { describe, expect, it } from "vitest";
import { parseRedisUrl } from "../src/redis/redis-url.js";

/** `--redis URL` (spec §10): redis://[[user]:password@]host[:port][/db], nothing else. */

describe("parseRedisUrl", () => {
  it("reads host, port and db, with defaults 6379 and 0", () => {
    expect(parseRedisUrl("redis://cache.internal")).toEqual({ host: "cache.internal", port: 6379, db: 0, display: "redis://cache.internal:6379" });
    expect(parseRedisUrl("redis://127.0.0.1:7000/")).toEqual({ host: "127.0.0.1", port: 7000, db: 0, display: "redis://127.0.0.1:7000" });
    expect(parseRedisUrl("redis://127.0.0.1:7000/5")).toMatchObject({ port: 7000, db: 5, display: "redis://127.0.0.1:7000/5" });
    expect(parseRedisUrl("redis://[::1]:6380")).toMatchObject({ host: "::1", port: 6380, display: "redis://[::1]:6380" });
  });

  it("reads a password alone, or a user with a password, percent-decoded, and never shows the password", () => {
    const alone = parseRedisUrl("redis://:p%40ss%3Aword@h:1/2");
    expect(alone).toEqual({ host: "h", port: 1, db: 2, password: "p@ss:word", display: "redis://h:1/2" });
    const user = parseRedisUrl("redis://al%20ice:secret@h");
    expect(user).toMatchObject({ username: "al ice", password: "secret" });
    expect(user.display).not.toContain("secret");
  });

  it.each([
    ["rediss://h:6379", /TLS is not supported/],
    ["http://h:6379", /unsupported scheme "http:"/],
    ["unix:///tmp/redis.sock", /unsupported scheme/],
    ["h:6379", /unsupported scheme/],
    ["not a url", /not a URL/],
    ["redis://", /no host/],
    ["redis://h:99999", /not a URL/],
    ["redis://h:0", /port 0/],
    ["redis://h/x", /database "x"/],
    ["redis://h/-1", /database/],
    ["redis://h/1/2", /database/],
    ["redis://h/99999999999", /database/],
    ["redis://h?db=1", /query or fragment/],
    ["redis://h#x", /query or fragment/],
    ["redis://secret@h", /username without a password/],
    ["redis://:%E0%A4%A@h", /percent-encoding/],
  ])("refuses %s with a one-line reason", (url, reason) => {
    expect(() => parseRedisUrl(url)).toThrow(reason);
    try {
      parseRedisUrl(url);
    } catch (error) {
      expect((error as Error).message).not.toContain("\n");
      expect((error as Error).message).not.toContain("secret");
    }
  });
});
