import { ChatError } from "../errors.js";
import { pumpSubscription } from "../subscription-stream.js";
import { parseCursor } from "../validate.js";
import { RELOADED, type Session } from "../session.js";
import type { HttpContext, Request } from "./context.js";
import { sessionOf, tokenOf } from "./auth.js";
import { streamSession } from "./vouched.js";
import { forgetOnClose, releaseOnClose } from "./socket-close.js";
import { idleIsFine } from "./write-timeout.js";

/** Events an SSE stream keeps queued after writing them, for a reconnect to replay. */
const SSE_REPLAY = 256;

/** Streams one session may have open at once, as held polls (spec §8): a newer one ends the oldest. */
export const MAX_STREAMS_PER_SESSION = 4;

/** Each session's open streams, oldest first, by the function that ends one with a reason. */
const openStreams = new WeakMap<Session, ((reason: string) => void)[]>();

/**
 * GET /api/events (spec §4): the client's queue as Server-Sent Events. It
 * resumes after Last-Event-ID (or ?cursor=), counts as presence while open,
 * and acknowledges each event once it is written out. The router starts it
 * only at the head of its connection (a pipelined one waits its turn), so
 * the stream's socket is known and watched: when it closes, the stream stops.
 */
export function handleEvents(ctx: HttpContext, request: Request): void | Promise<void> {
  const { req, query } = request;
  const identity = ctx.identity;
  if (identity === undefined || ctx.hub.sessionByToken(tokenOf(req)) !== undefined) {
    const client = sessionOf(ctx, req);
    return stream(ctx, request, client, eventCursor(req, query));
  }
  // With --jwt-secret or authenticate and no session token: the session of the name the host proves (vouched.ts).
  const cursor = eventCursor(req, query);
  return streamSession(identity, ctx, req).then((client) => stream(ctx, request, client, cursor));
}

/** Where a stream resumes: after Last-Event-ID, else ?cursor=. */
function eventCursor(req: Request["req"], query: Request["query"]): number | undefined {
  const lastEventId = req.headers["last-event-id"];
  if (Array.isArray(lastEventId)) throw new ChatError("repeated_parameter", "Last-Event-ID is given more than once.");
  return parseCursor(lastEventId?.trim() || query.get("cursor"));
}

function stream(ctx: HttpContext, { req, res }: Request, client: Session, cursor: number | undefined): void {
  const sub = ctx.hub.open(client, { cursor });

  // Nothing writes after the end below, so no error is expected; one must still not be unhandled (it would exit the process).
  res.on("error", ignore);
  const socket = req.socket;
  // The connection went before we got here: its close has come and gone, nothing to stream to.
  if (socket.destroyed) return void res.destroy();
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-store",
    // nginx and friends would otherwise hold events back in a buffer.
    "X-Accel-Buffering": "no",
    Connection: "keep-alive",
  });
  // Tells EventSource how soon to reconnect, and sends the headers on their way now.
  res.write("retry: 2000\n\n");

  // Everything the stream keeps going stops at its end, whichever comes first: our end(),
  // "finish" (a slow reader can hold that back long after end()), "close", or its socket's close.
  let stopped = false;
  let stopPump: (() => void) | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(heartbeat);
    stopPump?.();
    ctx.streams.delete(shutdown);
    forgetOnClose(socket, stop);
    leave(client, finish);
  };
  const finish = (reason: string): void => {
    stop();
    if (!res.writableEnded && !res.destroyed) res.end(`event: close\ndata: ${JSON.stringify({ reason })}\n\n`);
  };
  const shutdown = (): void => finish("server shutting down");
  ctx.streams.add(shutdown);
  res.on("finish", stop);
  res.on("close", stop);
  // Also says the connection is waited on: quiet between heartbeats is fine, output its
  // client does not take is not (write-timeout.ts).
  releaseOnClose(socket, stop);
  idleIsFine(res);
  join(client, finish);
  // The pump waits on the subscription, which counts the stream as presence until it stops.
  stopPump = pumpSubscription(sub, res, {
    format: (entry) => entry.event,
    maxPending: ctx.options.maxPendingBytes,
    onEnd: () => finish(client.goesOn ? RELOADED : "session ended"),
    // Written is not received: an EventSource that reconnects with Last-Event-ID gets
    // the last events again from here; past this many it gets a gap instead.
    keepWritten: Math.min(SSE_REPLAY, Math.floor(ctx.options.maxQueue / 2)),
  });
  if (stopped) return stopPump(); // the session had ended: finish() ran inside pumpSubscription
  heartbeat = setInterval(() => {
    if (!res.writableEnded && res.writableLength <= ctx.options.maxPendingBytes) res.write(": heartbeat\n\n");
  }, ctx.options.heartbeatMs);
}

/** Counts a new stream of the session; past MAX_STREAMS_PER_SESSION its oldest ends ("replaced"). */
function join(client: Session, finish: (reason: string) => void): void {
  const streams = openStreams.get(client);
  if (streams === undefined) return void openStreams.set(client, [finish]);
  if (streams.length >= MAX_STREAMS_PER_SESSION) streams[0]!("replaced"); // its stop() takes it out of the list
  streams.push(finish);
}

function leave(client: Session, finish: (reason: string) => void): void {
  const streams = openStreams.get(client);
  if (streams === undefined) return;
  const at = streams.indexOf(finish);
  if (at >= 0) streams.splice(at, 1);
  if (streams.length === 0) openStreams.delete(client);
}

function ignore(): void {}
