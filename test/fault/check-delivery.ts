import { at, type History, type PostRecord, type Received, type SessionRecord } from "./fault-history.js";

/**
 * The delivery checks: every answered post reaches every reader that was a member
 * throughout, exactly once and in id order, unless a gap that reader got covers it.
 * A session's span is (its join cursor, the highest cursor it reached], or to the end
 * of the run when no 401 ended it. A seed client (no cursor) may be sent a message
 * again after a hop, never miss one; its sessions are told apart by its own join notice.
 */
export interface Violations {
  add(category: string, text: string): void;
}

export function checkDelivery(history: History, out: Violations): void {
  const answered = history.posts.filter((p) => p.fate === "ok").sort((a, b) => a.id! - b.id!);
  const byText = new Map<string, PostRecord>();
  for (const p of history.posts) byText.set(p.txn, p);
  for (const session of history.sessions) {
    if (session.kind === "seed") {
      for (const segment of seedSegments(session)) checkSpan(history, segment, answered, byText, out, true);
    } else {
      const span = {
        session,
        lower: session.joinCursor!,
        upper: session.ended === undefined ? Infinity : session.maxCursor,
        received: session.received,
      };
      checkSpan(history, span, answered, byText, out, false);
    }
  }
}

interface Span {
  session: SessionRecord;
  lower: number;
  upper: number;
  received: Received[];
}

function checkSpan(
  history: History,
  span: Span,
  answered: readonly PostRecord[],
  byText: Map<string, PostRecord>,
  out: Violations,
  seed: boolean,
): void {
  const { session } = span;
  const ended = session.ended ? `, ended by 401 ${at(session.ended.at)}` : "";
  const who = `${session.reader}#${session.index} (${session.kind}, name ${session.name}, joined ${at(session.joinedAt)}${ended})`;
  const seen = new Map<number, Received>();
  let last = -Infinity;
  let lastAt = 0;
  for (const r of span.received) {
    if (r.type !== "message") continue;
    const id = r.id!;
    const post = byText.get(r.text ?? "");
    if (post === undefined)
      out.add("phantom", `${who}: message id ${id} text ${JSON.stringify(r.text)} from p${r.proc} ${at(r.at)} matches no post sent`);
    else if (post.fate === "ok" && post.id !== id) {
      out.add("txn", `${who}: post ${post.txn} answered id ${post.id} but delivered as id ${id} from p${r.proc} ${at(r.at)}`);
    }
    const before = seen.get(id);
    if (before !== undefined) {
      if (!seed)
        out.add(
          "duplicated",
          `${who}: id ${id} (${r.text}) delivered twice: from p${before.proc} ${at(before.at)} and p${r.proc} ${at(r.at)}`,
        );
      continue; // a seed's repeat after a hop is allowed
    }
    seen.set(id, r);
    if (id < last) out.add("reordered", `${who}: id ${id} (${r.text}) from p${r.proc} ${at(r.at)} came after id ${last} (${at(lastAt)})`);
    if (id > last) {
      last = id;
      lastAt = r.at;
    }
  }
  const covered = gapCover(span);
  const missing: string[] = [];
  for (const post of answered) {
    const id = post.id!;
    if (id <= span.lower || id > span.upper || seen.has(id) || covered.some(([lo, hi]) => id > lo && id < hi)) continue;
    missing.push(
      `${post.txn} id ${id} answered ${at(post.answeredAt!)} by p${post.attempts.at(-1)!.proc} (${faultNear(history, post.answeredAt!)})`,
    );
  }
  if (missing.length > 0) {
    const upper = span.upper === Infinity ? "end of run" : span.upper;
    const gaps = span.received.filter((r) => r.type === "gap").map((g) => `gap(id ${g.id}, missed ${g.missed}) ${at(g.at)}`);
    const text =
      `${who}: ${missing.length} answered post(s) in its span (${span.lower}, ${upper}] never delivered, ` +
      `no gap covering them: ${list(missing)}; gaps it got: ${list(gaps)}`;
    out.add(seed ? "seed-lost" : "lost", text);
  }
}

/** The fault under way at `t`, else the next one: what a lost post's evidence names. */
export function faultNear(history: History, t: number): string {
  const f = history.faults.find((f) => f.startedAt <= t && t <= (f.healthyAt ?? Infinity)) ?? history.faults.find((f) => f.startedAt > t);
  if (f === undefined) return "no fault after it";
  return `${f.startedAt <= t ? "during" : "before"} ${f.kind} ${at(f.startedAt)}–${f.healedAt === undefined ? "?" : at(f.healedAt)}`;
}

/** Id ranges a gap covers: between the last message delivered before it and the first after it. */
function gapCover(span: Span): [number, number][] {
  const ranges: [number, number][] = [];
  const r = span.received;
  for (let i = 0; i < r.length; i++) {
    if (r[i]!.type !== "gap") continue;
    let lo = span.lower;
    for (let j = i - 1; j >= 0; j--) {
      if (r[j]!.type !== "message") continue;
      lo = Math.max(lo, r[j]!.id!);
      break;
    }
    const after = r.slice(i + 1).find((m) => m.type === "message");
    ranges.push([lo, after?.id ?? Infinity]);
  }
  return ranges;
}

/** A seed reader's sessions: split at each own join notice not seen before (a repeat after a hop is not a new session). */
function seedSegments(session: SessionRecord): Span[] {
  const spans: Span[] = [];
  const joins = new Set<number>();
  let current: Span | undefined;
  for (const r of session.received) {
    if (r.type === "own-join") {
      if (r.id === undefined || joins.has(r.id)) continue;
      joins.add(r.id);
      current = { session: { ...session, index: spans.length, joinedAt: r.at }, lower: r.id, upper: -Infinity, received: [] };
      spans.push(current);
      continue;
    }
    if (current === undefined) continue; // before its first own join: nothing is owed to it yet
    current.received.push(r);
    if (r.type === "message") current.upper = Math.max(current.upper, r.id!);
  }
  const final = spans.at(-1);
  if (final !== undefined) final.upper = Infinity;
  return spans;
}

export function list(items: readonly string[], max = 8): string {
  if (items.length === 0) return "none";
  return items.slice(0, max).join("; ") + (items.length > max ? `; … and ${items.length - max} more` : "");
}
