import { afterEach, describe, expect, it } from "vitest";
import type { Hub } from "../src/hub.js";
import { resolveOptions } from "../src/config.js";
import { decodeRecord } from "../src/cluster/commands.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { Replica } from "../src/cluster/replica.js";
import { replicaHub } from "../src/cluster/replica-hub.js";
import { slowLog } from "./cluster-log-wrappers.js";

/** Spec §8/§10: a 5xx post reached no one; only a post whose fate is unknown (caught by an outage) may get 503 after the deadline. */

const made: { hub: Hub; replica: Replica }[] = [];
afterEach(() => {
  for (const { hub, replica } of made.splice(0)) {
    replica.close();
    hub.close();
  }
});

describe("a stored entry applied late", () => {
  it("answers its outcome once applied, however long after the fate deadline, never 503, and posts once", async () => {
    const log = new MemoryLog();
    const { hub, clock } = replicaHub(resolveOptions({}), { lastId: 0, at: 0 });
    // Applied 400 ms after Redis has it, with a fate deadline of 100 ms.
    const replica = new Replica(hub, slowLog(log.client(), { readDelayMs: 400 }), clock, { origin: "p0", warn: () => {}, fateDeadlineMs: 100 });
    made.push({ hub, replica });
    await replica.start();
    const joined = await replica.submit({ t: "join", n: "ann", r: "lobby", k: "ka" }, () => "joined");
    expect(joined).toBe("joined");
    const started = Date.now();
    const id = await replica.submit({ t: "post", k: "ka", x: "once" }, (o) => o as number);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(typeof id).toBe("number");
    expect(log.entries.filter((e) => decodeRecord(e.data)?.c.t === "post").length).toBe(1);
    const once = hub.session("ann")!.queue.peek().filter((e) => e.message.text === "once");
    expect(once.map((e) => e.id)).toEqual([id]);
  });
});
