import { now, type ReaderKind, type Received, type Rng, type SessionRecord } from "./fault-history.js";
import { json, pause, request, type World } from "./fault-world.js";

const JOIN_WITHIN_MS = 90_000;
const REQUEST_MS = 14_000;

/**
 * A client with a token (JSON poller or SSE reader): its session, joined through
 * `/api/join` on a random process, joined again after a `401` (a new session,
 * recorded apart). A name still held after a refused or lost join answers `409`:
 * recorded, and the client goes on under a fresh name.
 */
export class Member {
  session: SessionRecord | undefined;
  token = "";
  cursor = 0;
  /** The newest mark a poll answer carried: sent with the next poll, as the client library does (README, the JSON API). */
  mark: string | undefined;
  #suffix = 0;
  #joining: Promise<boolean> | undefined;

  /**
   * @param home a process this client polls and posts to whenever it answers, as behind a sticky
   *   balancer: the other processes know it is alive only through the shared presence (README, "Presence").
   */
  constructor(
    readonly world: World,
    readonly reader: string,
    readonly kind: ReaderKind,
    readonly rng: Rng,
    readonly home?: number,
  ) {}

  get name(): string {
    return this.#suffix === 0 ? this.reader : `${this.reader}-${this.#suffix}`;
  }

  /** Where its next poll or post goes: its home process unless that just failed or is down, else a random one. */
  route(avoid: number | undefined): number | undefined {
    const home = this.home;
    if (home !== undefined && home !== avoid && this.world.procs.url(home) !== undefined) return home;
    return this.world.pick(this.rng, avoid);
  }

  /** The current session, joining first when there is none (one join at a time, shared). */
  async ensure(): Promise<boolean> {
    if (this.session !== undefined) return true;
    this.#joining ??= this.#join().finally(() => (this.#joining = undefined));
    return this.#joining;
  }

  /** A 401 for `token`: its session ended (a later session is left alone). */
  ended(token: string, proc: number, what: string): void {
    if (this.session === undefined || token !== this.token) return;
    this.session.ended = { at: now(), proc, what };
    this.session = undefined;
  }

  /** Records what one answer carried, in order. */
  receive(session: SessionRecord, proc: number, messages: readonly WireMessage[]): void {
    const at = now();
    for (const m of messages) {
      const r = received(m, proc, at);
      if (r !== undefined) session.received.push(r);
    }
    this.world.progress.emit("answer");
  }

  async #join(): Promise<boolean> {
    const deadline = now() + JOIN_WITHIN_MS;
    let avoid: number | undefined;
    while (now() < deadline && !this.world.readersDone) {
      const proc = this.world.pick(this.rng, avoid);
      if (proc === undefined) {
        await pause(200);
        continue;
      }
      const name = this.name;
      const answer = await request(this.world, proc, "join", this.reader, "/api/join", {
        method: "POST",
        body: { name },
        timeoutMs: REQUEST_MS,
      });
      const { status } = answer;
      this.world.history.joins.push({
        reader: this.reader,
        name,
        proc,
        sentAt: answer.sentAt,
        answeredAt: answer.answeredAt,
        status,
        error: answer.error,
      });
      const body = json<{ token: string; cursor: number }>(answer.text);
      if (status === 200 && body !== undefined) {
        this.token = body.token;
        this.cursor = body.cursor;
        const index = this.world.history.sessions.filter((s) => s.reader === this.reader).length;
        this.session = {
          reader: this.reader,
          name,
          kind: this.kind,
          index,
          joinSentAt: answer.sentAt,
          joinCursor: body.cursor,
          joinedAt: answer.answeredAt,
          received: [],
          maxCursor: body.cursor,
        };
        this.world.history.sessions.push(this.session);
        return true;
      }
      if (status === 409) this.#suffix++;
      avoid = proc;
      await pause(status === "none" ? 100 : 250);
    }
    if (!this.world.readersDone) this.world.history.harness.push(`${this.reader}: no join answered 200 within ${JOIN_WITHIN_MS / 1000} s`);
    return false;
  }
}

export interface WireMessage {
  id?: number;
  type?: string;
  from?: string;
  text?: string;
  missed?: number | null;
}

function received(m: WireMessage, proc: number, at: number): Received | undefined {
  if (m.type === "message") return { type: "message", id: m.id, text: m.text, at, proc };
  if (m.type === "gap") return { type: "gap", id: m.id, missed: m.missed, at, proc };
  return undefined;
}
