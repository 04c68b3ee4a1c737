import type { RoomIx, TcpLine } from "./property-hostile-actions.js";
import { apiId, call, RawConnection, seedId, sleep } from "./property-hostile-net.js";
import type { Observer } from "./property-hostile-observers.js";
import type { Run } from "./property-hostile-run.js";
import { LineConnection, SseStream } from "./property-hostile-streams.js";

/**
 * The hostile property's actions that take more than a request or two, each
 * as an anonymous client does it; Run.act dispatches to them.
 */

/** Spec §8 defaults. */
/** Requests one connection may have waiting behind the one being answered (README limits table). */
const MAX_WAITING_PIPELINED = 16;
const MAX_ROOMS_PER_SESSION = 50;

/** GET /?name=N&message=M[&room=R][&txn=K], with the poster's token if it has one. */
export async function seedPost(run: Run, who: number, room: RoomIx | null, to: number | null, txn: boolean, evil: boolean): Promise<void> {
  const target = run.seedPostTarget(who, room, to, evil ? "\u001b[2K\u202Ealice : hi\u0008" : "hi");
  if (txn) target.query.set("txn", `k${target.tag}`);
  const sentAt = performance.now();
  const answer = await call(run.srv.port, "GET", `/?${target.query}`, { headers: run.auth(run.posters[who]!), sink: run.sink(true) });
  run.record(target.tag, sentAt, answer, performance.now(), seedId);
  run.mayHaveJoined(run.posters[who]!.name, target.room, answer);
}

/** POST /api/messages to a room (or privately), with the poster's token, or none. */
export async function apiPost(run: Run, who: number, room: RoomIx, to: number | null, txn: boolean): Promise<void> {
  const p = run.posters[who]!;
  const toName = to === null ? undefined : run.observer(to).name;
  const { tag, text } = run.ledger.newPost(run.room(room), toName);
  const body: Record<string, string> = { text, room: run.room(room) };
  if (toName !== undefined) body.to = toName;
  if (txn) body.txn = `k${tag}`;
  const sentAt = performance.now();
  const answer = await run.json(p, "/api/messages", body);
  run.record(tag, sentAt, answer, performance.now(), apiId);
}

/** A stream of /api/events: read then closed, read late, never read, or never read with its session ended (the last two stay open). */
export async function sse(run: Run, who: number, mode: "read" | "slow" | "abandon" | "leave"): Promise<void> {
  const p = run.posters[who]!;
  const stream = new SseStream(run.srv.port, "/api/events", run.auth(p), () => {}, { sink: run.sink(), paused: mode !== "read" });
  await Promise.race([stream.responded, sleep(1000)]);
  if (mode === "read" || mode === "slow") {
    await sleep(150);
    stream.resume();
    await sleep(100);
    stream.destroy();
    return;
  }
  if (mode === "leave" && p.token !== undefined) {
    const answer = await run.json(p, "/api/leave", {});
    if (answer?.status === 200) p.token = undefined;
    stream.trickle(200);
  }
  if (stream.status === 200) run.graveyard.add(stream);
  else stream.destroy();
}

/** A TCP gateway connection: a name, lines in one write, then `exit`, a reset, or silence until the run ends. */
export async function tcp(run: Run, who: number, lines: TcpLine[], end: "exit" | "destroy" | "idle"): Promise<void> {
  const name = run.posters[who]!.name;
  const conn = new LineConnection(run.srv.tcpPort, run.sink(true));
  if (!(await conn.waitFor((l) => l === "What is your name?"))) return conn.destroy();
  conn.socket.write(`${name}\n`);
  await conn.waitFor((l) => l === `* ${name} joined lobby` || l.startsWith("error "));
  let out = "";
  for (const line of lines) {
    if (line.kind === "msg" || line.kind === "private") {
      const to = line.kind === "private" ? run.observer(line.obs).name : undefined;
      const { tag, text } = run.ledger.newPost(undefined, to);
      // A line gets no answer: whether it was posted is unknown, but it may be seen at most once.
      run.ledger.attempt(tag, { kind: "unknown", sentAt: performance.now() });
      out += to === undefined ? `${text}\n` : `@${to} ${text}\n`;
    } else if (line.kind === "join") {
      out += `/join ${run.room(line.room)}\n`;
      run.mayHaveJoined(name, run.room(line.room), undefined);
    } else if (line.kind === "leave") out += "/leave\n";
    else if (line.kind === "who") out += "/who\n";
    else out += `${line.text}\n`;
  }
  conn.socket.write(out);
  if (end === "exit") {
    conn.socket.write("exit\n");
    await Promise.race([conn.closed, sleep(2000)]);
    conn.destroy();
  } else if (end === "destroy") {
    await sleep(20);
    conn.destroy();
  } else {
    conn.socket.pause(); // stays, unread, until the run ends
  }
}

