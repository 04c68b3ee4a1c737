import type { ServerResponse } from "node:http";
import type { Session } from "../session.js";
import type { Hub } from "../hub.js";
import type { Subscription } from "../subscription.js";
import type { OpenResponses } from "./open-responses.js";
import { answerEntries, pollBody, sendAcknowledged, type PollFormat } from "./poll-answer.js";
import { send } from "./respond.js";
import { forgetOnClose, releaseOnClose } from "./socket-close.js";
import { idleIsFine } from "./write-timeout.js";

export type { PollFormat } from "./poll-answer.js";

/** Polls one session may hold open at once (spec §8): a newer one answers the oldest at once. */
export const MAX_HELD_PER_SESSION = 4;

export interface PollRequest {
  client: Session;
  /** With a cursor, entries stay queued until a later poll acknowledges them; without, until this answer is handed over. */
  cursor: number | undefined;
  timeoutMs: number;
  format: PollFormat;
}

/**
 * The long-poll of spec §1 and §5: answered at once when something is queued,
 * else held until the hub wakes this client or the timer ends it (200, empty).
 * A held poll ends with its connection, and a session holds at most
 * MAX_HELD_PER_SESSION (polls of one name on several connections).
 */
export function longPoll(hub: Hub, openPolls: OpenResponses, res: ServerResponse, poll: PollRequest): void {
  const { client } = poll;
  const sub = hub.open(client, { cursor: poll.cursor });
  // Answered in this turn: nothing to hold, so no timer, listeners or closures.
  // (Waiting would only count presence and set lastSeen, which the request's touch just did.)
  if (sub.queued > 0 || poll.timeoutMs === 0 || sub.ended) return reply(sub, res, poll);
  // (The router hands a pipelined poll over only at the head of its connection, so a
  // queued poll builds no answer and holds nothing: res.socket is this socket.)
  const socket = res.req.socket;
  if (socket.destroyed) return; // gone already: nobody to answer, nothing to hold
  // Held longer than the write timeout is fine; an answer its client does not take is not.
  idleIsFine(res);
  let finished = false;

  const release = (): boolean => {
    if (finished) return false;
    finished = true;
    sub.close();
    clearTimeout(timer);
    openPolls.delete(answer);
    forgetOnClose(socket, release);
    const mine = client.heldPolls!;
    if (mine.length === 1) client.heldPolls = undefined;
    else mine.splice(mine.indexOf(answer), 1);
    return true;
  };

  // Runs at most once: it closes the subscription before it writes.
  function answer(): void {
    if (release()) reply(sub, res, poll);
  }

  // The session's oldest held poll gives way: answered now with what is queued (perhaps nothing).
  // (A one-element literal, dropped when empty: most sessions hold one poll, and a grown array keeps 17 slots.)
  if (client.heldPolls !== undefined && client.heldPolls.length >= MAX_HELD_PER_SESSION) client.heldPolls[0]!();
  if (client.heldPolls === undefined) client.heldPolls = [answer];
  else client.heldPolls.push(answer);
  // Woken after the current turn's publishes, not at the first: a post that
  // also joins its sender (join notice, then message) reaches this poll whole.
  // The Subscription is what the session wakes and what counts this poll as presence.
  sub.onWake(answer);
  const timer = setTimeout(answer, poll.timeoutMs);
  openPolls.add(answer);
  // The client went away first (its socket closed): the poll takes nothing with it.
  releaseOnClose(socket, release);
}

/** Writes what the client's queue holds now (perhaps nothing, at most ANSWER_MAX_BYTES of it) with the cursor to send next. */
function reply(sub: Subscription, res: ServerResponse, { cursor, format }: PollRequest): void {
  const entries = answerEntries(sub.pending(), format);
  const next = sub.cursorAfter(entries);
  const body = pollBody(entries, format, next);
  const type = format === "json" ? "application/json; charset=utf-8" : "text/plain; charset=utf-8";
  // Without a cursor nothing else will acknowledge these: they leave the queue once handed over whole.
  if (cursor === undefined && entries.length > 0) sendAcknowledged(res, type, body, next, () => sub.ack(next));
  else send(res, 200, type, body, { "X-Cursor": String(next) });
}
