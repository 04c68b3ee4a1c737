import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { cliPerTest, ensureBuilt } from "./helpers.js";
import { EXAMPLES, runSpec } from "./property-hostile-actions.js";
import { sleep } from "./property-hostile-net.js";
import { checkCutReader, checkObserver, checkRefusedUnseen, Ledger, Membership, TagScanner, type ObserverView } from "./property-hostile-oracle.js";
import { Graveyard, Run } from "./property-hostile-run.js";
import { ServerUnderTest } from "./property-hostile-server.js";

/**
 * Issue 10, "Done when": random sequences of requests from many anonymous
 * clients (joins, leaves, polls with and without cursor, pipelining, slow and
 * cut readers, SSE, TCP, floods) against the built CLI as a child process.
 * After each run: the process lives and answers /healthz, it holds no poll,
 * stream or connection the run closed, its RSS is within RSS_BOUND_MIB, and
 * the oracle (property-hostile-oracle.ts) finds no answered post lost or
 * doubled for an honest observer and no refused post seen by anyone.
 */

/**
 * Default limits but one: every client of the test comes from 127.0.0.1 and stands
 * for a different person, and a few runs of fresh names reach --max-sessions-per-ip
 * (100) within --session-ttl (30 s), which would refuse the honest observers' joins.
 * --log-level warn keeps the stderr of a crash short.
 */
// Every client comes from 127.0.0.1: the per-address caps are off (the flood fills ~18 queues of 2.6 MB, past one address's share of queued bytes).
const ARGS = ["--port", "0", "--tcp-port", "0", "--max-sessions-per-ip", "0", "--max-queued-bytes-per-ip", "0", "--log-level", "warn"];

/**
 * RSS bound, in MiB, checked after every run. Node 20 starts at ~55 MiB. The test
 * can legitimately pin little: one flood per run at most (320 messages of 8 KB,
 * each held once whatever the number of queues, with its JSON, line and SSE
 * forms: ~10-20 MiB until V8 collects it; its room empties at the end of the
 * flood), small posts otherwise, at most GRAVEYARD unread streams of 64 KiB of
 * pending output each, and sessions that expire after --session-ttl (30 s).
 * Measured over 80 runs on Node 20: 60-145 MiB, flat after the first floods.
 * Left to itself V8 collects lazily, more so on later majors (Node 24 reached
 * 237-260 MiB over 20 runs, with nothing leaked): the server runs with its old
 * generation capped (OLD_SPACE_MIB, property-hostile-server.ts), where the 20
 * runs stay at 80-170 MiB on Node 24. A leak that keeps each flood (10-20 MiB)
 * for the file's 20 runs crosses 256, or runs the server out of memory.
 */
const RSS_BOUND_MIB = 256;
/** Unread SSE streams kept open across runs (so heartbeats, every 15 s, meet streams whose session ended). */
const GRAVEYARD = 6;
/** Runs per property: each takes a few seconds, the file well under 60 s. */
const NUM_RUNS = Number(process.env.HOSTILE_RUNS ?? 20);
/** Stop (and report what shrinking found so far) after this long. */
const TIME_LIMIT_MS = Number(process.env.HOSTILE_TIME_LIMIT_MS ?? 40_000);
/** Kinds of action to leave out, comma-separated (to look past one known failure at the next); none by default. */
const SKIP = new Set((process.env.HOSTILE_SKIP ?? "").split(",").filter((k) => k !== ""));

beforeAll(ensureBuilt, 120_000);
const startCli = cliPerTest();
let runs = 0;

/** What the process must still be after a run, once the run has closed everything it opened. */
async function checkServer(srv: ServerUnderTest, graveyard: Graveyard, problems: string[]): Promise<void> {
  const health = await srv.healthz();
  if (health !== 200) problems.push(`/healthz answered ${health}`);
  // Everything the run opened is closed: no held poll, stream or connection may outlive it (but the graveyard's).
  let settled = false;
  let last = "";
  // (Ends as soon as it has settled; 10 s is room for a busy machine.)
  for (const deadline = Date.now() + 10_000; !settled && Date.now() < deadline; ) {
    const g = await srv.gauges();
    const polls = g?.get("pollchat_open_polls");
    const streams = g?.get("pollchat_sse_streams");
    const tcp = g?.get("pollchat_tcp_connections");
    last = `${polls} held polls, ${streams} SSE streams (${graveyard.size} left unread on purpose), ${tcp} TCP connections`;
    settled = polls === 0 && streams !== undefined && streams <= graveyard.size && tcp === 0;
    if (!settled) await sleep(50);
  }
  if (!settled) problems.push(`10 s after the run closed its connections the server still has ${last}`);
  const rss = srv.rssMiB();
  if (rss > RSS_BOUND_MIB) problems.push(`RSS ${rss.toFixed(0)} MiB, above the bound of ${RSS_BOUND_MIB} MiB`);
  if (!srv.alive) problems.push(srv.deathNote());
}