/** Many seed requests in one write on one connection, and as many of the answers as the reader cares to read. */
export async function pipeline(run: Run, who: number, count: number, mix: "polls" | "posts" | "mixed" | "rooms", read: "all" | "half" | "none"): Promise<void> {
  const p = run.posters[who]!;
  const auth = p.token === undefined ? "" : `Authorization: Bearer ${p.token}\r\n`;
  const posts: { index: number; tag: string; room: string | undefined }[] = [];
  let requests = "";
  for (let i = 0; i < count; i++) {
    const post = mix === "posts" || (mix === "mixed" && i % 2 === 1);
    let target: string;
    if (post) {
      // The first half to the room no observer is in, the rest (rate-limited past the burst) to rooms they are in.
      const { tag, query, room } = run.seedPostTarget(who, i < count / 2 ? 2 : ((i % 2) as RoomIx), null);
      posts.push({ index: i, tag, room });
      target = `/?${query}`;
    } else if (mix === "rooms") target = `/?name=${p.name}&room=z${run.run}n${i}&timeout=0`;
    else target = `/?name=${p.name}&timeout=30000`;
    requests += `GET ${target} HTTP/1.1\r\nHost: t\r\n${auth}\r\n`;
  }
  // A client that has caught up (its queue empty) and then pipelines: every poll holds.
  if (mix === "polls") await call(run.srv.port, "GET", `/?name=${p.name}&timeout=0`, { headers: run.auth(p), sink: run.sink() });
  const conn = new RawConnection(run.srv.port, run.sink());
  const sentAt = performance.now();
  conn.socket.write(requests);
  const answers = conn.parser.answers;
  let serverClosed = false;
  void conn.closed.then(() => (serverClosed = true));
  // 300 pipelined polls: the server must end the connection; 5 s leaves room for a busy machine. Other
  // reads wait less: polls that hold are never all answered, and an unread answer only makes its post unknown.
  const mustClose = mix === "polls" && count > MAX_WAITING_PIPELINED + 1;
  if (read === "all") await conn.until(() => answers.length >= count, mustClose ? 5000 : 1500);
  else if (read === "half") await conn.until(() => answers.length >= Math.ceil(count / 2), 1000);
  else await sleep(20);
  const closedByServer = serverClosed;
  conn.destroy();
  // One request of a connection is handled at a time, at most 16 wait behind it; past that the
  // server answers 503 and ends the connection itself: 300 polls pipelined never sit held.
  if (mustClose && read === "all" && !closedByServer) {
    run.problems.push(`${p.name} pipelined ${count} polls: the server did not end the connection within 5 s (${answers.length} answered)`);
  }
  // Spec §8: at most 50 rooms per session (a join past it: 403), joins in bursts of 50.
  const joined = mix === "rooms" ? answers.filter((a) => a.status === 200).length : 0;
  if (joined > MAX_ROOMS_PER_SESSION) run.problems.push(`${p.name} joined ${joined} new rooms by pipelined polls, more than ${MAX_ROOMS_PER_SESSION}`);
  for (const { index, tag, room } of posts) {
    run.record(tag, sentAt, answers[index], conn.parser.times[index] ?? 0, seedId);
    run.mayHaveJoined(p.name, room, answers[index]);
  }
}

/** A post whose connection is reset right after the write (its fate unknown), retried with the same txn key. */
export async function txnRetry(run: Run, who: number, room: RoomIx): Promise<void> {
  const { tag, query, room: roomName } = run.seedPostTarget(who, room, null);
  query.set("txn", `k${tag}`);
  run.mayHaveJoined(run.posters[who]!.name, roomName, undefined);
  const auth = run.posters[who]!.token;
  const conn = new RawConnection(run.srv.port, run.sink());
  run.ledger.attempt(tag, { kind: "unknown", sentAt: performance.now() });
  conn.socket.write(`GET /?${query} HTTP/1.1\r\nHost: t\r\n${auth === undefined ? "" : `Authorization: Bearer ${auth}\r\n`}\r\n`);
  conn.destroy();
  const sentAt = performance.now();
  const answer = await call(run.srv.port, "GET", `/?${query}`, { headers: run.auth(run.posters[who]!), sink: run.sink() });
  run.record(tag, sentAt, answer, performance.now(), seedId);
}

/** Nobody gets in as an observer without its token: by seed poll, seed post or the TCP gateway. */
export async function impersonate(run: Run, o: Observer, what: "poll" | "post" | "tcp" | "cookie"): Promise<void> {
  if (what === "poll") {
    const answer = await call(run.srv.port, "GET", `/?name=${o.name}&timeout=0`, { sink: run.sink() });
    if (answer?.status === 200) run.problems.push(`a client without ${o.name}'s token polled as ${o.name}: ${answer.body.slice(0, 200)}`);
  } else if (what === "post" || what === "cookie") {
    // "cookie": what a link on another page does (spec §4: the cookie alone never makes a GET change anything).
    const { tag, text } = run.ledger.newPost(run.room(0), undefined);
    const sentAt = performance.now();
    const headers: Record<string, string> = what === "cookie" ? { cookie: `pollchat_token=${o.token}` } : {};
    const answer = await call(run.srv.port, "GET", `/?name=${o.name}&room=${run.room(0)}&message=${encodeURIComponent(text)}`, { headers, sink: run.sink() });
    if (answer?.status === 200) run.problems.push(`a GET ${what === "cookie" ? "with only the cookie" : "without the token"} posted as ${o.name}`);
    run.record(tag, sentAt, answer, performance.now(), seedId);
  } else {
    const conn = new LineConnection(run.srv.tcpPort, run.sink(true));
    if (await conn.waitFor((l) => l === "What is your name?")) {
      conn.socket.write(`${o.name}\n`);
      await conn.waitFor((l) => l.startsWith("error ") || l === `* ${o.name} joined lobby`);
      if (conn.lines.includes(`* ${o.name} joined lobby`)) run.problems.push(`the TCP gateway let a client in as ${o.name}`);
    }
    conn.destroy();
  }
}
