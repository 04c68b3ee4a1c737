import { ChatError } from "../errors.js";
import { sameToken } from "../same-token.js";
import type { Session } from "../session.js";
import { checkName, checkRoom, parseCursor, parseTimeout } from "../validate.js";
import { changeToken, tokenOf } from "./auth.js";
import type { HttpContext, Request } from "./context.js";
import { answerBytes, answerHeaders, CONTENT_TYPES, type PollFormat } from "./poll-answer.js";
import { previewPoll } from "./poll-preview.js";
import { wantsJson } from "./respond.js";

/**
 * `HEAD /?name=N` (a seed poll, never a post): the status and headers a GET
 * with `timeout=0` would get now (Content-Type, Content-Length, Cache-Control,
 * and the X-Cursor of an answer cut at 1 MiB as the GET's is), without a body
 * and without acting. No session is made, no room joined, nothing acknowledged,
 * nothing held: a link checker or a monitoring probe must not register a name
 * or eat a message. So a name without a session gets the headers of an empty
 * answer (its GET would carry the join the GET itself makes).
 * Refusals are the GET's (400 for bad input, 401 for a claimed name).
 */
export function headSeed(ctx: HttpContext, { req, res, query }: Request): void | Promise<void> {
  const name = checkName(query.get("name"));
  const room = query.get("room");
  if (room !== undefined) checkRoom(room);
  const cursor = parseCursor(query.get("cursor"));
  parseTimeout(query.get("timeout"), 0, ctx.options.maxPollTimeoutMs);
  const format: PollFormat = wantsJson(req.headers.accept, query.get("format")) ? "json" : "text";
  const client = ctx.hub.session(name);
  // The token the GET would be judged by: with room= it would join, which the cookie alone may not do.
  const token = room !== undefined ? changeToken(req) : tokenOf(req);
  // With a JWT secret or authenticate an unknown name is refused too: a HEAD proves no name (it makes no session).
  const refused = client === undefined ? ctx.options.requireToken || ctx.identity !== undefined : client.token !== undefined && !sameToken(client.token, token);
  if (refused) throw new ChatError("unauthorized");
  const answer = (): void => answerHead(ctx, res, client, cursor, format);
  // With --redis the GET first catches up with a cursor another process told (cluster-http.ts): so does its HEAD.
  const behind = client !== undefined && cursor !== undefined && cursor > Math.max(ctx.hub.deliveredUpTo, client.queue.since);
  if (ctx.cluster !== undefined && behind) return ctx.cluster.catchUp().then(answer);
  answer();
}

type Response = Request["res"];

function answerHead(ctx: HttpContext, res: Response, client: Session | undefined, cursor: number | undefined, format: PollFormat): void {
  // Never an id issued but not yet delivered (held for its batch): a cursor past it would swallow it.
  const nothing = { entries: [], cursor: ctx.hub.deliveredUpTo };
  const { entries, cursor: next } = client === undefined ? nothing : previewPoll(ctx.hub, client, cursor, format);
  const mark = ctx.pollMark?.();
  res.writeHead(200, answerHeaders(CONTENT_TYPES[format], answerBytes(entries, format, next, mark), next, mark));
  res.end();
}
