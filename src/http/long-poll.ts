import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Hub } from "../hub.js";
import type { Subscription } from "../subscription.js";
import { answerPoll, type PollRequest } from "./poll-answer.js";
import type { Deadlined, PollDeadlines } from "./poll-deadlines.js";
import { forgetOnClose, releaseOnClose } from "./socket-close.js";
import { idleIsFine } from "./write-timeout.js";

export type { PollFormat, PollRequest } from "./poll-answer.js";

/** Polls one session may hold open at once (spec §8): a newer one answers the oldest at once. */
export const MAX_HELD_PER_SESSION = 4;

/**
 * The long-poll of spec §1 and §5: answered at once when something is queued,
 * else held until the hub wakes this client or its timeout ends it (200, empty).
 * A held poll ends with its connection, and a session holds at most
 * MAX_HELD_PER_SESSION (polls of one name on several connections).
 */
export function longPoll(hub: Hub, heldPolls: PollDeadlines, res: ServerResponse, poll: PollRequest): void {
  const sub = hub.open(poll.client, { cursor: poll.cursor });
  // Answered in this turn: nothing to hold, so no object, link or listener.
  // (Waiting would only count presence and set lastSeen, which the request's touch just did.)
  // (And once shutdown has answered every held poll, one that reached here later, after an await, is answered too.)
  if (sub.queued > 0 || poll.timeoutMs === 0 || sub.ended || heldPolls.finished) return answerPoll(sub, res, poll);
  // (The router hands a pipelined poll over only at the head of its connection, so a
  // queued poll builds no answer and holds nothing: res.socket is this socket.)
  const socket = res.req.socket;
  if (socket.destroyed) return; // gone already: nobody to answer, nothing to hold
  new HeldPoll(sub, res, poll, socket, heldPolls).hold();
}

/**
 * A poll waiting for its session's queue: one object that is its own deadline
 * entry, wake target and socket watcher, so holding a poll costs no timer, no
 * closure and no listener of its own (issue 14). Whichever comes first answers
 * it or lets it go, once: a wake or its deadline (answered), its connection's
 * close (released: it takes nothing with it), a fifth poll of its session
 * (answered now), shutdown (answered).
 */
class HeldPoll implements Deadlined {
  deadline = 0;
  slot = -1;
  prev: Deadlined | undefined = undefined;
  next: Deadlined | undefined = undefined;
  #done = false;

  constructor(
    readonly sub: Subscription,
    readonly res: ServerResponse,
    readonly poll: PollRequest,
    readonly socket: Socket,
    readonly polls: PollDeadlines,
  ) {}

  hold(): void {
    const client = this.poll.client;
    // The session's oldest held poll gives way: answered now with what is queued (perhaps nothing).
    // (A one-element literal, dropped when empty: most sessions hold one poll, and a grown array keeps 17 slots.)
    if (client.heldPolls !== undefined && client.heldPolls.length >= MAX_HELD_PER_SESSION) client.heldPolls[0]!.answer();
    if (client.heldPolls === undefined) client.heldPolls = [this];
    else client.heldPolls.push(this);
    // Woken after the current turn's publishes, not at the first: a post that
    // also joins its sender (join notice, then message) reaches this poll whole.
    // The Subscription is what the session wakes and what counts this poll as presence.
    this.sub.onWake(this);
    this.polls.add(this, this.poll.timeoutMs);
    // The client went away first (its socket closed): the poll takes nothing with it.
    releaseOnClose(this.socket, this);
    // Quiet longer than the write timeout is fine (write-timeout.ts; a response listener only in a host's server).
    idleIsFine(this.res);
  }

  /** Answers with what is queued now (perhaps nothing). Runs at most once: it lets go before it writes. */
  answer(): void {
    if (this.#letGo()) answerPoll(this.sub, this.res, this.poll);
  }

  woken(): void {
    this.answer();
  }

  expire(): void {
    this.answer();
  }

  socketClosed(): void {
    this.#letGo();
  }

  #letGo(): boolean {
    if (this.#done) return false;
    this.#done = true;
    this.sub.close();
    this.polls.remove(this);
    forgetOnClose(this.socket, this);
    const client = this.poll.client;
    const mine = client.heldPolls!;
    if (mine.length === 1) client.heldPolls = undefined;
    else mine.splice(mine.indexOf(this), 1);
    return true;
  }
}
