import type { ClientRequest } from "node:http";
import { Membership, type ObserverView, type Seen } from "./property-hostile-oracle.js";
import { call, sleep } from "./property-hostile-net.js";
import { SseStream, type SseFrame } from "./property-hostile-streams.js";

/**
 * The honest observers of the hostile property: clients that do what the spec
 * asks of a client that must lose nothing. One polls /api/poll with the cursor
 * each answer gives it; one reads /api/events and, when its connection breaks,
 * comes back with Last-Event-ID. Both record every message they get, as is.
 */
export interface Observer extends ObserverView {
  readonly token: string;
  readonly seen: Seen[];
  /** What went wrong that only the observer can tell (an answer other than 200, its stream closed by the server). */
  readonly problems: string[];
  /** Its connection breaks now; it comes back by itself. */
  cut(): void;
  /** It stops reading for this long. */
  slow(ms: number): void;
  /** Stops for good, then ends its session (POST /api/leave). */
  stop(): Promise<void>;
}

interface Joined {
  name: string;
  token: string;
  cursor: number;
  membership: Membership;
}

/** Joins every room of the spec through /api/join (the second with the token); undefined, with a problem, if one fails. */
export async function joinObserver(port: number, name: string, rooms: string[], problems: string[]): Promise<Joined | undefined> {
  const membership = new Membership();
  let token: string | undefined;
  let cursor = 0;
  for (const room of rooms) {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const answer = await call(port, "POST", "/api/join", { headers, body: JSON.stringify({ name, room }) });
    if (answer?.status !== 200) {
      problems.push(`observer ${name} could not join ${room}: ${answer?.status} ${answer?.body}`);
      return undefined;
    }
    const body = JSON.parse(answer.body) as { token: string; cursor: number };
    if (token === undefined) cursor = body.cursor;
    token = body.token;
    membership.joined(room, performance.now());
  }
  return { name, token: token!, cursor, membership };
}

interface Wire {
  id: number;
  type: string;
  room?: string;
  from?: string;
  text?: string;
}

function toSeen(m: Wire): Seen {
  return { id: m.id, type: m.type, room: m.room ?? "", from: m.from ?? "", text: m.text ?? "" };
}

function parse<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

async function leaveSession(port: number, token: string): Promise<void> {
  await call(port, "POST", "/api/leave", { headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: "{}" });
}

/** GET /api/poll?cursor=C in a loop, the next cursor from each answer; a cut answer is asked again with the same cursor. */
export class PollObserver implements Observer {
  readonly name: string;
  readonly token: string;
  readonly membership: Membership;
  readonly seen: Seen[] = [];
  readonly problems: string[] = [];
  readonly #port: number;
  #cursor: number;
  #running = true;
  #current: ClientRequest | undefined;
  #pauseUntil = 0;
  readonly #loop: Promise<void>;

  constructor(port: number, joined: Joined) {
    this.#port = port;
    this.name = joined.name;
    this.token = joined.token;
    this.membership = joined.membership;
    this.#cursor = joined.cursor;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const wait = this.#pauseUntil - Date.now();
      if (wait > 0) await sleep(wait);
      const answer = await call(this.#port, "GET", `/api/poll?cursor=${this.#cursor}&timeout=500`, {
        headers: { authorization: `Bearer ${this.token}` },
        onRequest: (req) => (this.#current = req),
      });
      this.#current = undefined;
      if (!this.#running || answer === undefined) continue;
      if (answer.status !== 200) {
        this.problems.push(`${this.name}: its poll was answered ${answer.status} ${answer.body}`);
        await sleep(100);
        continue;
      }
      const body = parse<{ messages: Wire[]; cursor: number }>(answer.body);
      if (body === undefined) {
        this.problems.push(`${this.name}: its poll was answered 200 with a body that is not JSON: ${answer.body.slice(0, 200)}`);
        continue;
      }
      for (const m of body.messages) this.seen.push(toSeen(m));
      this.#cursor = body.cursor;
    }
  }

  cut(): void {
    this.#current?.destroy();
  }

  slow(ms: number): void {
    this.#pauseUntil = Date.now() + ms;
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#current?.destroy();
    await this.#loop;
    await leaveSession(this.#port, this.token);
  }
}

/** How many times one SSE observer reconnects in a run before it counts as a problem. */
const MAX_RECONNECTS = 40;

/** GET /api/events with Last-Event-ID (first the join's cursor); reconnects whenever its stream ends. */
export class SseObserver implements Observer {
  readonly name: string;
  readonly token: string;
  readonly membership: Membership;
  readonly seen: Seen[] = [];
  readonly problems: string[] = [];
  readonly #port: number;
  #lastId: number;
  #running = true;
  #stream: SseStream | undefined;
  #reconnects = 0;
  #resumeTimer: NodeJS.Timeout | undefined;

  constructor(port: number, joined: Joined) {
    this.#port = port;
    this.name = joined.name;
    this.token = joined.token;
    this.membership = joined.membership;
    this.#lastId = joined.cursor;
    this.#connect();
  }

  #connect(): void {
    const headers = { authorization: `Bearer ${this.token}`, "last-event-id": String(this.#lastId) };
    const stream = new SseStream(this.#port, "/api/events", headers, (frame) => this.#frame(frame));
    this.#stream = stream;
    void stream.responded.then((status) => {
      if (status !== undefined && status !== 200) this.problems.push(`${this.name}: its stream was answered ${status}`);
    });
    void stream.closed.then(async () => {
      if (!this.#running || this.#stream !== stream) return;
      if (++this.#reconnects > MAX_RECONNECTS) {
        this.problems.push(`${this.name}: its stream ended more than ${MAX_RECONNECTS} times`);
        return;
      }
      await sleep(20);
      if (this.#running) this.#connect();
    });
  }

  #frame(frame: SseFrame): void {
    if (frame.event === "close") {
      this.problems.push(`${this.name}: the server closed its stream: ${frame.data}`);
      return;
    }
    if (frame.id === undefined) return;
    this.#lastId = frame.id;
    const data = parse<Wire>(frame.data);
    if (data === undefined) this.problems.push(`${this.name}: an event whose data is not JSON: ${frame.data.slice(0, 200)}`);
    else this.seen.push(toSeen(data));
  }

  cut(): void {
    this.#stream?.destroy();
  }

  slow(ms: number): void {
    const stream = this.#stream;
    stream?.pause();
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = setTimeout(() => stream?.resume(), ms);
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#resumeTimer);
    this.#stream?.destroy();
    await this.#stream?.closed;
    await leaveSession(this.#port, this.token);
  }
}
