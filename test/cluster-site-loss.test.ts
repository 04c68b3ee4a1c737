import { beforeAll, expect, it } from "vitest";
import { CLI, cliPerTest, ensureBuilt, joinApi, postJson, type RunningCli } from "./helpers.js";
import { metric, redisCommand, redisPerTest, until } from "./redis-harness.js";

/**
 * Redis and every process lost together, Redis back from older data (README, Several processes:
 * Faults): no process read the lost entries, so only what the cluster signed and a client kept
 * can prove the loss: a token made past the end of what Redis came back with. Presented, it
 * starts a new epoch as a lost tail does. What a client makes up (a cursor, a token) changes nothing.
 */

const startCli = cliPerTest();
const startRedis = redisPerTest();

beforeAll(ensureBuilt, 60_000);

interface Poll {
  messages: { id: number; type: string; text: string }[];
  cursor: number;
}

async function processes(n: number, url: string): Promise<RunningCli[]> {
  const args = ["--port", "0", "--redis", url, "--log-level", "warn", "--rate", "1000"];
  return Promise.all(Array.from({ length: n }, () => startCli(CLI, args)));
}

async function status(url: string, auth: Record<string, string>): Promise<number> {
  const res = await fetch(`${url}/api/poll?timeout=0`, { headers: auth });
  await res.body?.cancel();
  return res.status;
}

/** Every process has applied at least `n` entries of the log. */
async function applied(ps: RunningCli[], n: number): Promise<boolean> {
  return until(async () => {
    for (const p of ps) if ((await metric(p.url, "pollchat_redis_applied_total")) < n) return false;
    return true;
  }, 20_000);
}

it("Redis and every process killed, Redis back from an older RDB: a token made after it starts a new epoch; old tokens 401", async () => {
  const redis = await startRedis();
  const [a, b] = await processes(2, redis.url);
  let highest = 0;
  const post = async (url: string, auth: Record<string, string>, text: string): Promise<void> => {
    const r = await postJson(`${url}/api/messages`, { text }, auth);
    expect(r.status).toBe(201);
    highest = Math.max(highest, r.body.id as number);
  };
  const ann = await joinApi(a!.url, "ann");
  await post(a!.url, ann.auth, "saved 1");
  await post(b!.url, ann.auth, "saved 2");
  expect(await redisCommand(redis, ["SAVE"])).toBe("OK");
  // Joined after the save: the token dave is handed names a position (his join's, or past it) the RDB lacks.
  const dave = await joinApi(b!.url, "dave");
  await post(b!.url, dave.auth, "lost 1");
  await post(a!.url, ann.auth, "lost 2");
  await post(a!.url, dave.auth, "lost 3");
  expect(await applied([a!, b!], 7)).toBe(true);

  // The whole site goes down at once; Redis comes back from the older RDB, the processes start again.
  await Promise.all([a!.stop("SIGKILL"), b!.stop("SIGKILL"), redis.stop("SIGKILL")]);
  await redis.restart();
  const [c, d] = await processes(2, redis.url);
  expect(await metric(c!.url, "pollchat_redis_epoch_resets")).toBe(0);

  // dave presents his token (a poll with his cursor): it names no session here, but the cluster signed it
  // at a position the log no longer has. That request is 401, and a new epoch starts everywhere.
  const first = await fetch(`${c!.url}/api/poll?cursor=${highest}&timeout=0`, { headers: dave.auth });
  await first.body?.cancel();
  expect(first.status).toBe(401);
  for (const p of [c!, d!]) {
    expect(await until(async () => (await metric(p.url, "pollchat_redis_epoch_resets")) >= 1, 20_000)).toBe(true);
    expect(await until(async () => (await fetch(`${p.url}/healthz`)).status === 200, 20_000)).toBe(true);
  }
  expect(c!.stderr() + d!.stderr()).toMatch(/a token the cluster signed/);
  // Old tokens, of sessions made before the save too, answer 401 on every process.
  for (const p of [c!, d!]) for (const who of [ann, dave]) expect(await status(p.url, who.auth)).toBe(401);
  // dave joins again and presents his old cursor: a gap first, never silence.
  const dave2 = await joinApi(d!.url, "dave");
  const gapped = (await (await fetch(`${d!.url}/api/poll?cursor=${highest}&timeout=0`, { headers: dave2.auth })).json()) as Poll;
  expect(gapped.messages[0]?.type).toBe("gap");
  // Ids go on above every id answered before the loss.
  const r = await postJson(`${c!.url}/api/messages`, { text: "new" }, dave2.auth);
  expect(r.status).toBe(201);
  expect(r.body.id).toBeGreaterThan(highest);
  expect([await metric(c!.url, "pollchat_redis_epoch_resets"), await metric(d!.url, "pollchat_redis_epoch_resets")]).toEqual([1, 1]);
}, 60_000);

