import { ChatError } from "../errors.js";
import { sameToken } from "../same-token.js";
import { checkName, checkRoom, parseCursor, parseTimeout } from "../validate.js";
import { changeToken, tokenOf } from "./auth.js";
import type { HttpContext, Request } from "./context.js";
import { wantsJson } from "./respond.js";

/**
 * `HEAD /?name=N` (a seed poll, never a post): the status and headers a GET
 * with `timeout=0` would get now, without a body and without acting. No
 * session is made, no room joined, nothing acknowledged, nothing held: a
 * link checker or a monitoring probe must not register a name or eat a message.
 * Refusals are the GET's (400 for bad input, 401 for a claimed name).
 */
export function headSeed(ctx: HttpContext, { req, res, query }: Request): void {
  const name = checkName(query.get("name"));
  const room = query.get("room");
  if (room !== undefined) checkRoom(room);
  const cursor = parseCursor(query.get("cursor"));
  parseTimeout(query.get("timeout"), 0, ctx.options.maxPollTimeoutMs);
  const json = wantsJson(req.headers.accept, query.get("format"));
  const client = ctx.hub.session(name);
  // The token the GET would be judged by: with room= it would join, which the cookie alone may not do.
  const token = room !== undefined ? changeToken(req) : tokenOf(req);
  // With a JWT secret or authenticate an unknown name is refused too: a HEAD proves no name (it makes no session).
  const refused = client === undefined ? ctx.options.requireToken || ctx.identity !== undefined : client.token !== undefined && !sameToken(client.token, token);
  if (refused) throw new ChatError("unauthorized");
  // What the GET would answer now: the entries after the cursor (all, without one), read in place
  // (opened without the cursor: a HEAD acknowledges nothing).
  // Never an id issued but not yet delivered (held for its batch): a cursor past it would swallow it.
  const sub = client === undefined ? undefined : ctx.hub.open(client);
  const next = sub === undefined ? ctx.hub.deliveredUpTo : sub.cursorAfter(sub.pending(cursor ?? 0));
  res.writeHead(200, {
    "Content-Type": json ? "application/json; charset=utf-8" : "text/plain; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Cursor": String(next),
  });
  res.end();
}
