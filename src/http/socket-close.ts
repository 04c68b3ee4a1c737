import type { Socket } from "node:net";

/** What waits on a connection (a held poll, an SSE stream): told once when the connection closes. */
export type SocketWatcher = (() => void) | { socketClosed(): void };

/**
 * What to release when a connection closes, kept per socket with one `close`
 * listener however many held polls (or SSE streams) wait on it. They watch their
 * socket, not their response: a response queued behind another on a pipelined
 * connection never emits `close` (Node 20, 22). One watcher (the usual case) is kept as is; a Set only
 * for a connection that pipelines; null once all are gone, so the listener,
 * already there, is not added again on a keep-alive connection.
 */
const watched = new WeakMap<Socket, SocketWatcher | Set<SocketWatcher> | null>();

export function releaseOnClose(socket: Socket, watcher: SocketWatcher): void {
  const current = watched.get(socket);
  if (current === undefined) {
    // on, not once: close comes once, and once would keep a wrapper per socket.
    socket.on("close", releaseAll);
    watched.set(socket, watcher);
  } else if (current === null) watched.set(socket, watcher);
  else if (current instanceof Set) current.add(watcher);
  else watched.set(socket, new Set([current, watcher]));
}

/** The poll ended otherwise (answered, timed out): its socket's close has nothing more to do for it. */
export function forgetOnClose(socket: Socket, watcher: SocketWatcher): void {
  const current = watched.get(socket);
  if (current === watcher) watched.set(socket, null);
  else if (current instanceof Set) current.delete(watcher);
}

/** Whether a held poll or a stream waits on this connection now (its quiet is then expected: write-timeout.ts). */
export function isWaitedOn(socket: Socket): boolean {
  const current = watched.get(socket);
  return current != null && !(current instanceof Set && current.size === 0);
}

function releaseAll(this: Socket): void {
  const current = watched.get(this);
  watched.delete(this);
  if (current instanceof Set) for (const watcher of current) tell(watcher);
  else if (current) tell(current);
}

function tell(watcher: SocketWatcher): void {
  if (typeof watcher === "function") watcher();
  else watcher.socketClosed();
}
