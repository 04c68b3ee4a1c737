import type { Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * A client that stops reading must not pin an answer forever (up to 1 MiB of
 * poll answer, 64 KiB of SSE output). Node's idle timer of a connection
 * (`server.timeout`) runs from the last byte read or written and counts a big
 * write still draining into the kernel as progress: it fires only once the
 * connection's output has not moved for that long (Node checks progress on the
 * timer, so the cut comes within 1–2× the timeout). With no `timeout` listener
 * on the request, response or server, Node then destroys the socket. Whatever
 * the answer carried was not handed over, so nothing is acknowledged.
 */
export function destroyStalledWriters(server: Server, writeTimeoutMs: number): void {
  server.timeout = writeTimeoutMs;
}

/**
 * For a response that may wait idle longer than the timeout (a held poll, an
 * SSE stream between heartbeats): its idle connection is left alone, and cut
 * only when output waits unsent. One shared listener, no closure per response.
 */
export function idleIsFine(res: ServerResponse): void {
  res.on("timeout", cutIfStalled);
}

function cutIfStalled(this: ServerResponse, socket: Socket): void {
  if (socket.writableLength > 0) socket.destroy();
}
