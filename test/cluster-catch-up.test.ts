import { afterEach, describe, expect, it } from "vitest";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { startServer, type TestServer } from "./helpers.js";
import { slowLog } from "./cluster-log-wrappers.js";

/** With --redis, requests that must catch up with the shared log share the reads of its tip. */

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("catching up, shared", () => {
  it("200 concurrent polls with unknown tokens share a few reads of the log's tip", async () => {
    const log = slowLog(new MemoryLog().client(), { tipDelayMs: 200 });
    const server = await startServer({ sharedLog: log });
    servers.push(server);
    const a = server.url;
    const before = log.tips;
    const statuses = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => (await fetch(`${a}/api/poll?timeout=0`, { headers: { authorization: `Bearer unknown${i}` } })).status),
    );
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(log.tips - before).toBeLessThanOrEqual(20);
  });
});
