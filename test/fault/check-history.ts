import { checkDelivery, faultNear, list, type Violations } from "./check-delivery.js";
import { at, type Attempt, type FaultRecord, type History, type PostRecord } from "./fault-history.js";

/** Every check the fault test makes, by category, in the order the report lists them. */
export const CHECKS = {
  lost: "every answered post is delivered to every reader with a cursor that was a member throughout, unless a gap covers it",
  duplicated: "no reader with a cursor gets a message twice",
  reordered: "every reader gets messages in id order",
  "seed-lost": "a seed client (no cursor) may get a message twice after a hop, never miss one",
  phantom: "nothing is delivered that no client posted",
  txn: "one id per txn: every answer and every delivery of a txn has the same id, and no two txns share an id",
  order: "a post answered before another was sent has the lower id",
  "refused-took-effect":
    "nothing answered 503 (or refused otherwise) took effect: never delivered, never in a history; a refused join holds no name",
  "unexpected-401": "no 401 except after Redis lost data (FLUSHALL, an older RDB: a new epoch)",
  statuses: "no 5xx but 503, and no 4xx but 401, 409 and 429",
  histories: "every room's history is identical on every process at the end",
  "history-lost": "every history read (after each fault, at the end) holds every answered post within its span (a loss needs a new epoch)",
  health: "every process answers /healthz 200 again after each fault",
  "healthy-while-refusing": "/healthz does not answer 200 while the process answers every post 503",
  harness: "the run itself: every process and fault came back, no process exited by itself",
} as const;

export type Category = keyof typeof CHECKS;

export function checkHistory(history: History): Map<Category, string[]> {
  const found = new Map<Category, string[]>(Object.keys(CHECKS).map((k) => [k as Category, []]));
  const out: Violations = { add: (category, text) => found.get(category as Category)!.push(text) };
  checkDelivery(history, out);
  checkTxn(history, out);
  checkOrder(history, out);
  checkRefused(history, out);
  check401(history, out);
  checkStatuses(history, out);
  checkHistories(history, out);
  checkHistorySpan(history, out);
  checkHealth(history, out);
  for (const h of history.harness) out.add("harness", h);
  return found;
}

const tries = (p: PostRecord): string => list(p.attempts.map(attempt), 10);
const attempt = (a: Attempt): string =>
  `p${a.proc} sent ${at(a.sentAt)} → ${a.status}${a.id === undefined ? "" : ` id ${a.id}`} ${at(a.answeredAt)}` +
  (a.error ? ` (${a.error})` : "");

function checkTxn(history: History, out: Violations): void {
  const owner = new Map<number, PostRecord>();
  for (const p of history.posts) {
    const ids = new Set(p.attempts.filter((a) => a.status === 201).map((a) => a.id));
    if (ids.size > 1) out.add("txn", `${p.txn} (${p.client}) answered with ${ids.size} ids: ${tries(p)}`);
    for (const id of ids) {
      if (id === undefined) continue;
      const other = owner.get(id);
      if (other !== undefined && other !== p)
        out.add("txn", `id ${id} answered to two txns: ${other.txn} (${tries(other)}) and ${p.txn} (${tries(p)})`);
      owner.set(id, p);
    }
  }
}

function checkOrder(history: History, out: Violations): void {
  const answered = history.posts.filter((p) => p.fate === "ok");
  const byAnswer = [...answered].sort((a, b) => a.answeredAt! - b.answeredAt!);
  const bySend = [...answered].sort((a, b) => a.firstSentAt - b.firstSentAt);
  let i = 0;
  let highest: PostRecord | undefined;
  for (const b of bySend) {
    while (i < byAnswer.length && byAnswer[i]!.answeredAt! < b.firstSentAt) {
      const a = byAnswer[i++]!;
      if (highest === undefined || a.id! > highest.id!) highest = a;
    }
    if (highest !== undefined && highest.id! > b.id!) {
      out.add(
        "order",
        `${highest.txn} answered id ${highest.id} ${at(highest.answeredAt!)}, before ${b.txn} was sent ${at(b.firstSentAt)}, ` +
          `yet ${b.txn} got the lower id ${b.id}`,
      );
    }
  }
}

