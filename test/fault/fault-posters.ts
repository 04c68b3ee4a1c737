import { now, type Attempt, type PostRecord } from "./fault-history.js";
import type { Member } from "./fault-member.js";
import { json, pause, request } from "./fault-world.js";

/** The server answers a post whose fate is unknown within 10 s (README, Faults); 14 s leaves room. */
const POST_DEADLINE_MS = 14_000;
const TRIES = 6;

/**
 * Posts with a fresh `txn` (the text is the txn, so every delivery names its post) to a random
 * process, paced. A try that got no answer is sent again with the same txn to another process;
 * a 503 (or any refusal) is final: that txn is never sent again, so if it is ever delivered the
 * refusal took effect. Some answered posts are sent once more to check the txn answers one id.
 */
export async function postLoop(member: Member, pace: { minMs: number; maxMs: number; recheck: number }): Promise<void> {
  const { world, rng } = member;
  let seq = 0;
  while (!world.postsDone) {
    await pause(rng.int(pace.minMs, pace.maxMs));
    if (world.postsDone) break;
    if (!(await member.ensure())) break;
    const session = member.session!;
    const token = member.token;
    const txn = `${member.reader}.${seq++}`;
    const post: PostRecord = { client: member.reader, session: session.index, txn, firstSentAt: now(), attempts: [], fate: "pending" };
    world.history.posts.push(post);
    let avoid: number | undefined;
    for (let attempt = 0; attempt < TRIES && post.fate === "pending"; attempt++) {
      const tried = await send(member, token, txn, avoid);
      if (tried === undefined) {
        await pause(200);
        continue;
      }
      post.attempts.push(tried);
      if (tried.status === 201) {
        post.fate = "ok";
        post.id = tried.id;
        post.answeredAt = tried.answeredAt;
      } else if (tried.status === "none") {
        avoid = tried.proc;
        await pause(200);
      } else {
        // A refusal ends this txn: refused only if no earlier try may still land.
        post.fate = post.attempts.every((a) => a.status !== "none") ? "refused" : "unknown";
        if (tried.status === 401) member.ended(token, tried.proc, "post");
      }
    }
    if (post.fate === "pending") post.fate = "unknown";
    if (post.fate === "ok" && rng.next() < pace.recheck) {
      // The same txn again elsewhere, as a client whose answer was lost: the same id, nothing posted.
      const again = await send(member, token, txn, post.attempts.at(-1)!.proc);
      if (again !== undefined) post.attempts.push(again);
    }
  }
}

async function send(member: Member, token: string, txn: string, avoid: number | undefined): Promise<Attempt | undefined> {
  const proc = member.route(avoid);
  if (proc === undefined) return undefined;
  const answer = await request(member.world, proc, "post", member.reader, "/api/messages", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: { text: txn, txn },
    timeoutMs: POST_DEADLINE_MS,
  });
  const body = json<{ id?: number }>(answer.text);
  const attempt: Attempt = { proc, sentAt: answer.sentAt, answeredAt: answer.answeredAt, status: answer.status };
  if (answer.error !== undefined) attempt.error = answer.error;
  if (answer.status === 201 && typeof body?.id === "number") attempt.id = body.id;
  return attempt;
}
