import type { Socket } from "node:net";

/**
 * What to release when a connection closes, kept per socket with one `close`
 * listener however many held polls (or SSE streams) wait on it. They watch their
 * socket, not their response: a response queued behind another on a pipelined
 * connection never emits `close` (Node 20, 22). One release (the usual case) is kept as is; a Set only
 * for a connection that pipelines; null once all are gone, so the listener,
 * already there, is not added again on a keep-alive connection.
 */
const watched = new WeakMap<Socket, (() => void) | Set<() => void> | null>();

export function releaseOnClose(socket: Socket, release: () => void): void {
  const current = watched.get(socket);
  if (current === undefined) {
    // on, not once: close comes once, and once would keep a wrapper per socket.
    socket.on("close", releaseAll);
    watched.set(socket, release);
  } else if (current === null) watched.set(socket, release);
  else if (typeof current === "function") watched.set(socket, new Set([current, release]));
  else current.add(release);
}

/** The poll ended otherwise (answered, timed out): its socket's close has nothing more to do for it. */
export function forgetOnClose(socket: Socket, release: () => void): void {
  const current = watched.get(socket);
  if (current === release) watched.set(socket, null);
  else if (current instanceof Set) current.delete(release);
}

function releaseAll(this: Socket): void {
  const current = watched.get(this);
  watched.delete(this);
  if (typeof current === "function") current();
  else if (current) for (const release of current) release();
}