describe("property: hostile anonymous clients", () => {
  it("never kill the server, grow it past its bound, or make an answered post lost or doubled", { timeout: TIME_LIMIT_MS + 60_000 }, async () => {
    let srv: ServerUnderTest | undefined;
    let failed = false;
    const graveyard = new Graveyard(GRAVEYARD);
    try {
      await fc.assert(
        fc.asyncProperty(runSpec, async (spec) => {
          // A run after a failed one (shrinking, say) gets a fresh server: what the failure left behind must not fail it too.
          if (srv === undefined || !srv.alive || failed) {
            graveyard.clear();
            await srv?.cli.stop("SIGKILL");
            srv = await ServerUnderTest.start(startCli, ARGS);
          }
          failed = true;
          const run = new Run(srv, ++runs, graveyard, SKIP);
          try {
            await run.play(spec);
          } finally {
            await run.teardown();
          }
          if (process.env.HOSTILE_VERBOSE) console.log(run.summary(), `rss ${srv.alive ? srv.rssMiB().toFixed(0) : "-"} MiB`, JSON.stringify(spec.actions.map((a) => a.kind)));
          if (!srv.alive) run.problems.unshift(srv.deathNote());
          else {
            run.check();
            await checkServer(srv, graveyard, run.problems);
          }
          expect(run.problems).toEqual([]);
          failed = false;
        }),
        { numRuns: NUM_RUNS, examples: EXAMPLES.map((e) => [e]), plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)] },
      );
    } finally {
      graveyard.clear();
    }
  });
});

describe("the hostile property's oracle", () => {
  const view = (name: string, seen: ObserverView["seen"], rooms: [string, number, number][]): ObserverView => {
    const membership = new Membership();
    for (const [room, from, to] of rooms) {
      membership.joined(room, from);
      membership.left(room, to);
    }
    return { name, membership, seen };
  };

  it("requires an answered post of a room the observer was in throughout, exactly once", () => {
    const ledger = new Ledger(1);
    const a = ledger.newPost("r", undefined);
    ledger.attempt(a.tag, { kind: "ok", id: 10, sentAt: 5, answeredAt: 6 });
    const b = ledger.newPost("r", undefined);
    ledger.attempt(b.tag, { kind: "ok", id: 11, sentAt: 8, answeredAt: 12 }); // answered after the observer left: optional
    const problems: string[] = [];
    checkObserver(ledger, view("o", [], [["r", 1, 10]]), problems);
    expect(problems).toEqual([expect.stringContaining(`[${a.tag}]`)]);
    problems.length = 0;
    const seen = [{ id: 10, type: "message", room: "r", from: "h1x0", text: a.text }];
    checkObserver(ledger, view("o", [...seen, ...seen], [["r", 1, 10]]), problems);
    expect(problems.join()).toContain("seen 2 times");
  });

  it("flags a refused post that anyone saw, and a gap", () => {
    const ledger = new Ledger(2);
    const a = ledger.newPost("r", undefined);
    ledger.attempt(a.tag, { kind: "refused", status: 429, sentAt: 1 });
    const problems: string[] = [];
    const seen = new Set<string>();
    const scanner = new TagScanner(seen);
    scanner.push(`hello [${a.tag.slice(0, 2)}`);
    scanner.push(`${a.tag.slice(2)}] hi`);
    checkRefusedUnseen(ledger, seen, problems);
    checkObserver(ledger, view("o", [{ id: 3, type: "gap", room: "", from: "", text: "2 messages missed" }], []), problems);
    expect(problems).toEqual([expect.stringContaining("reached a client"), expect.stringContaining("gap")]);
  });

  it("lets a cut reader lose one answer's worth, in one run, and no more", () => {
    const required = [1, 2, 3, 4].map((n) => ({ tag: `t${n}`, bytes: 400 }));
    const problems: string[] = [];
    checkCutReader("v", required, new Set(["t1", "t4"]), 1000, problems);
    expect(problems).toEqual([]);
    checkCutReader("v", required, new Set(["t1"]), 500, problems);
    expect(problems).toEqual([expect.stringContaining("more than one answer")]);
    problems.length = 0;
    checkCutReader("v", required, new Set(["t2"]), 5000, problems);
    expect(problems).toEqual([expect.stringContaining("not one run")]);
  });
});
