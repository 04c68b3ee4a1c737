import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Session } from "../session.js";
import { ChatError } from "../errors.js";
import { isJsonContentType } from "./body.js";
import type { HttpContext } from "./context.js";

export const TOKEN_COOKIE = "pollchat_token";

/**
 * The session token of a request that only reads (polls, streams):
 * `Authorization: Bearer T`, else the cookie. A malformed Authorization
 * header is no token (the cookie is not tried behind it).
 */
export function tokenOf(req: IncomingMessage): string | undefined {
  return req.headers.authorization !== undefined ? bearerToken(req) : cookieToken(req);
}

/**
 * The token that may authorise a state change (spec §4): the Authorization
 * header always; the cookie only on a request whose body is declared JSON.
 * A browser sends the cookie with any form or link from any page, but no form
 * can send `Content-Type: application/json` (and a link is a GET), so neither
 * can post, join or leave as the user.
 */
export function changeToken(req: IncomingMessage): string | undefined {
  if (req.headers.authorization !== undefined) return bearerToken(req);
  if (req.method === "GET" || req.method === "HEAD" || !isJsonContentType(req.headers["content-type"])) return undefined;
  return cookieToken(req);
}

/** The session a request's token names, for a request that only reads; 401 without one. */
export function sessionOf(ctx: HttpContext, req: IncomingMessage): Session {
  return session(ctx, tokenOf(req));
}

/**
 * The session a state-changing POST acts for (changeToken). With only the
 * cookie and a body not declared JSON (an empty one too) it is 415: the
 * request would be fine as JSON or with the token in Authorization.
 */
export function sessionForChange(ctx: HttpContext, req: IncomingMessage): Session {
  return session(ctx, tokenForChange(req));
}

/** The token of a state-changing POST (changeToken), or 415 for only the cookie on a body not declared JSON (sessionForChange). */
export function tokenForChange(req: IncomingMessage): string | undefined {
  const token = changeToken(req);
  if (token === undefined && req.headers.authorization === undefined && cookieToken(req) !== undefined) {
    throw new ChatError(
      "unsupported_media_type",
      "With only the cookie, a request that changes something must be Content-Type: application/json (or send Authorization: Bearer T).",
    );
  }
  return token;
}

function session(ctx: HttpContext, token: string | undefined): Session {
  const client = ctx.hub.sessionByToken(token);
  if (!client) throw new ChatError("unauthorized");
  ctx.hub.markPresent(client);
  return client;
}

function bearerToken(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+([A-Za-z0-9_-]{1,128})\s*$/i.exec(req.headers.authorization ?? "");
  return match ? match[1] : undefined;
}

function cookieToken(req: IncomingMessage): string | undefined {
  const cookies = req.headers.cookie;
  if (cookies === undefined) return undefined;
  for (const pair of cookies.split(";")) {
    const eq = pair.indexOf("=");
    if (eq > 0 && pair.slice(0, eq).trim() === TOKEN_COOKIE) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Whether the client reached us over TLS: our own socket is a TLS one (the
 * handler mounted in an https server), or, with --trust-proxy, the proxy says
 * so in X-Forwarded-Proto (its rightmost value: the one the proxy itself added).
 */
export function cameOverTls(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as Partial<TLSSocket>).encrypted === true) return true;
  if (!trustProxy) return false;
  const proto = req.headers["x-forwarded-proto"];
  return typeof proto === "string" && proto.split(",").at(-1)!.trim().toLowerCase() === "https";
}

/** Secure over TLS, so a browser never sends the token over plain HTTP. */
export function tokenCookie(token: string, secure: boolean): string {
  return `${TOKEN_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

export function clearedTokenCookie(secure: boolean): string {
  return `${TOKEN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}; Max-Age=0`;
}
