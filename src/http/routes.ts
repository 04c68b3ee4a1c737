import { ChatError } from "../errors.js";
import type { HttpContext, Request } from "./context.js";
import { join, leave, listRooms, poll, postMessage, roomHistory, showRoom } from "./json-api.js";
import { healthz, metrics } from "./ops-endpoints.js";
import type { Query } from "./query.js";
import { handleSeed } from "./seed-endpoint.js";
import { headSeed } from "./seed-head.js";
import { handleEvents } from "./sse.js";
import { serveClientScript, serveStatic } from "./static-files.js";
import * as clustered from "../cluster/cluster-http.js";
import type { Replica } from "../cluster/replica.js";

/** Answers a request: it throws ChatError, or returns a promise that rejects with one. `params` are the path's decoded captures. */
export type Handler = (ctx: HttpContext, request: Request, params: readonly string[]) => void | Promise<void>;

export interface Route {
  /** The `route` label of pollchat_http_requests_total: fixed, never the raw path, so its values stay few. */
  readonly label: string;
  /** This exact path, or a pattern whose captures become the handler's params. */
  readonly path: string | RegExp;
  /** Only requests whose query passes this (the seed protocol shares `/` with the page). */
  readonly when?: (query: Query) => boolean;
  /** The handler for each method; any other method is answered 405 with `allow`. */
  readonly methods: ReadonlyMap<string, Handler>;
  /** The Allow header of a 405. */
  readonly allow: string;
  /** Errors are answered as JSON when the request asks for it (Accept, ?format=json); /api always answers JSON. */
  readonly negotiatesJson: boolean;
}

function route(label: string, path: string | RegExp, methods: Record<string, Handler>, extra?: Pick<Route, "when" | "negotiatesJson">): Route {
  const table = new Map(Object.entries(methods));
  return { label, path, methods: table, allow: [...table.keys()].join(", "), negotiatesJson: false, ...extra };
}

/** With --redis (ctx.cluster) a request that changes something goes through the shared log: `inCluster` answers it. */
function orCluster(local: Handler, inCluster: (ctx: HttpContext, replica: Replica, request: Request) => Promise<void>): Handler {
  return (ctx, request, params) => (ctx.cluster === undefined ? local(ctx, request, params) : inCluster(ctx, ctx.cluster, request));
}

/** With --redis a read is served here once this replica caught up with what the request presents (a token, a cursor). */
function caughtUp(local: Handler): Handler {
  return (ctx, request, params) =>
    ctx.cluster === undefined ? local(ctx, request, params) : clustered.caughtUpFor(ctx, ctx.cluster, request).then(() => local(ctx, request, params));
}

const serveFile: Handler = (ctx, { req, res, path }) => serveStatic(ctx.options.publicDir, path, res, req.method === "HEAD");
const serveClient: Handler = (_ctx, { req, res }) => serveClientScript(res, req.method === "HEAD");

/**
 * Every route of the server, first match wins: the seed protocol (spec §3),
 * the JSON API (spec §4), health and metrics, and the page's files. A path
 * under /api/ that no entry matches is "not_found".
 */
export const ROUTES: readonly Route[] = [
  route("seed_post", "/", { GET: orCluster(handleSeed, clustered.seed) }, { when: (q) => q.has("message"), negotiatesJson: true }),
  // HEAD reads like a GET with nothing changed; a HEAD that would post is refused (above: GET only).
  route("seed_poll", "/", { GET: orCluster(handleSeed, clustered.seed), HEAD: headSeed }, { when: (q) => q.has("name"), negotiatesJson: true }),
  route("api_join", "/api/join", { POST: orCluster(join, clustered.join) }),
  route("api_messages", "/api/messages", { POST: orCluster(postMessage, clustered.postMessage) }),
  route("api_poll", "/api/poll", { GET: caughtUp(poll) }),
  route("api_events", "/api/events", { GET: caughtUp(handleEvents) }),
  route("api_leave", "/api/leave", { POST: orCluster(leave, clustered.leave) }),
  route("api_rooms", "/api/rooms", { GET: listRooms }),
  route("api_room", /^\/api\/rooms\/([^/]+)$/, { GET: showRoom }),
  route("api_room_messages", /^\/api\/rooms\/([^/]+)\/messages$/, { GET: roomHistory }),
  route("healthz", "/healthz", { GET: healthz, HEAD: healthz }),
  route("metrics", "/metrics", { GET: metrics, HEAD: metrics }),
  route("client", "/client.js", { GET: serveClient, HEAD: serveClient }),
  route("static", /^(?!\/api\/)/, { GET: serveFile, HEAD: serveFile }),
];

/** The label of a request no route matches. */
export const NOT_FOUND_LABEL = "not_found";

const NO_PARAMS: readonly string[] = [];

/** The route of a path and query, with the path's raw captures; undefined when none matches (404). */
export function findRoute(path: string, query: Query): { route: Route; captures: readonly string[] } | undefined {
  for (const route of ROUTES) {
    let captures = NO_PARAMS;
    if (typeof route.path === "string") {
      if (route.path !== path) continue;
    } else {
      const match = route.path.exec(path);
      if (!match) continue;
      if (match.length > 1) captures = match.slice(1);
    }
    if (route.when === undefined || route.when(query)) return { route, captures };
  }
  return undefined;
}

/** Decodes a path capture for the handler. */
export function decodeParam(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ChatError("bad_encoding");
  }
}
