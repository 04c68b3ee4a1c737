import type { Client } from "../client.js";
import type { EndReason, Hub } from "../hub.js";
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
  hub.on("room-join", (client: Client, room: string) => log.info("join", { name: client.name, room }));
  hub.on("room-leave", (client: Client, room: string) => log.info("leave", { name: client.name, room }));
  // Not listened for at all below debug: "dropped" comes once per message to every full queue.
  if (!log.enabled("debug")) return;
  hub.on("session", (client: Client) => log.debug("session", { name: client.name, token: client.token !== undefined }));
  hub.on("session-end", (client: Client, reason: EndReason) => log.debug("session-end", { name: client.name, reason }));
  hub.on("dropped", (client: Client, reason: string, count: number) => log.debug("dropped", { name: client.name, reason, count }));
}
