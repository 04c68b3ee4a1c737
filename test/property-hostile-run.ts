import * as acts from "./property-hostile-acts.js";
import type { Action, RoomIx, RunSpec } from "./property-hostile-actions.js";
import { POSTERS } from "./property-hostile-actions.js";
import { flood } from "./property-hostile-flood.js";
import { call, open, RawConnection, sleep, type Answer } from "./property-hostile-net.js";
import { joinObserver, PollObserver, SseObserver, type Observer } from "./property-hostile-observers.js";
import { checkJoinsAllowed, checkObserver, checkOneIdPerPost, checkRefusedUnseen, hasAll, Ledger, TagScanner, terminalUnsafe } from "./property-hostile-oracle.js";
import type { ServerUnderTest } from "./property-hostile-server.js";

/**
 * One run of the hostile property: observers join, the actions play against
 * the server, the run waits (at most DELIVERY_WAIT_MS) until every observer
 * has what it must, closes everything it opened, and says what went wrong.
 */

/** How long a run waits for answered posts to reach their observers (it ends as soon as they have; the rest is room for a busy machine). */
const DELIVERY_WAIT_MS = 15_000;
/** A hostile poll that holds is given up this soon: the server must let go of it. */
const GIVE_UP_MS = 150;

/** Streams left open, never read, across runs (cut when there are too many, and at the end): they outlive their run. */
export class Graveyard {
  readonly #items: { destroy(): void }[] = [];
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#items.length;
  }

  add(item: { destroy(): void }): void {
    open.delete(item);
    this.#items.push(item);
    while (this.#items.length > this.#max) this.#items.shift()!.destroy();
  }

  clear(): void {
    for (const item of this.#items.splice(0)) item.destroy();
  }
}

interface Poster {
  name: string;
  token: string | undefined;
}

export class Run {
  readonly srv: ServerUnderTest;
  readonly run: number;
  readonly ledger: Ledger;
  readonly graveyard: Graveyard;
  readonly problems: string[] = [];
  /** Every tag any client of this run received, anywhere: refused posts must not be among them. */
  readonly seenAnywhere = new Set<string>();
  /** "name|room" for every request of a poster naming a room that was not refused: the joins that may happen. */
  readonly mayJoin = new Set<string>();
  observers: Observer[] = [];
  readonly posters: Poster[];
  flooded = false;
  /** Kinds of action to leave out (HOSTILE_SKIP, to look past one known failure at the next). */
  readonly #skip: ReadonlySet<string>;

  constructor(srv: ServerUnderTest, run: number, graveyard: Graveyard, skip: ReadonlySet<string> = new Set()) {
    this.#skip = skip;
    this.srv = srv;
    this.run = run;
    this.ledger = new Ledger(run);
    this.graveyard = graveyard;
    this.posters = Array.from({ length: POSTERS }, (_, i) => ({ name: `h${run}x${i}`, token: undefined }));
  }

  room(ix: RoomIx | "flood"): string {
    return `r${this.run}${ix === "flood" ? "f" : "abc"[ix]}`;
  }

  /**
   * A sink for what a client receives: its tags go into seenAnywhere. A terminal
   * sink (text lines, as `nc` or curl show them) must also never get a character
   * that rewrites a terminal line (spec §3).
   */
  sink(terminal = false): (text: string) => void {
    const scanner = new TagScanner(this.seenAnywhere);
    let reported = false;
    return (text) => {
      scanner.push(text);
      const unsafe = terminal && !reported ? terminalUnsafe(text) : undefined;
      if (unsafe === undefined) return;
      reported = true;
      this.problems.push(`a text-line client received a raw control or bidi character: ${unsafe}`);
    };
  }

  /** Notes that `name` may now be in `room`, unless the request naming it was refused. */
  mayHaveJoined(name: string, room: string | undefined, answer: Answer | undefined): void {
    if (room !== undefined && (answer === undefined || answer.status < 400)) this.mayJoin.add(`${name.toLowerCase()}|${room.toLowerCase()}`);
  }

  observer(ix: number): Observer {
    return this.observers[ix % this.observers.length]!;
  }

  async play(spec: RunSpec): Promise<void> {
    for (const [i, o] of spec.observers.entries()) {
      const joined = await joinObserver(this.srv.port, `o${this.run}x${i}`, o.rooms.map((r) => this.room(r)), this.problems);
      if (!joined) return;
      this.observers.push(o.transport === "poll" ? new PollObserver(this.srv.port, joined) : new SseObserver(this.srv.port, joined));
    }
    for (const a of spec.actions) await this.act(a);
    const deadline = Date.now() + DELIVERY_WAIT_MS;
    while (Date.now() < deadline && this.srv.alive && !this.observers.every((o) => hasAll(this.ledger, o))) await sleep(25);
  }

  /** Stops the observers (ending their sessions) and cuts whatever the run left open but the graveyard. */
  async teardown(): Promise<void> {
    await Promise.all(this.observers.map((o) => o.stop()));
    for (const item of [...open]) item.destroy();
    open.clear();
  }

  /** One line on what the run did, for HOSTILE_VERBOSE. */
  summary(): string {
    const attempts = [...this.ledger.posts.values()].flatMap((p) => p.attempts);
    const count = (kind: string): number => attempts.filter((a) => a.kind === kind).length;
    const seen = this.observers.map((o) => `${o.name}:${o.seen.length}`).join(" ");
    return `run ${this.run}: posts ok ${count("ok")}, refused ${count("refused")}, unknown ${count("unknown")}; observers saw ${seen}; graveyard ${this.graveyard.size}`;
  }

  /** The oracle's verdict on what the clients saw. */
  check(): void {
    for (const o of this.observers) {
      this.problems.push(...o.problems);
      checkObserver(this.ledger, o, this.problems);
    }
    checkOneIdPerPost(this.observers, this.problems);
    checkJoinsAllowed(this.observers, (name) => name.toLowerCase().startsWith(`h${this.run}x`), this.mayJoin, this.problems);
    checkRefusedUnseen(this.ledger, this.seenAnywhere, this.problems);
  }

  async act(a: Action): Promise<void> {
    if (this.#skip.has(a.kind)) return;
    switch (a.kind) {
      case "parallel":
        await Promise.all(a.actions.map((b) => this.act(b)));
        return;
      case "seedPost":
        return acts.seedPost(this, a.who, a.room, a.to, a.txn, a.evil);
      case "seedPoll": {
        const p = this.posters[a.who]!;
        const q = new URLSearchParams({ name: p.name, timeout: a.hold ? "30000" : "0" });
        if (a.room !== null) q.set("room", this.room(a.room));
        if (a.cursor !== "none") q.set("cursor", a.cursor === "zero" ? "0" : "9999999999999999");
        const answer = await call(this.srv.port, "GET", `/?${q}`, { headers: this.auth(p), sink: this.sink(true), abortAfterMs: a.hold ? GIVE_UP_MS : undefined });
        this.mayHaveJoined(p.name, q.get("room") ?? undefined, answer);
        return;
      }
      case "apiJoin": {
        const p = this.posters[a.who]!;
        const answer = await this.json(p, "/api/join", { name: p.name, room: this.room(a.room) });
        this.mayHaveJoined(p.name, this.room(a.room), answer);
        if (answer?.status === 200) p.token = (JSON.parse(answer.body) as { token: string }).token;
        return;
      }
      case "apiPost":
        return acts.apiPost(this, a.who, a.room, a.to, a.txn);
      case "apiLeave": {
        const p = this.posters[a.who]!;
        const answer = await this.json(p, "/api/leave", a.room === null ? {} : { room: this.room(a.room) });
        if (answer?.status === 200 && a.room === null) p.token = undefined;
        return;
      }
      case "apiPoll": {
        const p = this.posters[a.who]!;
        const q = new URLSearchParams({ timeout: a.hold ? "30000" : "0" });
        if (a.cursor !== "none") q.set("cursor", a.cursor === "zero" ? "0" : "9999999999999999");
        await call(this.srv.port, "GET", `/api/poll?${q}`, { headers: this.auth(p), sink: this.sink(), abortAfterMs: a.hold ? GIVE_UP_MS : undefined });
        return;
      }
      case "sse":
        return acts.sse(this, a.who, a.mode);
      case "tcp":
        return acts.tcp(this, a.who, a.lines, a.end);
      case "pipeline":
        return acts.pipeline(this, a.who, a.count, a.mix, a.read);
      case "txnRetry":
        return acts.txnRetry(this, a.who, a.room);
      case "cutRead": {
        const conn = new RawConnection(this.srv.port, this.sink());
        conn.socket.write(`GET /?name=${this.posters[a.who]!.name}&timeout=0 HTTP/1.1\r\nHost: t\r\n\r\n`);
        await conn.until(() => conn.received >= a.bytes, 1000);
        conn.destroy();
        return;
      }
      case "impersonate":
        return acts.impersonate(this, this.observer(a.obs), a.what);
      case "observerMove": {
        const o = this.observer(a.obs);
        const room = this.room(a.room);
        const headers = { "content-type": "application/json", authorization: `Bearer ${o.token}` };
        if (a.op === "leave") {
          o.membership.left(room, performance.now());
          await call(this.srv.port, "POST", "/api/leave", { headers, body: JSON.stringify({ room }) });
        } else {
          const answer = await call(this.srv.port, "POST", "/api/join", { headers, body: JSON.stringify({ name: o.name, room }) });
          if (answer?.status === 200) o.membership.joined(room, performance.now());
        }
        return;
      }
      case "observerCut":
        this.observer(a.obs).cut();
        return;
      case "observerSlow":
        this.observer(a.obs).slow(300);
        return;
      case "flood":
        // Several MB each: one per run keeps a run within seconds and the memory bound meaningful.
        if (this.flooded) return;
        this.flooded = true;
        return flood(this, a.sseLeave);
    }
  }

  auth(p: Poster): Record<string, string> {
    return p.token === undefined ? {} : { authorization: `Bearer ${p.token}` };
  }

  json(p: Poster, path: string, body: unknown): Promise<Answer | undefined> {
    return call(this.srv.port, "POST", path, { headers: { "content-type": "application/json", ...this.auth(p) }, body: JSON.stringify(body), sink: this.sink() });
  }

  /** Records how a post was answered: `ok` with the id the answer names, else refused with its status, or unknown. */
  record(tag: string, sentAt: number, answer: Answer | undefined, answeredAt: number, idOf: (a: Answer) => number | undefined): void {
    if (answer === undefined) return this.ledger.attempt(tag, { kind: "unknown", sentAt });
    const id = answer.status < 300 ? idOf(answer) : undefined;
    if (answer.status < 300 && id === undefined) this.problems.push(`post [${tag}] answered ${answer.status} without an id: ${answer.body}`);
    this.ledger.attempt(tag, id === undefined ? { kind: "refused", status: answer.status, sentAt } : { kind: "ok", id, sentAt, answeredAt });
  }

  seedPostTarget(who: number, room: RoomIx | null, to: number | null, filler = "hi"): { tag: string; query: URLSearchParams; room: string | undefined } {
    const p = this.posters[who]!;
    const toName = to === null ? undefined : this.observer(to).name;
    const roomName = room === null ? undefined : this.room(room);
    const { tag, text } = this.ledger.newPost(roomName, toName, filler);
    const q = new URLSearchParams({ name: p.name, message: toName === undefined ? text : `@${toName} ${text}` });
    if (roomName !== undefined) q.set("room", roomName);
    return { tag, query: q, room: roomName };
  }







}
