import { SseParser } from "../../src/client/sse-parser.js";
import { now, type Rng, type SessionRecord } from "./fault-history.js";
import { Member, type WireMessage } from "./fault-member.js";
import { json, pause, request, type World } from "./fault-world.js";

/** A held poll is answered within 1 s; 7 s is room for a busy machine (and a SIGSTOPped process is left then). */
const POLL_HOLD_MS = 1000;
const POLL_DEADLINE_MS = 7000;
/** A stream with no byte for this long is left (the chat posts several times a second while it is healthy). */
const STREAM_IDLE_MS = 8000;

/** Long-polls `/api/poll` with its cursor on a random process each time (or its home one: Member.route), until the run ends. */
export async function pollLoop(member: Member): Promise<void> {
  const { world } = member;
  let avoid: number | undefined;
  while (!world.readersDone) {
    if (!(await member.ensure())) break;
    const session = member.session!;
    const token = member.token;
    const proc = member.route(avoid);
    if (proc === undefined) {
      await pause(200);
      continue;
    }
    const path = `/api/poll?cursor=${member.cursor}&timeout=${POLL_HOLD_MS}${markParam(member.mark)}`;
    const answer = await request(world, proc, "poll", member.reader, path, { headers: auth(token), timeoutMs: POLL_DEADLINE_MS });
    const body = json<{ messages: WireMessage[]; cursor: number; mark?: string }>(answer.text);
    if (answer.status === 200 && body !== undefined && body.mark !== undefined) member.mark = body.mark;
    if (answer.status === 200 && body !== undefined && token === member.token) {
      member.receive(session, proc, body.messages);
      member.cursor = body.cursor;
      session.maxCursor = Math.max(session.maxCursor, body.cursor);
      avoid = undefined;
      continue;
    }
    if (answer.status === 401) member.ended(token, proc, "poll");
    avoid = proc;
    await pause(answer.status === "none" ? 100 : 200);
  }
}

/** Reads `/api/events` from a random process, reconnecting with `Last-Event-ID` whenever a stream ends. */
export async function sseLoop(member: Member): Promise<void> {
  const { world } = member;
  let avoid: number | undefined;
  let lastToken = "";
  let lastEventId = 0;
  while (!world.readersDone) {
    if (!(await member.ensure())) break;
    const session = member.session!;
    const token = member.token;
    if (token !== lastToken) lastEventId = member.cursor; // a new session starts at its join cursor
    lastToken = token;
    const proc = world.pick(member.rng, avoid);
    const base = proc === undefined ? undefined : world.procs.url(proc);
    if (proc === undefined || base === undefined) {
      await pause(200);
      continue;
    }
    const outcome = await readStream(member, session, proc, base, lastEventId, (id) => (lastEventId = id));
    if (outcome === 401) member.ended(token, proc, "sse");
    avoid = outcome === "ok" ? undefined : proc;
    await pause(outcome === "ok" ? 50 : 200);
  }
}

/** One stream, read until it ends, goes idle or the run ends: "ok" when it was a 200 stream, else the status. */
async function readStream(
  member: Member,
  session: SessionRecord,
  proc: number,
  base: string,
  since: number,
  advance: (id: number) => void,
): Promise<"ok" | number | "none"> {
  const { world } = member;
  const ac = new AbortController();
  let idle = setTimeout(() => ac.abort(), STREAM_IDLE_MS);
  const touch = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => ac.abort(), STREAM_IDLE_MS);
  };
  const stopWhenDone = setInterval(() => world.readersDone && ac.abort(), 250);
  try {
    const res = await fetch(`${base}/api/events`, {
      headers: { ...auth(member.token), "last-event-id": String(since) },
      signal: ac.signal,
    });
    if (res.status !== 200) {
      const text = await res.text();
      world.history.status({ what: "sse", reader: member.reader, proc, status: res.status, at: now(), body: text.slice(0, 300) });
      return res.status;
    }
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return "ok";
      touch();
      const messages: WireMessage[] = [];
      let closed = false;
      for (const event of parser.push(decoder.decode(value, { stream: true }))) {
        if (event.event === "close") {
          closed = true; // what came before it in this chunk is still recorded below
          break;
        }
        const m = json<WireMessage>(event.data);
        if (m === undefined) continue;
        messages.push(m);
        if (event.id !== undefined && /^\d+$/.test(event.id)) {
          advance(Number(event.id));
          session.maxCursor = Math.max(session.maxCursor, Number(event.id));
        }
      }
      member.receive(session, proc, messages);
      if (closed) return "ok";
    }
  } catch {
    return "none"; // reset, killed process, idle or the run's end
  } finally {
    clearTimeout(idle);
    clearInterval(stopWhenDone);
    ac.abort();
  }
}

/**
 * A seed client: `GET /?name=N&format=json` with no cursor, on a random process each time.
 * Without a cursor a hop may repeat messages, never lose one (spec §10). A new session
 * (after its old one ended) shows as its own join notice.
 */
export async function seedLoop(world: World, name: string, rng: Rng): Promise<void> {
  const session: SessionRecord = {
    reader: name,
    name,
    kind: "seed",
    index: 0,
    joinSentAt: now(),
    joinCursor: undefined,
    joinedAt: now(),
    received: [],
    maxCursor: 0,
  };
  world.history.sessions.push(session);
  let avoid: number | undefined;
  let mark: string | undefined;
  while (!world.readersDone) {
    const proc = world.pick(rng, avoid);
    if (proc === undefined) {
      await pause(200);
      continue;
    }
    const path = `/?name=${name}&timeout=${POLL_HOLD_MS}&format=json${markParam(mark)}`;
    const answer = await request(world, proc, "seed-poll", name, path, { timeoutMs: POLL_DEADLINE_MS });
    const body = json<{ messages: WireMessage[]; cursor: number; mark?: string }>(answer.text);
    if (answer.status === 200 && body !== undefined) {
      mark = body.mark ?? mark;
      const at = now();
      for (const m of body.messages) {
        if (m.type === "join" && m.from?.toLowerCase() === name.toLowerCase())
          session.received.push({ type: "own-join", id: m.id, at, proc });
        else if (m.type === "message") session.received.push({ type: "message", id: m.id, text: m.text, at, proc });
        else if (m.type === "gap") session.received.push({ type: "gap", id: m.id, missed: m.missed, at, proc });
      }
      session.maxCursor = Math.max(session.maxCursor, body.cursor);
      world.progress.emit("answer");
      avoid = undefined;
      continue;
    }
    avoid = proc;
    await pause(answer.status === "none" ? 100 : 200);
  }
}

/** The newest mark kept, sent back (a mark is letters, digits, '-', '_' and '.': nothing to escape, but escaped all the same). */
function markParam(mark: string | undefined): string {
  return mark === undefined ? "" : `&mark=${encodeURIComponent(mark)}`;
}

function auth(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
