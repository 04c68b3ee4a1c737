import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * Requests one connection may have waiting behind its unfinished answer. The
 * next one is refused (503, Connection: close). Browsers never pipeline; this
 * bounds what one connection that does can make the server hold: its answer in
 * flight and 16 parsed requests.
 */
export const MAX_WAITING_PER_CONNECTION = 16;

/**
 * Requests a connection may send after its refusal, before it is closed at once.
 * They are dropped (the connection ends after the refusal, so they would never
 * be answered), but parsing them still costs: this bounds it. The connection is
 * still read (not paused) so that its client's close is seen at once, and with
 * it the end of the stream or held poll at its head.
 */
const MAX_DROPPED_PER_CONNECTION = 16;

/**
 * What to do with a request now:
 * - "now": its response is at the head of its connection: handle it;
 * - "waiting": queued behind an unfinished answer; `handle` runs once it reaches the head;
 * - "refuse": one too many waiting: answer it 503 with Connection: close;
 * - "drop": behind a refusal: never answered, nothing done (past 16 of them the connection is destroyed);
 * - "gone": its connection was closed (or is being ended) before its turn: nobody can read an answer, nothing done.
 */
export type Turn = "now" | "waiting" | "refuse" | "drop" | "gone";

/** A pipelining connection's count. Kept only for a connection that pipelines, and gone with its socket. */
interface Line {
  waiting: number;
  /** -1 until a request is refused, then the requests dropped since. */
  dropped: number;
}
const lines = new WeakMap<Socket, Line>();

/**
 * Node writes pipelined answers in request order: a response queued behind
 * another has `res.socket === null` until the one ahead finishes, when Node
 * assigns it the socket and emits `socket` on it (Node 20–26). Handling a
 * request only then means a connection holds at most one answer built and
 * unsent, whatever the route (a 1 MiB poll answer, 1000 messages of history),
 * however many requests it pipelines: the rest wait as parsed requests, which
 * have done nothing yet (a pipelined post takes effect in its turn).
 *
 * A turn can come after the connection is gone: when the answer ahead finishes
 * on a socket the client reset (Node 20, 22) or the server destroyed (a flood
 * past the drops below; Node 20–26), Node hands that socket to the next queued
 * response all the same. Its request never acts then: nobody can read its
 * answer, and a post that ran anyway would be one its sender, told nothing,
 * believes lost and sends again.
 */
export function takeTurn(req: IncomingMessage, res: ServerResponse, handle: (req: IncomingMessage, res: ServerResponse) => void): Turn {
  // The usual case, a request with nothing ahead of it: no state, no listener.
  const current = res.socket;
  if (current !== null) return current.destroyed || !current.writable ? "gone" : "now";
  const socket = req.socket;
  let line = lines.get(socket);
  if (line === undefined) lines.set(socket, (line = { waiting: 0, dropped: -1 }));
  if (line.dropped >= 0) {
    if (++line.dropped > MAX_DROPPED_PER_CONNECTION) socket.destroy();
    return "drop";
  }
  if (line.waiting >= MAX_WAITING_PER_CONNECTION) {
    line.dropped = 0;
    return "refuse";
  }
  line.waiting++;
  // A closure per waiting request, at most 16 per connection, gone with its socket.
  // Its turn calls `handle`, which comes back here and finds "now", or "gone" for a socket closed meanwhile.
  res.once("socket", () => {
    line.waiting--;
    handle(req, res);
  });
  return "waiting";
}
