import type { Hub } from "../hub.js";
import type { Envelope } from "../message.js";
import type { Session } from "../session.js";
import { SessionQueue } from "../session-queue.js";
import { answerEntries, type PollFormat } from "./poll-answer.js";

/** What a poll would answer: the entries of its body and the cursor it tells (X-Cursor). */
export interface PollPreview {
  readonly entries: readonly Envelope[];
  readonly cursor: number;
}

/**
 * What a poll of `client` with `cursor` answers now, worked out without acting
 * (for HEAD, spec §3): a GET first acknowledges up to its cursor (hub.open,
 * cursors.ts), which can put a gap at the head of the queue; this does that
 * to a copy of the queue instead. Then the same cut at one answer's bytes and
 * the same cursor as answerPoll, so a client that goes on from the cursor
 * skips nothing the GET would have carried.
 */
export function previewPoll(hub: Hub, client: Session, cursor: number | undefined, format: PollFormat): PollPreview {
  const queue = cursor === undefined ? client.queue : resumedCopy(hub, client.queue, cursor);
  const entries = answerEntries(queue.peek(), format);
  if (entries.length > 0) return { entries, cursor: entries[entries.length - 1]!.id };
  // Nothing to carry: the cursor cursors.ts tells an empty queue (queued entries are always carried, at least one).
  return { entries, cursor: Math.max(queue.since, hub.deliveredUpTo) };
}

/** A copy of `queue` resumed after `cursor` as the GET's hub.open() resumes the queue itself. */
function resumedCopy(hub: Hub, queue: SessionQueue, cursor: number): SessionQueue {
  // Never past what may be acknowledged (cursors.ts: the queue's start, or what was delivered).
  const upTo = Math.min(cursor, Math.max(queue.since, hub.deliveredUpTo));
  // Unbounded: the copy holds what the queue holds, which kept to its own bound.
  const copy = new SessionQueue(Number.MAX_SAFE_INTEGER, queue.since);
  for (const entry of queue.peek()) copy.push(entry);
  copy.resumeFrom(upTo);
  return copy;
}
