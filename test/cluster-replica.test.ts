import { afterEach, describe, expect, it } from "vitest";
import type { Session } from "../src/session.js";
import type { Hub } from "../src/hub.js";
import { resolveOptions, type ChatOptions } from "../src/config.js";
import { ChatError } from "../src/errors.js";
import { MemoryLog } from "../src/cluster/memory-log.js";
import { Replica } from "../src/cluster/replica.js";
import { replicaHub } from "../src/cluster/replica-hub.js";
import type { Command } from "../src/cluster/commands.js";

/** Replicas of one shared log in one process (issue 12): the same entries give the same state on every hub. */

interface Node {
  hub: Hub;
  replica: Replica;
}

const nodes: Node[] = [];
afterEach(() => {
  for (const { hub, replica } of nodes.splice(0)) {
    replica.close();
    hub.close();
  }
});

async function cluster(n: number, options: ChatOptions = {}, log = new MemoryLog(), fateDeadlineMs?: number): Promise<Node[]> {
  const made: Node[] = [];
  for (let i = 0; i < n; i++) {
    const { hub, clock } = replicaHub(resolveOptions(options), { lastId: 0, at: 0 });
    const replica = new Replica(hub, log.client(), clock, { origin: `p${i}`, warn: () => {}, ...(fateDeadlineMs !== undefined && { fateDeadlineMs }) });
    await replica.start();
    made.push({ hub, replica });
    nodes.push({ hub, replica });
  }
  return made;
}

const session = (o: unknown): Session => o as Session;
const id = (o: unknown): number => o as number;

function errorOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error instanceof ChatError ? error.code : String(error)),
  );
}

/** The code of a refusal, and whether it says the request may have taken effect (X-Fate: unknown). */
function refusalOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "ok",
    (error: unknown) => (error instanceof ChatError ? `${error.code}${error.headers["X-Fate"] === "unknown" ? " (fate unknown)" : ""}` : String(error)),
  );
}