function checkRefused(history: History, out: Violations): void {
  const delivered = new Map<string, string[]>();
  for (const s of history.sessions) {
    for (const r of s.received) {
      if (r.type !== "message" || r.text === undefined) continue;
      const where = delivered.get(r.text) ?? [];
      where.push(`to ${s.reader}#${s.index} as id ${r.id} from p${r.proc} ${at(r.at)}`);
      delivered.set(r.text, where);
    }
  }
  const inHistory = new Map<string, string[]>();
  history.finalHistories.forEach((lines, proc) => {
    if (typeof lines === "string") return;
    for (const line of lines) {
      const text = line.split(" ").slice(3).join(" ");
      inHistory.set(text, [...(inHistory.get(text) ?? []), `in p${proc}'s history (${line})`]);
    }
  });
  for (const p of history.posts) {
    if (p.fate !== "refused") continue;
    const where = [...(delivered.get(p.txn) ?? []), ...(inHistory.get(p.txn) ?? [])];
    if (where.length > 0)
      out.add("refused-took-effect", `post ${p.txn} (${p.client}) refused: ${tries(p)}; yet delivered ${list(where, 4)}`);
  }
  // A join refused with 503 that still took effect holds the name: the next join of that name is 409.
  let refused: typeof history.joins = [];
  for (const j of history.joins) {
    if (j.status === 200) refused = refused.filter((r) => r.reader !== j.reader);
    else if (j.status === 503) refused.push(j);
    else if (j.status === "none")
      refused = refused.filter((r) => r.name !== j.name); // a lost join may hold the name: no proof
    else if (j.status === 409) {
      const earlier = refused.filter((r) => r.name === j.name);
      if (earlier.length > 0) {
        const evidence = list(
          earlier.map((r) => `p${r.proc} ${at(r.sentAt)} → 503 ${at(r.answeredAt)}`),
          4,
        );
        out.add(
          "refused-took-effect",
          `join of ${j.name}: answered 503 (${evidence}), no try unanswered, then 409 name_taken from p${j.proc} ${at(j.answeredAt)}`,
        );
      }
      refused = refused.filter((r) => r.name !== j.name);
    }
  }
}

/** How long after a data loss healed its 401s may still come: a client's next request (a poll is held 1 s, left after 7). */
const LOSS_401_GRACE_MS = 20_000;

function check401(history: History, out: Violations): void {
  const losses = history.faults.filter((f) => f.losesData);
  for (const s of history.sessions) {
    if (s.ended === undefined) continue;
    // A loss ends the sessions made before it was healed (a join sent meanwhile may have been answered from
    // the old state), and every client hears so at its next request: within a grace after the heal.
    const cause = losses.find(
      (f) =>
        (f.healthyAt ?? Infinity) >= s.joinSentAt &&
        f.startedAt <= s.ended!.at &&
        s.ended!.at <= (f.healthyAt ?? Infinity) + LOSS_401_GRACE_MS,
    );
    if (cause !== undefined) continue;
    const near = history.faults
      .filter((f) => f.startedAt <= s.ended!.at)
      .slice(-2)
      .map(describeFault);
    const lastAnswer = s.received.at(-1);
    out.add(
      "unexpected-401",
      `${s.reader}#${s.index} (name ${s.name}, joined ${at(s.joinedAt)}) ` +
        `got 401 on ${s.ended.what} from p${s.ended.proc} ${at(s.ended.at)} ` +
        `with no data loss since its join; last delivery ${lastAnswer ? at(lastAnswer.at) : "none"}; faults before it: ${list(near)}`,
    );
  }
}

function checkStatuses(history: History, out: Violations): void {
  for (const r of history.statuses) {
    const fine = r.status === 503 || r.status === 401 || r.status === 409 || r.status === 429;
    if (!fine) out.add("statuses", `${r.what} of ${r.reader} answered ${r.status} by p${r.proc} ${at(r.at)}: ${r.body}`);
  }
}

