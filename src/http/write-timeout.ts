import type { Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { isWaitedOn } from "./socket-close.js";

/**
 * A client that stops reading must not pin an answer forever (up to 1 MiB of
 * poll answer, 64 KiB of SSE output). Node's idle timer of a connection
 * (`server.timeout`) runs from the last byte read or written and counts a big
 * write still draining into the kernel as progress: it fires only once the
 * connection's output has not moved for that long (Node checks progress on the
 * timer, so the cut comes within 1–2× the timeout). Whatever the answer carried
 * was not handed over, so nothing is acknowledged.
 *
 * A held poll or an SSE stream between heartbeats may be quiet longer than the
 * timeout: its connection is left alone, and cut only when output waits unsent.
 * One server listener decides for every connection, so a held poll adds no
 * listener of its own (Node calls it only when neither the request nor the
 * response has a `timeout` listener, and then destroys nothing by itself).
 */
export function destroyStalledWriters(server: Server, writeTimeoutMs: number): void {
  server.timeout = writeTimeoutMs;
  server.on("timeout", cutUnlessWaiting);
  decides.add(server);
}

/** Servers whose `timeout` listener is cutUnlessWaiting: pollchat's own. */
const decides = new WeakSet<object>();

function cutUnlessWaiting(socket: Socket): void {
  if (socket.writableLength > 0 || !isWaitedOn(socket)) socket.destroy();
}

/**
 * For a held poll or an SSE stream: nothing to do on pollchat's own server
 * (cutUnlessWaiting decides). Mounted in a host's server (`chat.handle`), whose
 * `timeout` the host sets and with no listener of ours, Node would destroy the
 * quiet connection at that timeout: a listener on the response keeps it, and
 * cuts only output its client does not take.
 */
export function idleIsFine(res: ServerResponse): void {
  // net.Server sets `server` on every socket it accepts.
  const server = (res.socket as (Socket & { server?: object }) | null)?.server;
  if (server !== undefined && decides.has(server)) return;
  res.on("timeout", cutIfStalled);
}

function cutIfStalled(this: ServerResponse, socket: Socket): void {
  if (socket.writableLength > 0) socket.destroy();
}
