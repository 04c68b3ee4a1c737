import type { IncomingMessage } from "node:http";
import type { Client } from "../client.js";
import { ChatError } from "../errors.js";
import type { HttpContext } from "./context.js";

export const TOKEN_COOKIE = "pollchat_token";

/** The session token of a request: `Authorization: Bearer T`, else the cookie. */
export function tokenOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const match = /^Bearer\s+([A-Za-z0-9_-]{1,128})\s*$/i.exec(auth);
    return match ? match[1] : undefined;
  }
  const cookies = req.headers.cookie;
  if (cookies === undefined) return undefined;
  for (const pair of cookies.split(";")) {
    const eq = pair.indexOf("=");
    if (eq > 0 && pair.slice(0, eq).trim() === TOKEN_COOKIE) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

export function tokenCookie(token: string): string {
  return `${TOKEN_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}

export function clearedTokenCookie(): string {
  return `${TOKEN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}

/** The session a request's token names, or 401. */
export function sessionOf(ctx: HttpContext, req: IncomingMessage): Client {
  const client = ctx.hub.clientByToken(tokenOf(req));
  if (!client) throw new ChatError("unauthorized");
  ctx.hub.touch(client);
  return client;
}
