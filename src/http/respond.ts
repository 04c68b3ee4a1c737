import type { ServerResponse } from "node:http";
import type { ChatError } from "../errors.js";

type Headers = Record<string, string | number | string[]>;

/** Writes a whole answer in one go. Dynamic answers are never cached (spec §8). */
export function send(res: ServerResponse, status: number, contentType: string, body: string, headers?: Headers): void {
  if (res.headersSent || res.destroyed) return;
  // A flat name, value list, which writeHead takes as is: no object is built and spread per answer.
  const list: (string | number | string[])[] = ["Content-Type", contentType, "Content-Length", Buffer.byteLength(body), "Cache-Control", "no-store"];
  if (headers !== undefined) for (const name of Object.keys(headers)) list.push(name, headers[name]!);
  res.writeHead(status, list);
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers?: Headers): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(value), headers);
}

export function sendText(res: ServerResponse, status: number, text: string, headers?: Headers): void {
  send(res, status, "text/plain; charset=utf-8", text, headers);
}

/** The one place an error becomes a response: JSON for the API, a text line for the seed's clients. */
export function sendError(res: ServerResponse, error: ChatError, asJson: boolean): void {
  const headers: Headers = { ...error.headers };
  if (error.retryAfter !== undefined) headers["Retry-After"] = String(error.retryAfter);
  // A body we refused to read must not be parsed as the next request.
  if (error.code === "body_too_large") headers["Connection"] = "close";
  if (asJson) sendJson(res, error.status, error.toJSON(), headers);
  else sendText(res, error.status, `error ${error.code}: ${error.message}\n`, headers);
}

/** A client asking for JSON by header or by format=json. */
export function wantsJson(accept: string | undefined, format: string | undefined): boolean {
  return format === "json" || (accept !== undefined && /\bapplication\/json\b/i.test(accept));
}
