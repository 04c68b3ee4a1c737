import type { IncomingMessage, ServerResponse } from "node:http";
import { ChatError } from "../errors.js";
import { errorText } from "../log.js";
import { watchRequest } from "../ops/chat-metrics.js";
import type { HttpContext, Request } from "./context.js";
import { MAX_WAITING_PER_CONNECTION, takeTurn } from "./pipelining.js";
import { originForm, splitTarget } from "./query.js";
import { sendError, wantsJson } from "./respond.js";
import { decodeParam, findRoute, NOT_FOUND_LABEL } from "./routes.js";

/**
 * Turns a request into a handler call through the route table (routes.ts),
 * after the gates every request passes: the connection cap, shutdown, CORS.
 * Handlers throw ChatError; this is the one place it becomes an answer.
 */
export function createRequestHandler(ctx: HttpContext): (req: IncomingMessage, res: ServerResponse) => void {
  return function route(req, res) {
    // A pipelined request is handled once its answer can be written (at the head of its connection), not before,
    // and never once its connection is gone.
    const turn = takeTurn(req, res, route);
    if (turn === "waiting" || turn === "drop" || turn === "gone") return;
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
      const found = findRoute(target.path, target.query);
      watch.route = found === undefined ? NOT_FOUND_LABEL : found.route.label;
      if (turn === "refuse") {
        const message = `More than ${MAX_WAITING_PER_CONNECTION} requests wait on this connection; read the answers first.`;
        throw new ChatError("too_many_connections", message, { retryAfter: 1 });
      }
      if (ctx.ops.connections.refuses(req.socket)) {
        throw new ChatError("too_many_connections", undefined, { retryAfter: 1, headers: { Connection: "close" } });
      }
      if (ctx.ops.shutdown.closing) throw new ChatError("shutting_down", undefined, { retryAfter: 5, headers: { Connection: "close" } });
      if (ctx.options.corsOrigin !== undefined && cors(ctx.options.corsOrigin, req, res)) return;
      if (found === undefined) throw new ChatError("not_found");
      const { route, captures } = found;
      if (route.negotiatesJson) json = wantsJson(req.headers.accept, target.query.get("format"));
      const handler = route.methods.get(method);
      if (handler === undefined) throw notAllowed(route.allow);
      // A post with --data-dir answers once durable: a failed write becomes an answer here.
      const done = handler(ctx, request, captures.length === 0 ? captures : captures.map(decodeParam));
      if (done) done.catch(fail);
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
  res.setHeader("Access-Control-Expose-Headers", "X-Cursor, Retry-After, X-Fate");
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