it("a made-up cursor or token changes nothing on an intact cluster: no new epoch, the same answers, sessions go on", async () => {
  const redis = await startRedis();
  const [a, b] = await processes(2, redis.url);
  const ann = await joinApi(a!.url, "ann");
  const bob = await joinApi(b!.url, "bob");
  expect((await postJson(`${a!.url}/api/messages`, { text: "hi" }, ann.auth)).status).toBe(201);
  expect((await postJson(`${b!.url}/api/leave`, {}, bob.auth)).status).toBe(200);
  const epoch = await redisCommand(redis, ["GET", "pollchat:epoch"]);
  // The token handed out: the session's, the position it was signed at, the signature.
  const [base, position, signature] = [ann.token.slice(0, 32), ann.token.slice(32, -22), ann.token.slice(-22)];
  expect(position).toMatch(/^\d+-\d+$/);
  // ann's own token with its position or signature changed is still hers (the part before names the session), and proves nothing.
  for (const token of [`${base}9999999999999-0${signature}`, `${base}${position}${"A".repeat(22)}`]) {
    expect(await status(b!.url, { authorization: `Bearer ${token}` })).toBe(200);
  }

  // A cursor far past every id, on both processes.
  for (const p of [a!, b!]) {
    const res = await fetch(`${p.url}/api/poll?cursor=9999999999999999&timeout=0`, { headers: ann.auth });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  }
  // Tokens with a position past the log: ann's with its position changed, one with a made-up signature,
  // one of another length; and a real one of a session that ended (signed, at a position the log has).
  const forged = [
    `${"x".repeat(32)}9999999999999-0${signature}`,
    `${"x".repeat(32)}9999999999999-0${"A".repeat(22)}`,
    `${"x".repeat(32)}${position}${signature}`,
    `${"x".repeat(32)}${position.replace(/-\d+$/, "-9")}${signature}`,
    bob.token,
  ];
  for (const p of [a!, b!]) {
    for (const token of forged) {
      expect(await status(p.url, { authorization: `Bearer ${token}` })).toBe(401);
      const r = await postJson(`${p.url}/api/messages`, { text: "x" }, { authorization: `Bearer ${token}` });
      expect(r.status).toBe(401);
    }
  }
  // Appends still go through on both (an append is refused if this process believed the log lost an entry),
  // and every process applied them: the epoch checks ran since.
  for (const p of [a!, b!]) expect((await postJson(`${p.url}/api/messages`, { text: "still" }, ann.auth)).status).toBe(201);
  const count = await metric(a!.url, "pollchat_redis_applied_total");
  expect(await applied([a!, b!], count)).toBe(true);
  expect(await redisCommand(redis, ["GET", "pollchat:epoch"])).toEqual(epoch);
  for (const p of [a!, b!]) {
    expect(await metric(p.url, "pollchat_redis_epoch_resets")).toBe(0);
    expect(await status(p.url, ann.auth)).toBe(200);
  }
  expect(a!.stderr() + b!.stderr()).not.toMatch(/lost its data/);
}, 60_000);

interface MarkedPoll extends Poll {
  mark?: string;
}

type Answer = { status: number; body: MarkedPoll | undefined };

async function pollWith(url: string, auth: Record<string, string>, query: string): Promise<Answer> {
  const res = await fetch(`${url}/api/poll?timeout=0&${query}`, { headers: auth });
  const body = res.status === 200 ? ((await res.json()) as MarkedPoll) : undefined;
  if (body === undefined) await res.body?.cancel();
  return { status: res.status, body };
}

