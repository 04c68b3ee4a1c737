import { checkName, parseCursor, parseTimeout } from "../validate.js";
import { changeToken, tokenOf } from "./auth.js";
import { clientAddress } from "./client-address.js";
import type { HttpContext, Request } from "./context.js";
import { longPoll } from "./long-poll.js";
import { sendJson, sendText, wantsJson } from "./respond.js";
import { seedIdentity } from "./vouched.js";
import type { Identity } from "../hub-types.js";

/**
 * The seed protocol on `/` (spec §3): `?name=N&message=M` posts,
 * `?name=N` long-polls. Unclaimed names need no token, like the seed.
 */
export function handleSeed(ctx: HttpContext, request: Request): void | Promise<void> {
  if (ctx.identity === undefined) return seed(ctx, request, undefined);
  // With --jwt-secret or authenticate, a name without its session token must be proven (vouched.ts).
  const { req, query } = request;
  const changes = query.get("message") !== undefined || query.get("room") !== undefined;
  return seedIdentity(ctx.identity, ctx, req, query.get("name") ?? "", changes).then((identity) => seed(ctx, request, identity));
}

function seed(ctx: HttpContext, { req, res, query }: Request, identity: Identity | undefined): void | Promise<void> {
  const name = checkName(query.get("name"));
  const message = query.get("message");
  const room = query.get("room");
  const json = wantsJson(req.headers.accept, query.get("format"));
  const cursor = parseCursor(query.get("cursor"));
  const timeoutMs = parseTimeout(query.get("timeout"), ctx.options.pollTimeoutMs, ctx.options.maxPollTimeoutMs);
  // A GET that posts or joins is a state change: the cookie alone may not authorise it (spec §4).
  const token = message !== undefined || room !== undefined ? changeToken(req) : tokenOf(req);
  const requireToken = ctx.options.requireToken || ctx.identity !== undefined;
  // Only a new session is counted against its address: a name already in use needs none (addressKey is a regex or two).
  const address = ctx.hub.session(name) === undefined ? clientAddress(req, ctx.options.trustProxy) : undefined;

  if (message !== undefined) {
    const who = { token, requireToken, address, identity };
    // One call that checks everything first: a refused post leaves no session, membership or message behind (§8).
    const id = ctx.hub.postAs(name, { text: message, room, txn: query.get("txn") }, who);
    const answer = (): void => {
      if (json) sendJson(res, 200, { id });
      else sendText(res, 200, `ok ${id}\n`);
    };
    // With --data-dir, "ok <id>" waits until the message's batch is on disk (group commit).
    return ctx.durable === undefined ? answer() : ctx.durable().then(answer);
  }

  // A poll's room= is checked (caps, join budget) before a new name gets its session.
  const issued = ctx.hub.lastId;
  const client = ctx.hub.sessionForName(name, { token, requireToken, address, identity, room });
  ctx.hub.markPresent(client);
  const poll = { client, cursor, timeoutMs, format: json ? ("json" as const) : ("text" as const), mark: ctx.pollMark };
  // With --data-dir, what this request made (a session, a join notice) reaches the queue once durable: the poll starts after.
  if (ctx.durable !== undefined && ctx.hub.lastId !== issued) {
    const start = (): void => longPoll(ctx.hub, ctx.openPolls, res, poll);
    return ctx.durable().then(start, start);
  }
  longPoll(ctx.hub, ctx.openPolls, res, poll);
}
