import { checkName, parseCursor, parseTimeout } from "../validate.js";
import { tokenOf } from "./auth.js";
import type { HttpContext, Request } from "./context.js";
import { longPoll } from "./long-poll.js";
import { sendJson, sendText, wantsJson } from "./respond.js";

/**
 * The seed protocol on `/` (spec §3): `?name=N&message=M` posts,
 * `?name=N` long-polls. Unclaimed names need no token, like the seed.
 */
export function handleSeed(ctx: HttpContext, { req, res, query }: Request): void | Promise<void> {
  const name = checkName(query.get("name"));
  const message = query.get("message");
  const room = query.get("room");
  const json = wantsJson(req.headers.accept, query.get("format"));
  // Refused input must not register the name as a side effect: check what can be checked first.
  if (message !== undefined) ctx.hub.checkPost({ text: message, room, txn: query.get("txn") });
  const cursor = parseCursor(query.get("cursor"));
  const timeoutMs = parseTimeout(query.get("timeout"), ctx.options.pollTimeoutMs, ctx.options.maxPollTimeoutMs);
  const client = ctx.hub.clientForName(name, { token: tokenOf(req), room, requireToken: ctx.options.requireToken });
  ctx.hub.touch(client);

  if (message !== undefined) {
    const id = ctx.hub.post(client, { text: message, room, txn: query.get("txn"), autoJoin: true });
    const answer = (): void => {
      if (json) sendJson(res, 200, { id });
      else sendText(res, 200, `ok ${id}\n`);
    };
    // With --data-dir, "ok <id>" waits until the message's batch is on disk (group commit).
    return ctx.durable === undefined ? answer() : ctx.durable().then(answer);
  }

  longPoll(ctx.hub, ctx.held, res, { client, cursor, timeoutMs, format: json ? "json" : "text" });
}