function checkHistories(history: History, out: Violations): void {
  const [first, ...rest] = history.finalHistories;
  if (first === undefined) return out.add("histories", "no history was read at the end");
  history.finalHistories.forEach((h, proc) => typeof h === "string" && out.add("histories", `p${proc}'s history could not be read: ${h}`));
  if (typeof first === "string") return;
  rest.forEach((other, i) => {
    if (typeof other === "string") return;
    const n = Math.max(first.length, other.length);
    for (let k = 0; k < n; k++) {
      if (first[k] === other[k]) continue;
      return out.add(
        "histories",
        `p0 and p${i + 1} differ (${first.length} vs ${other.length} entries) first at entry ${k}: ` +
          `p0 ${first[k] ?? "(none)"} | p${i + 1} ${other[k] ?? "(none)"}`,
      );
    }
  });
}

/**
 * Posts Redis lost leave the history only with a new epoch, which starts it afresh above every
 * old id; an answered post missing between the oldest and newest entries of a history read
 * after a fault (or at the end) vanished with no epoch (a whole site restarted on older data).
 */
function checkHistorySpan(history: History, out: Violations): void {
  const reads = [
    ...history.snapshots.map((s) => ({ ...s, what: `after ${s.after} (read ${at(s.at)})` })),
    ...history.finalHistories.map((lines, proc) => ({ proc, lines, at: Infinity, what: "at the end" })),
  ];
  for (const { proc, lines, at: readAt, what } of reads) {
    if (typeof lines === "string" || lines.length === 0) continue;
    const ids = new Set(lines.map((l) => Number(l.split(" ")[0])));
    let lo = Infinity;
    let hi = -Infinity;
    for (const id of ids) ((lo = Math.min(lo, id)), (hi = Math.max(hi, id)));
    const missing = history.posts.filter((p) => p.fate === "ok" && p.answeredAt! < readAt && p.id! > lo && p.id! < hi && !ids.has(p.id!));
    if (missing.length === 0) continue;
    const shown = missing.map((p) => `${p.txn} id ${p.id} answered ${at(p.answeredAt!)} (${faultNear(history, p.answeredAt!)})`);
    out.add(
      "history-lost",
      `p${proc}'s history ${what} (${lines.length} entries, ids ${lo}…${hi}) ` +
        `lacks ${missing.length} answered post(s) within it: ${list(shown, 6)}`,
    );
  }
}

function checkHealth(history: History, out: Violations): void {
  for (const f of history.faults) if (f.unhealthy !== undefined) out.add("health", `after ${describeFault(f)}: ${f.unhealthy}`);
  // A process that answers every post 503 for 2 s or more while every /healthz sample says 200 in that time.
  const procs = new Set(history.health.map((h) => h.proc));
  for (const proc of procs) {
    const answers = history.posts.flatMap((p) => p.attempts).filter((a) => a.proc === proc && typeof a.status === "number");
    answers.sort((a, b) => a.answeredAt - b.answeredAt);
    let run: Attempt[] = [];
    const judge = (): void => {
      if (run.length >= 3 && run.at(-1)!.answeredAt - run[0]!.answeredAt >= 2000) {
        const from = run[0]!.answeredAt;
        const to = run.at(-1)!.answeredAt;
        const samples = history.health.filter((h) => h.proc === proc && h.at >= from && h.at <= to);
        if (samples.length >= 3 && samples.every((h) => h.status === 200)) {
          out.add(
            "healthy-while-refusing",
            `p${proc} answered ${run.length} posts 503 from ${at(from)} to ${at(to)} (none 201) ` +
              `while all ${samples.length} /healthz samples then said 200`,
          );
        }
      }
      run = [];
    };
    for (const a of answers) {
      if (a.status === 503) run.push(a);
      else judge();
    }
    judge();
  }
}

export function describeFault(f: FaultRecord): string {
  return `${f.kind} (${f.detail}) ${at(f.startedAt)}–${f.healedAt === undefined ? "?" : at(f.healedAt)}`;
}