it("the whole site lost: a session made before the older RDB presents the mark its last poll got, and a new epoch starts", async () => {
  const redis = await startRedis();
  const [a, b] = await processes(2, redis.url);
  const ann = await joinApi(a!.url, "ann");
  const bob = await joinApi(b!.url, "bob");
  expect((await postJson(`${a!.url}/api/messages`, { text: "saved" }, ann.auth)).status).toBe(201);
  expect(await redisCommand(redis, ["SAVE"])).toBe("OK");
  // Both sessions were made before the save: their tokens prove nothing once it is all Redis has.
  let highest = 0;
  for (const [i, p] of [a!, b!, a!].entries()) {
    const r = await postJson(`${p.url}/api/messages`, { text: `lost ${i}` }, bob.auth);
    expect(r.status).toBe(201);
    highest = r.body.id as number;
  }
  expect(await applied([a!, b!], 6)).toBe(true);
  // ann's poll reads the lost posts; its answer carries a mark of where process b stood (past the save).
  const read = await pollWith(b!.url, ann.auth, `cursor=${ann.cursor}`);
  expect(read.body?.messages.filter((m) => m.type === "message").length).toBe(4);
  const mark = read.body?.mark;
  expect(mark).toMatch(/^\d+-\d+\.[A-Za-z0-9_-]{22}$/);

  await Promise.all([a!.stop("SIGKILL"), b!.stop("SIGKILL"), redis.stop("SIGKILL")]);
  await redis.restart();
  const [c, d] = await processes(2, redis.url);
  // bob, known from the RDB, posts again: new entries, ids past ann's mark, and still no process saw a loss.
  expect((await postJson(`${d!.url}/api/messages`, { text: "after" }, bob.auth)).status).toBe(201);
  expect(await metric(c!.url, "pollchat_redis_epoch_resets")).toBe(0);
  expect(await status(c!.url, ann.auth)).toBe(200);

  // ann's next poll presents the mark: the log lacks its position, so a new epoch starts everywhere.
  const next = await pollWith(c!.url, ann.auth, `cursor=${highest}&mark=${mark}`);
  expect([200, 401, 503]).toContain(next.status);
  for (const p of [c!, d!]) {
    expect(await until(async () => (await metric(p.url, "pollchat_redis_epoch_resets")) >= 1, 20_000)).toBe(true);
    expect(await until(async () => (await fetch(`${p.url}/healthz`)).status === 200, 20_000)).toBe(true);
  }
  expect(c!.stderr() + d!.stderr()).toMatch(/a poll's mark\) names a position the log no longer has/);
  // As after a lost tail: old tokens 401; joined again, the old cursor gets a gap first.
  for (const p of [c!, d!]) for (const who of [ann, bob]) expect(await status(p.url, who.auth)).toBe(401);
  const ann2 = await joinApi(d!.url, "ann");
  const gapped = await pollWith(d!.url, ann2.auth, `cursor=${highest}`);
  expect(gapped.body?.messages[0]?.type).toBe("gap");
}, 60_000);

it("a made-up, altered or other cluster's mark, and a real one the log has, change nothing: no new epoch, polls answered", async () => {
  const redis = await startRedis();
  const other = await startRedis();
  const [a, b] = await processes(2, redis.url);
  const [x] = await processes(1, other.url);
  const ann = await joinApi(a!.url, "ann");
  expect((await postJson(`${a!.url}/api/messages`, { text: "one" }, ann.auth)).status).toBe(201);
  const early = (await pollWith(a!.url, ann.auth, `cursor=${ann.cursor}`)).body?.mark;
  for (let i = 0; i < 3; i++) expect((await postJson(`${b!.url}/api/messages`, { text: `m${i}` }, ann.auth)).status).toBe(201);
  expect(await applied([a!, b!], 5)).toBe(true);
  const late = (await pollWith(b!.url, ann.auth, "")).body?.mark;
  const eve = await joinApi(x!.url, "eve");
  expect((await postJson(`${x!.url}/api/messages`, { text: "elsewhere" }, eve.auth)).status).toBe(201);
  const foreign = (await pollWith(x!.url, eve.auth, "")).body?.mark;
  for (const m of [early, late, foreign]) expect(m).toMatch(/^\d+-\d+\.[A-Za-z0-9_-]{22}$/);
  const [position, signature] = late!.split(".") as [string, string];
  const ms = Number(position.split("-")[0]);
  const marks = [
    `${ms + 100_000}-0.${signature}`, // a later position, the signature kept
    `${position}.${"A".repeat(22)}`, // a made-up signature
    `${position.replace(/-\d+$/, "-99")}.${signature}`,
    `9999999999999-0.${signature}`,
    foreign!, // signed by another cluster (its key and epoch)
    "garbage",
    `${position}.${signature}x`,
    "x".repeat(300),
    early!, // real, older: the log has it
    late!, // real, the newest
  ];
  // A process started after the marks were made has read none of it itself: the log is asked, and has it.
  const [c] = await processes(1, redis.url);
  for (const p of [a!, b!, c!]) {
    for (const m of marks) expect((await pollWith(p.url, ann.auth, `mark=${encodeURIComponent(m)}`)).status).toBe(200);
  }
  for (const p of [a!, b!, c!]) expect((await postJson(`${p.url}/api/messages`, { text: "still" }, ann.auth)).status).toBe(201);
  const count = await metric(a!.url, "pollchat_redis_applied_total");
  expect(await applied([a!, b!, c!], count)).toBe(true);
  for (const p of [a!, b!, c!]) {
    expect(await metric(p.url, "pollchat_redis_epoch_resets")).toBe(0);
    expect(await status(p.url, ann.auth)).toBe(200);
  }
  expect(a!.stderr() + b!.stderr() + c!.stderr()).not.toMatch(/lost its data/);
}, 60_000);

it("the seed poll carries the mark as X-Mark with --redis; without --redis no answer has one and a presented one is ignored", async () => {
  const redis = await startRedis();
  const [a] = await processes(1, redis.url);
  const local = await startCli(CLI, ["--port", "0", "--log-level", "warn"]);
  const ann = await joinApi(a!.url, "ann");
  expect((await postJson(`${a!.url}/api/messages`, { text: "hi" }, ann.auth)).status).toBe(201);
  const seed = await fetch(`${a!.url}/?name=ann&timeout=0`, { headers: ann.auth });
  await seed.body?.cancel();
  expect(seed.headers.get("x-mark")).toMatch(/^\d+-\d+\.[A-Za-z0-9_-]{22}$/);
  const solo = await joinApi(local.url, "ann");
  for (const query of ["", `mark=${encodeURIComponent(seed.headers.get("x-mark")!)}`, "mark=garbage"]) {
    const res = await fetch(`${local.url}/api/poll?timeout=0&${query}`, { headers: solo.auth });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-mark")).toBeNull();
    expect(Object.keys((await res.json()) as object).sort()).toEqual(["cursor", "messages"]);
  }
}, 60_000);
