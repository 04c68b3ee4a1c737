import { apiId, call, RawConnection } from "./property-hostile-net.js";
import { SseStream } from "./property-hostile-streams.js";
import { checkCutReader, tagOf } from "./property-hostile-oracle.js";
import type { Run } from "./property-hostile-run.js";

/**
 * The flood action of the hostile property (issue 10, items 1 and 2): 16
 * senders fill a room with 320 messages of ~8 KB (2.5 MB, below --max-queue
 * for everyone in it); a careless reader in that room (no cursor) reads 300 KB
 * of its answer and closes, then polls the rest. Spec §5 and §8 let it lose
 * that one answer at most, and an answer holds at most 1 MiB of body.
 * With sseLeave, a stream in the room that never reads ends its own session
 * meanwhile, and is left open unread (the heartbeat-after-end crash).
 */
const FLOODERS = 16;
/** The default burst of the post rate limit (--rate 10, bursts of 20): every post is answered 201. */
const POSTS_EACH = 20;
/** 1,980 characters of 4 UTF-8 bytes: the longest message well within --max-message (2000 characters), 8 KB a line. */
const FILLER = "\u{1F600}".repeat(1980);
const CUT_AT_BYTES = 300_000;
/** Spec §8: one poll answer holds at most 1 MiB of body. */
const MAX_ANSWER_BYTES = 1024 * 1024;

export async function flood(run: Run, sseLeave: boolean): Promise<void> {
  const port = run.srv.port;
  const room = run.room("flood");
  const victim = `v${run.run}`;
  const json = { "content-type": "application/json" };

  const first = await call(port, "GET", `/?name=${victim}&room=${room}&timeout=0`, { sink: run.sink() });
  if (first?.status !== 200) return void run.problems.push(`flood: the careless reader could not join: ${first?.status} ${first?.body}`);
  const received = new Set<string>();
  linesOf(first.body, received);

  let stream: SseStream | undefined;
  let streamToken: string | undefined;
  if (sseLeave) {
    const joined = await call(port, "POST", "/api/join", { headers: json, body: JSON.stringify({ name: `s${run.run}`, room }) });
    if (joined?.status === 200) {
      streamToken = (JSON.parse(joined.body) as { token: string }).token;
      stream = new SseStream(port, "/api/events", { authorization: `Bearer ${streamToken}` }, () => {}, { sink: run.sink(), paused: true });
      await stream.responded;
    }
  }

  const flooders = await Promise.all(
    Array.from({ length: FLOODERS }, async (_, j) => {
      const name = `f${run.run}x${j}`;
      const answer = await call(port, "POST", "/api/join", { headers: json, body: JSON.stringify({ name, room }) });
      return answer?.status === 200 ? { name, token: (JSON.parse(answer.body) as { token: string }).token } : undefined;
    }),
  );
  const posts: { tag: string; line: string }[] = [];
  let requests = "";
  for (const f of flooders) {
    if (f === undefined) continue;
    for (let k = 0; k < POSTS_EACH; k++) {
      const { tag, text } = run.ledger.newPost(room, undefined, FILLER);
      posts.push({ tag, line: `${f.name} : ${text}\n` });
      const body = JSON.stringify({ text, room });
      requests += `POST /api/messages HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${f.token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    }
  }
  const conn = new RawConnection(port, run.sink());
  const sentAt = performance.now();
  conn.socket.write(requests);
  await conn.until(() => conn.parser.answers.length >= posts.length, 10_000);
  conn.destroy();
  const lineOf = new Map<number, string>();
  for (const [i, p] of posts.entries()) {
    const answer = conn.parser.answers[i];
    run.record(p.tag, sentAt, answer, conn.parser.times[i] ?? 0, apiId);
    const id = answer === undefined ? undefined : apiId(answer);
    if (id !== undefined) lineOf.set(id, p.line);
  }

  if (stream !== undefined) {
    await call(port, "POST", "/api/leave", { headers: { ...json, authorization: `Bearer ${streamToken}` }, body: "{}" });
    stream.trickle(200);
    run.graveyard.add(stream);
  }

  // The careless reader: one answer, read in part, then the connection closes.
  const cut = new RawConnection(port, run.sink());
  cut.socket.write(`GET /?name=${victim}&timeout=0 HTTP/1.1\r\nHost: t\r\n\r\n`);
  await cut.until(() => cut.received >= CUT_AT_BYTES || cut.parser.answers.length > 0, 3000);
  cut.destroy();
  const whole = cut.parser.answers[0];
  if (whole !== undefined) linesOf(whole.body, received);
  else {
    const head = cut.parser.pending.indexOf("\r\n\r\n");
    const body = head < 0 ? Buffer.alloc(0) : cut.parser.pending.subarray(head + 4);
    linesOf(body.subarray(0, body.lastIndexOf(10) + 1).toString("utf8"), received);
  }
  // Then it polls until its queue is empty (bounded: 20 polls).
  for (let i = 0; i < 20; i++) {
    const answer = await call(port, "GET", `/?name=${victim}&timeout=0`, { sink: run.sink(true) });
    if (answer?.status !== 200) {
      run.problems.push(`flood: the careless reader's poll was answered ${answer?.status} ${answer?.body.slice(0, 200)}`);
      break;
    }
    if (answer.body === "") break;
    linesOf(answer.body, received);
  }
  const required = [...lineOf.entries()].sort(([a], [b]) => a - b).map(([, line]) => ({ tag: tagOf(line)!, bytes: Buffer.byteLength(line) }));
  checkCutReader(`careless reader ${victim}`, required, received, MAX_ANSWER_BYTES, run.problems);

  // Everyone leaves, so the room and its history go now, not after --session-ttl: the RSS bound is about leaks.
  await Promise.all([
    call(port, "GET", `/?name=${victim}&message=%2Fleave`),
    ...flooders.map((f) => f && call(port, "POST", "/api/leave", { headers: { ...json, authorization: `Bearer ${f.token}` }, body: "{}" })),
  ]);
}

/** The tags of the complete text lines of a seed poll's body. */
function linesOf(body: string, into: Set<string>): void {
  for (const line of body.split("\n")) {
    const tag = tagOf(line);
    if (tag !== undefined) into.add(tag);
  }
}
