import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Hub } from "../hub.js";
import { Metrics, type Counter, type Histogram } from "./metrics.js";

/** Poll durations in seconds: most answers are instant or end on the 4.5 s timer. */
const POLL_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 4.5, 5, 10, 30];

/** The counts a pollchat server exposes on /metrics, already registered. */
export interface ChatMetrics {
  readonly registry: Metrics;
  readonly messages: Counter;
  readonly deliveries: Counter;
  readonly dropped: Counter;
  readonly requests: Counter;
  readonly pollDuration: Histogram;
}

/** Where the gauges read from, at scrape time. */
export interface GaugeSources {
  openPolls: () => number;
  sseStreams: () => number;
  tcpConnections: () => number;
  httpConnections: () => number;
}

/**
 * Registers pollchat's metrics and counts what the hub emits. Per message the
 * cost is O(1): the hub says how many queues it reached, nothing walks clients.
 */
export function createChatMetrics(hub: Hub, sources: GaugeSources): ChatMetrics {
  const registry = new Metrics();
  registry.gauge("pollchat_sessions", "Sessions now open (any transport).", () => hub.sessionCount);
  registry.gauge("pollchat_open_polls", "Long-polls now held open.", sources.openPolls);
  registry.gauge("pollchat_sse_streams", "Server-Sent Events streams now open.", sources.sseStreams);
  registry.gauge("pollchat_tcp_connections", "TCP gateway connections now open.", sources.tcpConnections);
  registry.gauge("pollchat_http_connections", "HTTP connections now open on this server.", sources.httpConnections);
  const messages = registry.counter("pollchat_messages_total", "Messages accepted (chat, private, presence, system answers).");
  const deliveries = registry.counter("pollchat_deliveries_total", "Messages put on a client's queue: one per recipient of each message.");
  const dropped = registry.counter("pollchat_dropped_total", "Queued messages a client lost, by reason (queue_full: past --max-queue or the queued bytes' caps).", ["reason"]);
  const requests = registry.counter("pollchat_http_requests_total", "HTTP requests answered, by route and status (aborted: the client left first).", ["route", "status"]);
  const pollDuration = registry.histogram("pollchat_poll_duration_seconds", "How long long-polls were held before their answer.", POLL_BUCKETS);

  hub.observe({
    record(record) {
      if (record.kind !== "message") return;
      messages.inc();
      deliveries.inc({}, record.recipients.length);
    },
    dropped: (_session, reason, count) => dropped.inc({ reason }, count),
  });
  return { registry, messages, deliveries, dropped, requests, pollDuration };
}

/** Routes whose time to answer is a poll's hold time. */
export function isPollRoute(route: string): boolean {
  return route === "seed_poll" || route === "api_poll";
}

/** What a watched request is counted under: set `route` once the request is understood. */
export interface RequestWatch {
  route: string;
  readonly started: number;
  readonly metrics: ChatMetrics;
}

/** Where a response carries its watch: one property, so counting it needs no closure per request. */
const WATCH = Symbol("pollchat.watch");
type WatchedResponse = ServerResponse & { [WATCH]?: RequestWatch };

/**
 * Counts a request by route and status when its answer is done, and a poll's hold time.
 * The label is read from the returned object then. The response keeps this one small
 * object and a listener shared by every response (not a closure per request).
 */
export function watchRequest(metrics: ChatMetrics, res: ServerResponse, route: string): RequestWatch {
  const watch: RequestWatch = { route, started: performance.now(), metrics };
  (res as WatchedResponse)[WATCH] = watch;
  // "close" comes once per response; on() spares the once-wrapper a held poll would keep.
  res.on("close", countAnswer);
  return watch;
}

function countAnswer(this: WatchedResponse): void {
  const watch = this[WATCH];
  if (watch === undefined) return;
  const { route, metrics } = watch;
  const finished = this.writableFinished;
  metrics.requests.inc({ route, status: finished ? String(this.statusCode) : "aborted" });
  if (finished && this.statusCode === 200 && isPollRoute(route)) metrics.pollDuration.observe((performance.now() - watch.started) / 1000);
}