/** Everything each hub knows, as plain data, to compare replicas. */
function stateOf(hub: Hub): unknown {
  const sessions = [...hub.sessions()]
    .map((s) => ({ name: s.name, token: s.token, rooms: [...s.rooms], current: s.currentRoom, queue: s.queue.peek().map((e) => e.id) }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  return { lastId: hub.lastId, sessions, rooms: hub.rooms(), txns: [...hub.txnKeys(Date.now())] };
}

describe("replicas of one shared log", () => {
  it("a session made on one is known on every other, and a post on another reaches it in one order", async () => {
    const [a, b, c] = await cluster(3);
    const alice = session(await a!.replica.submit({ t: "join", n: "alice", r: "lobby", k: "tok-a" }, (o) => o));
    await b!.replica.submit({ t: "join", n: "bob", r: "lobby", k: "tok-b" }, (o) => o);
    const posted = id(await c!.replica.submit({ t: "post", k: "tok-a", x: "hi" }, (o) => o));
    await Promise.all([a!.replica.catchUp(), b!.replica.catchUp(), c!.replica.catchUp()]);
    const texts = (hub: Hub): string[] => hub.sessionByToken("tok-b")!.queue.peek().map((e) => `${e.id} ${e.message.type} ${e.message.text}`);
    expect(texts(a!.hub)).toEqual(texts(b!.hub));
    expect(texts(c!.hub)).toEqual(texts(b!.hub));
    expect(texts(b!.hub).at(-1)).toBe(`${posted} message hi`);
    expect(alice.token).toBe("tok-a");
    expect(stateOf(a!.hub)).toEqual(stateOf(b!.hub));
    expect(stateOf(c!.hub)).toEqual(stateOf(b!.hub));
  });

  it("two racing for one name: the first in the log wins everywhere, the second is refused 409", async () => {
    const [a, b] = await cluster(2);
    const first = a!.replica.submit({ t: "join", n: "Dora", r: "lobby", k: "k1" }, (o) => session(o).token);
    const second = errorOf(b!.replica.submit({ t: "join", n: "dora", r: "lobby", k: "k2" }, (o) => o));
    expect(await first).toBe("k1");
    expect(await second).toBe("name_taken");
    await b!.replica.catchUp();
    expect(b!.hub.session("dora")?.token).toBe("k1");
    expect(stateOf(a!.hub)).toEqual(stateOf(b!.hub));
  });

  it("a txn retried on another replica answers the first id and posts once; rate limits hold across replicas", async () => {
    // The log's clock stands still, so however slowly the posts come no token is refilled between them.
    const at = Date.now();
    const [a, b, c] = await cluster(3, { rate: 1 }, new MemoryLog(() => at));
    await a!.replica.submit({ t: "join", n: "erin", r: "lobby", k: "ke" }, (o) => o);
    const post = (node: Node, txn?: string): Promise<number> =>
      node.replica.submit({ t: "post", k: "ke", x: "once", ...(txn === undefined ? {} : { i: txn }) } as Command, id);
    const first = await post(b!, "t1");
    expect(await post(c!, "t1")).toBe(first);
    expect(await post(a!, "t1")).toBe(first);
    // --rate 1: bursts of 2; the first post took one.
    await post(c!);
    expect(await errorOf(post(a!))).toBe("rate_limited");
    await Promise.all([a!.replica.catchUp(), b!.replica.catchUp(), c!.replica.catchUp()]);
    for (const node of [a!, b!, c!]) {
      const texts = node.hub.session("erin")!.queue.peek().filter((e) => e.message.type === "message");
      expect(texts.length).toBe(2);
    }
    expect(stateOf(a!.hub)).toEqual(stateOf(c!.hub));
  });

  it("a replica started late catches up with every session and message before it serves", async () => {
    const log = new MemoryLog();
    const [a] = await cluster(1, {}, log);
    await a!.replica.submit({ t: "join", n: "finn", r: "dev", k: "kf" }, (o) => o);
    for (let i = 0; i < 5; i++) await a!.replica.submit({ t: "post", k: "kf", x: `m${i}` }, (o) => o);
    const [late] = await cluster(1, {}, log);
    expect(stateOf(late!.hub)).toEqual(stateOf(a!.hub));
    expect(late!.hub.roomWithHistory("dev")!.history(Number.MAX_SAFE_INTEGER, 100).length).toBe(6);
  });

  it("an acknowledgement on one replica trims the others' copies of the queue", async () => {
    const [a, b] = await cluster(2);
    await a!.replica.submit({ t: "join", n: "gus", r: "lobby", k: "kg" }, (o) => o);
    const last = id(await a!.replica.submit({ t: "post", k: "kg", x: "x" }, (o) => o));
    await b!.replica.catchUp();
    const gus = b!.hub.sessionByToken("kg")!;
    b!.hub.resume(gus, last);
    expect(gus.queue.length).toBe(0);
    const deadline = Date.now() + 2000;
    while (a!.hub.sessionByToken("kg")!.queue.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(a!.hub.sessionByToken("kg")!.queue.length).toBe(0);
  });

  it("while the log is unreachable a command is refused 503 at once, and served again once it is back", async () => {
    const log = new MemoryLog();
    const [a] = await cluster(1, {}, log);
    log.down();
    expect(await errorOf(a!.replica.submit({ t: "join", n: "hal", r: "lobby", k: "kh" }, (o) => o))).toBe("store_unavailable");
    log.up();
    expect(session(await a!.replica.submit({ t: "join", n: "hal", r: "lobby", k: "kh" }, (o) => o)).name).toBe("hal");
  });

  it("a command whose append broke the link is answered once its fate is known: its outcome if stored, 503 if not (once the store refuses it)", async () => {
    const log = new MemoryLog();
    const [a] = await cluster(1, {}, log, 1000);
    await a!.replica.submit({ t: "join", n: "ida", r: "lobby", k: "ki" }, (o) => o);
    log.breakNextAppend = "stored";
    const stored = await a!.replica.submit({ t: "post", k: "ki", x: "kept" }, id);
    expect(a!.hub.session("ida")!.queue.peek().at(-1)!.id).toBe(stored);
    log.breakNextAppend = "lost";
    // Not in the log once the store's clock passed the append's deadline (80% of the fate deadline): a final 503, before the fate deadline.
    expect(await refusalOf(a!.replica.submit({ t: "post", k: "ki", x: "gone" }, id))).toBe("store_unavailable");
    expect(a!.hub.session("ida")!.queue.peek().map((e) => e.message.text)).not.toContain("gone");
  });

  it("a join, a leave and a post refused 503 while their appends were on their way never take effect when those arrive late (spec §8)", async () => {
    const log = new MemoryLog();
    const [a, b] = await cluster(2, {}, log, 1000);
    await a!.replica.submit({ t: "join", n: "ivy", r: "lobby", k: "kv" }, (o) => o);
    await b!.replica.submit({ t: "join", n: "joe", r: "lobby", k: "kj" }, (o) => o);
    await b!.replica.catchUp();
    const answers: Promise<string>[] = [];
    for (const command of [
      { t: "join", n: "ghost", r: "lobby", k: "kg" },
      { t: "leave", k: "kv" },
      { t: "post", k: "kv", x: "never" },
    ] as const) {
      log.breakNextAppend = "held";
      answers.push(refusalOf(a!.replica.submit(command, (o) => o)));
      await new Promise((resolve) => setImmediate(resolve)); // one append each
    }
    // Not in the log when it was read after the store's clock passed their deadlines: final 503s.
    expect(await Promise.all(answers)).toEqual(["store_unavailable", "store_unavailable", "store_unavailable"]);
    // The dead connection's bytes arrive now: refused by the log itself.
    expect(log.releaseHeld()).toBe(0);
    await b!.replica.submit({ t: "post", k: "kj", x: "after" }, id);
    await a!.replica.catchUp();
    for (const { hub } of [a!, b!]) {
      expect(hub.session("ghost")).toBeUndefined();
      expect(hub.session("ivy")?.ended).toBe(false);
      // What joe was told since he joined: no join of ghost, no leave of ivy, no "never".
      expect(hub.session("joe")!.queue.peek().map((e) => `${e.message.type} ${e.message.from} ${e.message.text}`)).toEqual(["join joe ", "message joe after"]);
    }
  });
});
