/**
 * The hostile property's delivery oracle, kept apart from the sockets: what
 * was posted and how it was answered, who was in which room when, and what
 * each client saw. Pure, so property-hostile.test.ts checks it alone too.
 */

/** One attempt at a post, as its client knows it: answered with an id, refused (4xx/5xx), or never answered. */
export type Attempt =
  | { kind: "ok"; id: number; sentAt: number; answeredAt: number }
  | { kind: "refused"; status: number; sentAt: number }
  | { kind: "unknown"; sentAt: number };

export interface PostRecord {
  tag: string;
  /** The room it was posted to (undefined: the sender's current room, which the test does not track). */
  room: string | undefined;
  /** A private message's recipient. */
  to: string | undefined;
  /** More than one only for a retry with the same txn key. */
  attempts: Attempt[];
}

/** A message as a client received it (JSON API or SSE). */
export interface Seen {
  id: number;
  type: string;
  room: string;
  from: string;
  text: string;
}

const TAG = /\[(\d+\.\d+)\]/;
const TAGS = /\[(\d+\.\d+)\]/g;

/** The tag a test message carries: `[run.n]`, unique to one post (or one txn retry chain). */
export function tagOf(text: string): string | undefined {
  return TAG.exec(text)?.[1];
}

/** Every post of one run, by tag. */
export class Ledger {
  readonly posts = new Map<string, PostRecord>();
  readonly #run: number;
  #next = 0;

  constructor(run: number) {
    this.#run = run;
  }

  /** A fresh post: its tag and text, `[tag] filler`. */
  newPost(room: string | undefined, to: string | undefined, filler = "hi"): { tag: string; text: string } {
    const tag = `${this.#run}.${this.#next++}`;
    this.posts.set(tag, { tag, room: room?.toLowerCase(), to: to?.toLowerCase(), attempts: [] });
    return { tag, text: `[${tag}] ${filler}` };
  }

  attempt(tag: string, attempt: Attempt): void {
    this.posts.get(tag)!.attempts.push(attempt);
  }

  /** Tags whose every attempt was refused: nobody may ever see them. */
  *refusedOnly(): Generator<string> {
    for (const p of this.posts.values()) if (p.attempts.length > 0 && p.attempts.every((a) => a.kind === "refused")) yield p.tag;
  }
}

/** When an observer was in which room: from its join's answer to the moment it sent its leave. */
export class Membership {
  readonly #intervals = new Map<string, { from: number; to: number }[]>();

  joined(room: string, at: number): void {
    const list = this.#intervals.get(room) ?? [];
    if (list.at(-1)?.to === Infinity) return; // already in it
    list.push({ from: at, to: Infinity });
    this.#intervals.set(room, list);
  }

  left(room: string, at: number): void {
    const last = this.#intervals.get(room)?.at(-1);
    if (last?.to === Infinity) last.to = at;
  }

