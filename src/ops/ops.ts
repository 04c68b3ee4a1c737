import type { Session } from "../session.js";
import type { Hub } from "../hub.js";
import type { Logger } from "../log.js";
import { createChatMetrics, type ChatMetrics, type GaugeSources } from "./chat-metrics.js";
import type { ConnectionLimit } from "./connection-limit.js";
import { Shutdown } from "./shutdown.js";

/** What operating a server needs, shared by its transports: metrics, the log, shutdown hooks, the per-address cap of HTTP connections. */
export interface Ops {
  readonly metrics: ChatMetrics;
  readonly log: Logger;
  readonly shutdown: Shutdown;
  readonly connections: ConnectionLimit;
}

export function createOps(
  hub: Hub,
  opts: { log: Logger; connections: ConnectionLimit } & Omit<GaugeSources, "httpConnections">,
): Ops {
  const { connections } = opts;
  const metrics = createChatMetrics(hub, { ...opts, httpConnections: () => connections.total });
  logHub(hub, opts.log);
  return { metrics, log: opts.log, shutdown: new Shutdown(), connections };
}

/** One line per join and leave (info), and per session start and end and per drop (debug). */
function logHub(hub: Hub, log: Logger): void {
  if (!log.enabled("info")) return;
  // Not told of drops at all below debug: one comes per message to every full queue.
  const debug = log.enabled("debug");
  hub.observe({
    record(record) {
      switch (record.kind) {
        case "join":
        case "leave":
          return log.info(record.kind, { name: record.session.name, room: record.room });
        case "session":
          if (debug) log.debug("session", { name: record.session.name, token: record.session.token !== undefined });
          return;
        case "end":
          if (debug) log.debug("session-end", { name: record.session.name, reason: record.reason });
          return;
      }
    },
    ...(debug && { dropped: (session: Session, reason: string, count: number) => log.debug("dropped", { name: session.name, reason, count }) }),
  });
}
