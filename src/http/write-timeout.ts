import type { Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * A client that stops reading must not pin an answer forever (up to 1 MiB of
 * poll answer, 64 KiB of SSE output). A sweep looks at every connection of
 * pollchat's own server now and then: one whose output waits unsent and has not
 * moved (no byte taken by the kernel) for the write timeout is cut, so the cut
 * comes between the timeout and the timeout plus one sweep. Whatever the answer
 * carried was not handed over, so nothing is acknowledged. A held poll or an SSE
 * stream between heartbeats writes nothing and is never cut for its quiet.
 *
 * Not Node's idle timer (`server.timeout`): it re-arms a timer on every read,
 * write and request of every connection, a cost every poll paid for the rare
 * client that stops reading (issue 14). The sweep costs one pass over the open
 * connections per interval, and state only for a connection whose output waits.
 */
export function destroyStalledWriters(writeTimeoutMs: number, sockets: () => Iterable<Socket>): { stop(): void } {
  const every = Math.min(1000, Math.max(25, Math.floor(writeTimeoutMs / 4)));
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const socket of sockets()) cutIfStalled(socket as WatchedSocket, now, writeTimeoutMs);
  }, every).unref();
  return { stop: () => clearInterval(sweep) };
}

/** Since when a connection's waiting output has not moved, and how far the kernel had taken it then. */
interface Stall {
  since: number;
  taken: number;
}
const STALL = Symbol("pollchat.stall");
type WatchedSocket = Socket & {
  [STALL]?: Stall | undefined;
  /** Node's count of bytes handed to libuv, and libuv's of those not yet in the kernel (Node 20–26). */
  _bytesDispatched?: number;
  _handle?: { writeQueueSize?: number } | null;
};

function cutIfStalled(socket: WatchedSocket, now: number, writeTimeoutMs: number): void {
  // writableLength counts output until its write completes: zero means nothing waits.
  if (socket.writableLength === 0 || socket.destroyed) {
    if (socket[STALL] !== undefined) socket[STALL] = undefined;
    return;
  }
  const taken = (socket._bytesDispatched ?? 0) - (socket._handle?.writeQueueSize ?? 0);
  const stall = socket[STALL];
  if (stall === undefined || taken !== stall.taken) socket[STALL] = { since: now, taken };
  else if (now - stall.since >= writeTimeoutMs) socket.destroy();
}

/**
 * For a held poll or an SSE stream mounted in a host's server (`chat.handle`):
 * the host sets its `timeout`, and at it Node would destroy the quiet connection
 * (no listener of ours there). A listener on the response keeps it, and cuts
 * only output its client does not take. On pollchat's own server there is no
 * idle timer during a request (the sweep above decides): nothing to do.
 */
export function idleIsFine(res: ServerResponse): void {
  // net.Server sets `server` on every socket it accepts.
  const server = (res.socket as (Socket & { server?: Server }) | null)?.server;
  if (server === undefined || !(server.timeout > 0)) return;
  res.on("timeout", cutOnTimeout);
}

function cutOnTimeout(this: ServerResponse, socket: Socket): void {
  if (socket.writableLength > 0) socket.destroy();
}