  /** In the room without a break from before `from` until after `to`. */
  covers(room: string, from: number, to: number): boolean {
    return (this.#intervals.get(room) ?? []).some((i) => i.from <= from && to <= i.to);
  }
}

export interface ObserverView {
  name: string;
  membership: Membership;
  seen: readonly Seen[];
}

/** The posts an observer must get exactly once: answered, to a room it was in throughout, or privately to it. Tag -> id. */
export function requiredFor(ledger: Ledger, view: ObserverView): Map<string, number> {
  const required = new Map<string, number>();
  for (const post of ledger.posts.values()) {
    for (const a of post.attempts) {
      if (a.kind !== "ok") continue;
      const mine = post.to === undefined ? post.room !== undefined && view.membership.covers(post.room, a.sentAt, a.answeredAt) : post.to === view.name.toLowerCase();
      if (mine) required.set(post.tag, a.id);
    }
  }
  return required;
}

/** True once the observer has seen every post it must get (what the run waits for, with a deadline). */
export function hasAll(ledger: Ledger, view: ObserverView): boolean {
  const ids = new Set(view.seen.map((s) => s.id));
  for (const id of requiredFor(ledger, view).values()) if (!ids.has(id)) return false;
  return true;
}

/**
 * What an honest observer (a cursor, or Last-Event-ID) must have seen: ids in
 * increasing order and none twice, no gap (the test stays below --max-queue),
 * every required post exactly once with its answered id, and nothing refused.
 */
export function checkObserver(ledger: Ledger, view: ObserverView, problems: string[]): void {
  const who = view.name;
  let last = 0;
  for (const s of view.seen) {
    if (s.id <= last) problems.push(`${who}: id ${s.id} after ${last} (out of order or twice)`);
    last = Math.max(last, s.id);
    if (s.type === "gap") problems.push(`${who}: a gap entry (${s.text}) though no queue overflowed`);
    const tag = s.type === "message" || s.type === "private" ? tagOf(s.text) : undefined;
    const post = tag === undefined ? undefined : ledger.posts.get(tag);
    if (post === undefined) continue;
    if (post.attempts.every((a) => a.kind === "refused")) problems.push(`${who}: saw [${tag}], which was refused (${statuses(post)})`);
    const ok = post.attempts.filter((a) => a.kind === "ok").map((a) => a.id);
    if (ok.length > 0 && !ok.includes(s.id)) problems.push(`${who}: saw [${tag}] as id ${s.id}, answered as ${ok.join(", ")}`);
  }
  for (const [tag, id] of requiredFor(ledger, view)) {
    const times = view.seen.filter((s) => s.id === id).length;
    if (times !== 1) problems.push(`${who}: answered post [${tag}] (id ${id}, ${describe(ledger.posts.get(tag)!)}) seen ${times} times`);
  }
}

/** One post is one message: a tag never shows under two ids, whoever saw it (txn retries included). */
export function checkOneIdPerPost(views: readonly ObserverView[], problems: string[]): void {
  const ids = new Map<string, Set<number>>();
  for (const v of views)
    for (const s of v.seen) {
      const tag = tagOf(s.text);
      if (tag !== undefined && (s.type === "message" || s.type === "private")) ids.set(tag, (ids.get(tag) ?? new Set()).add(s.id));
    }
  for (const [tag, set] of ids) if (set.size > 1) problems.push(`[${tag}] was delivered as ${set.size} messages: ids ${[...set].join(", ")}`);
}

/** No client at all (observers, hostile readers, TCP) may see a post that was refused. */
export function checkRefusedUnseen(ledger: Ledger, seenAnywhere: ReadonlySet<string>, problems: string[]): void {
  for (const tag of ledger.refusedOnly()) {
    if (seenAnywhere.has(tag)) problems.push(`refused post [${tag}] (${statuses(ledger.posts.get(tag)!)}) reached a client`);
  }
}

/**
 * A refused request changes nothing (spec §8): a join notice of one of the run's
 * posters may only come from a request naming that room that was not refused.
 * `mayJoin` holds "name|room" for each; `isPoster` says whose notices to check.
 */
export function checkJoinsAllowed(views: readonly ObserverView[], isPoster: (name: string) => boolean, mayJoin: ReadonlySet<string>, problems: string[]): void {
  for (const v of views)
    for (const s of v.seen) {
      if (s.type !== "join" || !isPoster(s.from)) continue;
      const key = `${s.from.toLowerCase()}|${s.room}`;
      if (!mayJoin.has(key)) problems.push(`${v.name}: saw ${s.from} join ${s.room}, though every request of ${s.from} naming ${s.room} was refused`);
    }
}

/** Characters that must never reach a terminal raw (spec §3): C0 but TAB and LF, DEL, C1, bidi overrides. */
const TERMINAL_UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

/** The first character of a text line stream that could rewrite a terminal line, escaped; undefined if none. */
export function terminalUnsafe(text: string): string | undefined {
  const m = TERMINAL_UNSAFE.exec(text);
  if (!m) return undefined;
  return JSON.stringify(text.slice(Math.max(0, m.index - 20), m.index + 20));
}

/** Collects the tags in a stream of text that arrives in pieces (a tag may straddle two). */
export class TagScanner {
  readonly #into: Set<string>;
  #carry = "";

  constructor(into: Set<string>) {
    this.#into = into;
  }

  push(text: string): void {
    const joined = this.#carry + text;
    for (const m of joined.matchAll(TAGS)) this.#into.add(m[1]!);
    this.#carry = joined.slice(-24);
  }
}

/**
 * A reader without a cursor that cut one answer (read part of it and closed):
 * spec §5 lets it lose at most that answer, which §8 bounds to 1 MiB of body
 * (at least one message). `required` is in id order with each message's line size.
 */
export function checkCutReader(
  who: string,
  required: readonly { tag: string; bytes: number }[],
  received: ReadonlySet<string>,
  maxAnswerBytes: number,
  problems: string[],
): void {
  const missing = required.map((r, i) => ({ ...r, i })).filter((r) => !received.has(r.tag));
  if (missing.length === 0) return;
  const bytes = missing.reduce((sum, r) => sum + r.bytes, 0);
  const largest = Math.max(...missing.map((r) => r.bytes));
  if (bytes > maxAnswerBytes + largest) {
    problems.push(`${who}: cut one answer and lost ${missing.length} of ${required.length} messages (${bytes} bytes), more than one answer of ${maxAnswerBytes} bytes`);
  }
  const first = missing[0]!.i;
  if (missing.some((r, k) => r.i !== first + k)) problems.push(`${who}: lost messages that were not one run (${missing.map((r) => r.tag).join(" ")})`);
}

function statuses(post: PostRecord): string {
  return post.attempts.map((a) => (a.kind === "refused" ? String(a.status) : a.kind)).join("/");
}

function describe(post: PostRecord): string {
  return `${post.to === undefined ? `to room ${post.room}` : `private to ${post.to}`}, ${statuses(post)}`;
}
