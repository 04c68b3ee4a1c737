import type { Socket } from "node:net";

/** What waits on a connection (a held poll, an SSE stream): told once when the connection closes. */
export type SocketWatcher = (() => void) | { socketClosed(): void };

/**
 * What to release when a connection closes, kept on the socket itself with one
 * `close` listener however many held polls (or SSE streams) wait on it. They watch their
 * socket, not their response: a response queued behind another on a pipelined
 * connection never emits `close` (Node 20, 22). One watcher (the usual case) is kept as is; a Set only
 * for a connection that pipelines; null once all are gone, so the listener,
 * already there, is not added again on a keep-alive connection.
 * A property, not a WeakMap: every held poll sets and clears it, and a property costs no hash lookup (issue 14).
 */
const WATCHED = Symbol("pollchat.watched");
type WatchedSocket = Socket & { [WATCHED]?: SocketWatcher | Set<SocketWatcher> | null };

export function releaseOnClose(socket: Socket, watcher: SocketWatcher): void {
  const s = socket as WatchedSocket;
  const current = s[WATCHED];
  if (current === undefined) {
    // on, not once: close comes once, and once would keep a wrapper per socket.
    socket.on("close", releaseAll);
    s[WATCHED] = watcher;
  } else if (current === null) s[WATCHED] = watcher;
  else if (current instanceof Set) current.add(watcher);
  else s[WATCHED] = new Set([current, watcher]);
}

/** The poll ended otherwise (answered, timed out): its socket's close has nothing more to do for it. */
export function forgetOnClose(socket: Socket, watcher: SocketWatcher): void {
  const s = socket as WatchedSocket;
  const current = s[WATCHED];
  if (current === watcher) s[WATCHED] = null;
  else if (current instanceof Set) current.delete(watcher);
}

function releaseAll(this: WatchedSocket): void {
  const current = this[WATCHED];
  // Gone for good: a closed socket is never watched again (undefined would add the listener anew).
  this[WATCHED] = null;
  if (current instanceof Set) for (const watcher of current) tell(watcher);
  else if (current) tell(current);
}

function tell(watcher: SocketWatcher): void {
  if (typeof watcher === "function") watcher();
  else watcher.socketClosed();
}
