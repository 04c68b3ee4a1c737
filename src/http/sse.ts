import { ChatError } from "../errors.js";
import { pumpQueue } from "../queue-pump.js";
import { parseCursor } from "../validate.js";
import type { HttpContext, Request } from "./context.js";
import { sessionOf } from "./auth.js";

/** Events an SSE stream keeps queued after writing them, for a reconnect to replay. */
const SSE_REPLAY = 256;

/**
 * GET /api/events (spec §4): the client's queue as Server-Sent Events. It
 * resumes after Last-Event-ID (or ?cursor=), counts as presence while open,
 * and acknowledges each event once it is written out.
 */
export function handleEvents(ctx: HttpContext, { req, res, query }: Request): void {
  const client = sessionOf(ctx, req);
  const lastEventId = req.headers["last-event-id"];
  if (Array.isArray(lastEventId)) throw new ChatError("repeated_parameter", "Last-Event-ID is given more than once.");
  const cursor = parseCursor(lastEventId?.trim() || query.get("cursor"));
  if (cursor !== undefined) ctx.hub.resume(client, cursor);

  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-store",
    // nginx and friends would otherwise hold events back in a buffer.
    "X-Accel-Buffering": "no",
    Connection: "keep-alive",
  });
  // Tells EventSource how soon to reconnect, and sends the headers on their way now.
  res.write("retry: 2000\n\n");
  // Nothing writes after the end below, so no error is expected; one must still not be unhandled (it would exit the process).
  res.on("error", ignore);
  ctx.hub.attach(client);

  // Everything the stream keeps going stops at its end, whichever comes first: our end(),
  // "finish" (a slow reader can hold that back long after end()), or "close".
  let stopped = false;
  let stopPump: (() => void) | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(heartbeat);
    stopPump?.();
    ctx.streams.delete(shutdown);
    ctx.hub.detach(client);
  };
  const finish = (reason: string): void => {
    stop();
    if (!res.writableEnded && !res.destroyed) res.end(`event: close\ndata: ${JSON.stringify({ reason })}\n\n`);
  };
  const shutdown = (): void => finish("server shutting down");
  ctx.streams.add(shutdown);
  res.on("finish", stop);
  res.on("close", stop);
  // The connection went before we got here: its close has come and gone.
  if (req.socket.destroyed) return stop();
  stopPump = pumpQueue(ctx.hub, client, res, {
    format: (entry) => entry.event,
    maxPending: ctx.options.maxPendingBytes,
    onEnd: () => finish("session ended"),
    // Written is not received: an EventSource that reconnects with Last-Event-ID gets
    // the last events again from here; past this many it gets a gap instead.
    keepWritten: Math.min(SSE_REPLAY, Math.floor(ctx.options.maxQueue / 2)),
  });
  if (stopped) return stopPump(); // the session had ended: finish() ran inside pumpQueue
  heartbeat = setInterval(() => {
    if (!res.writableEnded && res.writableLength <= ctx.options.maxPendingBytes) res.write(": heartbeat\n\n");
  }, ctx.options.heartbeatMs);
}

function ignore(): void {}
