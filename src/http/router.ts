import type { IncomingMessage, ServerResponse } from "node:http";
import { ChatError } from "../errors.js";
import { errorText } from "../log.js";
import { routeLabel, watchRequest } from "../ops/chat-metrics.js";
import { METRICS_CONTENT_TYPE } from "../ops/metrics.js";
import type { HttpContext, Request } from "./context.js";
import { apiHandler } from "./json-api.js";
import { MAX_WAITING_PER_CONNECTION, takeTurn } from "./pipelining.js";
import { originForm, splitTarget } from "./query.js";
import { send, sendError, sendText, wantsJson } from "./respond.js";
import { handleSeed } from "./seed-endpoint.js";
import { headSeed } from "./seed-head.js";
import { serveStatic } from "./static-files.js";

/**
 * Turns a request into a handler call: `/` with a name is the seed protocol,
 * `/api/*` the JSON API, `/healthz`, anything else a file of the page.
 * Handlers throw ChatError; this is the one place it becomes an answer.
 */
export function createRequestHandler(ctx: HttpContext): (req: IncomingMessage, res: ServerResponse) => void {
  return function route(req, res) {
    // A pipelined request is handled once its answer can be written (at the head of its connection), not before.
    const turn = takeTurn(req, res, route);
    if (turn === "waiting" || turn === "drop") return;
    let isApi = false;
    let json = false;
    // A fixed label, never the raw path; "bad_target" until the target is understood.
    const watch = watchRequest(ctx.ops.metrics, res, "bad_target");
    const fail = (error: unknown): void => {
      if (!(error instanceof ChatError)) {
        // A client that closed mid-upload is not a server error: nothing to log or answer
        // (the request is counted with status "aborted" when its response closes).
        if (clientWentAway(req, res, error)) return void res.destroy();
        ctx.ops.log.error("error", { route: watch.route, error: errorText(error) });
        error = new ChatError("internal");
      }
      sendError(res, error as ChatError, isApi || json);
    };
    try {
      const method = req.method ?? "GET";
      // Known before the query is decoded, so a bad %-escape on /api is answered as JSON too.
      isApi = originForm(req.url).startsWith("/api/");
      // Whatever a refused request is answered (a bad target throws first), the connection ends after it.
      if (turn === "refuse") res.setHeader("Connection", "close");
      const target = splitTarget(req.url);
      const request: Request = { req, res, path: target.path, query: target.query };
      watch.route = routeLabel(target.path, target.query.has("name"), target.query.has("message"));
      if (turn === "refuse") {
        const message = `More than ${MAX_WAITING_PER_CONNECTION} requests wait on this connection; read the answers first.`;
        throw new ChatError("too_many_connections", message, { retryAfter: 1 });
      }
      if (ctx.ops.connections.refuses(req.socket)) {
        throw new ChatError("too_many_connections", undefined, { retryAfter: 1, headers: { Connection: "close" } });
      }
      if (ctx.ops.shutdown.closing) throw new ChatError("shutting_down", undefined, { retryAfter: 5, headers: { Connection: "close" } });
      if (ctx.options.corsOrigin !== undefined && cors(ctx.options.corsOrigin, req, res)) return;
      if (isApi) {
        const { handler, params } = apiHandler(target.path, method);
        const done = handler(ctx, request, params);
        if (done) done.catch(fail);
        return;
      }
      if (target.path === "/healthz") {
        if (method !== "GET" && method !== "HEAD") throw notAllowed("GET, HEAD");
        // 503 with the reason while posts cannot be accepted (spec §8): the log failed.
        const failure = ctx.storeFailure?.();
        if (failure !== undefined) sendText(res, 503, `unavailable: ${failure}\n`, { "Retry-After": "30" });
        else sendText(res, 200, "ok\n");
        return;
      }
      if (target.path === "/metrics") {
        if (method !== "GET" && method !== "HEAD") throw notAllowed("GET, HEAD");
        send(res, 200, METRICS_CONTENT_TYPE, ctx.ops.metrics.registry.render());
        return;
      }
      if (target.path === "/" && (target.query.has("name") || target.query.has("message"))) {
        json = wantsJson(req.headers.accept, target.query.get("format"));
        // HEAD reads like a GET with nothing changed; a HEAD that would post is refused.
        if (method === "HEAD" && !target.query.has("message")) return headSeed(ctx, request);
        if (method !== "GET") throw notAllowed(target.query.has("message") ? "GET" : "GET, HEAD");
        // A post with --data-dir answers once durable: a failed write becomes an answer here.
        handleSeed(ctx, request)?.catch(fail);
        return;
      }
      if (method !== "GET" && method !== "HEAD") throw notAllowed("GET, HEAD");
      serveStatic(ctx.options.publicDir, target.path, res, method === "HEAD").catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}

/** Errors of a connection the client closed or reset. */
const CONNECTION_LOST = new Set(["ECONNRESET", "EPIPE", "ERR_STREAM_PREMATURE_CLOSE"]);

/** The error says the connection was lost, and the request or its answer was indeed cut off. */
function clientWentAway(req: IncomingMessage, res: ServerResponse, error: unknown): boolean {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  return code !== undefined && CONNECTION_LOST.has(code) && (res.destroyed || !req.complete);
}

function notAllowed(allow: string): ChatError {
  return new ChatError("method_not_allowed", undefined, { headers: { Allow: allow } });
}

/** Adds CORS headers for the one allowed origin; answers a preflight and returns true. */
function cors(origin: string, req: IncomingMessage, res: ServerResponse): boolean {
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Access-Control-Allow-Credentials", "true");
  res.setHeader("Access-Control-Expose-Headers", "X-Cursor, Retry-After");
  res.setHeader("Vary", "Origin");
  if (req.method !== "OPTIONS") return false;
  res.writeHead(204, {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Last-Event-ID",
    "Access-Control-Max-Age": "600",
  });
  res.end();
  return true;
}
