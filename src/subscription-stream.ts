import type { Writable } from "node:stream";
import type { Envelope } from "./message.js";
import type { Subscription } from "./subscription.js";

export interface PumpOptions {
  /** How an entry is written; undefined skips it (it is still acknowledged). */
  format: (entry: Envelope) => string | undefined;
  /**
   * Bytes of output that may wait unread in the stream. Past it nothing more is
   * written: new messages wait in the client's bounded queue, where overflow
   * becomes a gap entry, so a client that stops reading costs bounded memory.
   */
  maxPending: number;
  /** The session ended (left, expired, shut down). */
  onEnd: () => void;
  /**
   * Entries written but kept in the queue anyway, newest first: a client that
   * reconnects with the last id it saw (SSE's Last-Event-ID) gets again what
   * died in the network with its old connection. 0 for a transport whose
   * session ends with its connection (TCP). @default 0
   */
  keepWritten?: number;
}

/**
 * Keeps a stream (an SSE response, a TCP socket) fed from a Subscription,
 * the shared half of every streaming transport. An entry leaves the queue once
 * its bytes were handed to the network (and `keepWritten` newer ones were), never before.
 * The pump stops by itself when the stream ends (finish, close, or end() called):
 * nothing is written after the end, which Node would report as an `error` event.
 * Stopping closes the subscription (no more wakes, no more presence).
 * The caller keeps an `error` listener on the stream.
 */
export function pumpSubscription(sub: Subscription, out: Writable, options: PumpOptions): () => void {
  // What has been written but perhaps not yet flushed: never written twice.
  // Everything queued now is unsent (a gap at the head may carry the id `since`).
  let sentUpTo = 0;
  let stopped = false;

  const pump = (): void => {
    if (stopped) return;
    if (sub.ended) {
      stop();
      options.onEnd();
      return;
    }
    if (out.writableEnded || isDestroyed(out)) {
      stop();
      return;
    }
    if (out.writableLength > options.maxPending) return;
    let chunk = "";
    let upTo = sentUpTo;
    for (const entry of sub.pending(sentUpTo)) {
      const text = options.format(entry);
      if (text !== undefined) chunk += text;
      upTo = entry.id;
      // The rest waits for "drain": one write never holds more than the cap's worth.
      if (chunk.length > options.maxPending) break;
    }
    if (upTo === sentUpTo) return;
    sentUpTo = upTo;
    const ack = (): void => sub.ack(upTo, options.keepWritten ?? 0);
    if (chunk === "") ack();
    else
      out.write(chunk, (error) => {
        // Node calls a pending write's callback without an error when its stream was destroyed:
        // only a live stream's success says the bytes were handed over.
        if (error || isDestroyed(out)) return;
        ack();
        // Flushed: room for more. ("drain" alone is not enough: it fires only after a write returned false.)
        pump();
      });
  };

  // Woken after the turn's publishes: the first pump writes all of them at once, later ones find nothing new.
  sub.onWake(pump);
  out.on("drain", pump);
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    sub.close();
    out.off("drain", pump);
    out.off("finish", stop);
    out.off("close", stop);
  };
  // Whoever ends the stream (the session's end, shutdown, the peer), the pump stops with it.
  out.on("finish", stop);
  out.on("close", stop);
  pump();
  return stop;
}

/** A response's own `destroyed` can stay false when its socket dies under it: the socket is asked too. */
function isDestroyed(out: Writable): boolean {
  if (out.destroyed) return true;
  const socket = (out as { socket?: { destroyed: boolean } | null }).socket;
  return socket != null && socket.destroyed;
}
