import { randomBytes } from "node:crypto";
import type { Session } from "../session.js";
import { MAX_BODY_BYTES } from "../config.js";
import { ChatError } from "../errors.js";
import { DEFAULT_ROOM } from "../hub.js";
import { joinedMembers } from "../room.js";
import { sameToken } from "../same-token.js";
import { checkName, checkRoom, checkText, checkTxn, parseCursor, parseTimeout } from "../validate.js";
import { cameOverTls, clearedTokenCookie, changeToken, tokenCookie, tokenForChange, tokenOf } from "../http/auth.js";
import { optionalString, readJsonObject, requiredString } from "../http/body.js";
import { clientAddress } from "../http/client-address.js";
import type { HttpContext, Request } from "../http/context.js";
import { longPoll } from "../http/long-poll.js";
import { sendJson, sendText, wantsJson } from "../http/respond.js";
import { provenSeed, seedClaim, vouchedJoin, type JoinCommand } from "./cluster-vouched.js";
import type { Replica } from "./replica.js";
import { checkRate, confirmRefusal, joinRefusal, seedRefusal, sessionOfToken, txnRefusal, type PreCheckContext } from "./pre-checks.js";

/*
 * The requests that change something, with --redis (spec §10): each is checked
 * for what needs no state (names, text, txn keys), appended to the shared log as
 * a command, and answered with the outcome its entry had here, once applied.
 * What this replica can already tell is refused is refused before any append
 * (pre-checks.ts: a token nobody has, a post past the rate limit).
 * Reads are served by this replica, after it caught up with the log when the
 * request presents something it does not know yet (a token, a cursor).
 * The handlers of http/ do the same in one process; routes.ts picks these with a replica.
 */

const asSession = (outcome: unknown): Session => outcome as Session;
const asId = (outcome: unknown): number => outcome as number;

export async function join(ctx: HttpContext, replica: Replica, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  // With --jwt-secret or authenticate the request proves here what it may do, before anything is appended (cluster-vouched.ts).
  const command = ctx.identity ? await vouchedJoin(ctx, ctx.identity, replica, req, body) : joinByName(ctx, req, body);
  // A flood of joins under fresh names past the session caps appends nothing (pre-checks.ts).
  if (command.t === "join") await confirmRefusal(replica, () => joinRefusal(preChecks(ctx, replica), command.n, command.a));
  const answer = await replica.submit(command, (outcome) => {
    const client = asSession(outcome);
    // Only a session made without a token (none is, with an identity source) has none to hand out.
    if (client.token === undefined) throw new ChatError("name_taken", `${client.name} is taken.`);
    ctx.hub.markPresent(client);
    const room = command.r ?? client.currentRoom;
    // As in one process (json-api.ts): the first page of members, `next` while more follow.
    return { token: client.token, name: client.name, room, cursor: client.queue.since, ...joinedMembers(ctx.hub.room(room)) };
  });
  // Signed with the position of the entry that made the session: proof the log had it (token-marks.ts).
  const token = replica.tokens.sign(answer.token);
  sendJson(res, 200, { ...answer, token }, { "Set-Cookie": tokenCookie(token, cameOverTls(req, ctx.options.trustProxy)) });
}

function joinByName(ctx: HttpContext, req: Request["req"], body: Record<string, unknown>): JoinCommand {
  const name = checkName(requiredString(body, "name"));
  const room = checkRoom(optionalString(body, "room") ?? DEFAULT_ROOM);
  const own = changeToken(req);
  const command = { t: "join", n: name, r: room, k: randomBytes(24).toString("base64url"), a: clientAddress(req, ctx.options.trustProxy) } as const;
  return own === undefined ? command : { ...command, o: own };
}

export async function postMessage(ctx: HttpContext, replica: Replica, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  const token = requireToken(tokenForChange(req));
  const text = checkText(requiredString(body, "text"), ctx.options.maxMessage);
  const room = optionalString(body, "room");
  const to = optionalString(body, "to");
  const txn = checkTxn(optionalString(body, "txn"));
  const command = {
    t: "post",
    k: token,
    x: text,
    ...(room !== undefined && { r: room }),
    ...(to !== undefined && { to: checkName(to) }),
    ...(txn !== undefined && { i: txn }),
  } as const;
  const checks = preChecks(ctx, replica);
  const client = await sessionOfToken(checks, token);
  await checkRate(checks, () => (client.ended ? undefined : client), txn, false);
  await confirmRefusal(replica, () => (client.ended ? undefined : txnRefusal(checks, client.name, client, undefined, txn)));
  const id = await replica.submit(command, asId);
  seenByToken(ctx, token);
  sendJson(res, 201, { id });
}

export async function leave(ctx: HttpContext, replica: Replica, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  const token = requireToken(tokenForChange(req));
  const room = optionalString(body, "room");
  await sessionOfToken(preChecks(ctx, replica), token);
  if (room !== undefined) {
    const rooms = await replica.submit({ t: "leave", k: token, r: checkRoom(room) }, (outcome) => [...asSession(outcome).rooms]);
    sendJson(res, 200, { ok: true, rooms });
    return;
  }
  await replica.submit({ t: "leave", k: token }, () => undefined);
  sendJson(res, 200, { ok: true, rooms: [] }, { "Set-Cookie": clearedTokenCookie(cameOverTls(req, ctx.options.trustProxy)) });
}

/** A poll or a stream: served here once this replica knows the token's session and has delivered up to the cursor. */
export async function caughtUpFor(ctx: HttpContext, replica: Replica, { req, query }: Request): Promise<void> {
  const cursor = lenientCursor(req.headers["last-event-id"]) ?? lenientCursor(query.get("cursor"));
  const token = tokenOf(req);
  // The newest mark the client got (README, the JSON API): proof of a position the log must still have.
  await replica.marks.check(query.get("mark"));
  // A JWT (it has dots, a session token none) is judged by the handler: caught up first only if its cursor is past this replica.
  if (ctx.identity !== undefined && (token === undefined || token.includes("."))) {
    if (cursor !== undefined && cursor > ctx.hub.deliveredUpTo) await replica.catchUp();
    return;
  }
  if (token === undefined) return;
  const client = ctx.hub.sessionByToken(token);
  if (client === undefined || behind(ctx, client, cursor)) await replica.catchUp();
  // Still unknown: a token the cluster signed past what the log has proves the log lost its end (token-marks.ts).
  if (client === undefined && ctx.hub.sessionByToken(token) === undefined) replica.tokens.unknown(token);
}

/** A cursor past what this replica could have told the client (cursors.ts: its queue's start, or what was delivered) was told by a replica further on. */
function behind(ctx: HttpContext, client: Session, cursor: number | undefined): boolean {
  return cursor !== undefined && cursor > Math.max(ctx.hub.deliveredUpTo, client.queue.since);
}

/** The seed endpoint (spec §3) with --redis: a post is a command; a poll is one too when it makes the session or joins a room. */
export async function seed(ctx: HttpContext, replica: Replica, { req, res, query }: Request): Promise<void> {
  const message = query.get("message");
  const room = query.get("room");
  // With --jwt-secret or authenticate, a name without its session token is proven here, before any append (cluster-vouched.ts).
  const vouched = ctx.identity && (await provenSeed(ctx, ctx.identity, replica, req, query.get("name") ?? "", message !== undefined || room !== undefined));
  const name = checkName(query.get("name"));
  const json = wantsJson(req.headers.accept, query.get("format"));
  const cursor = parseCursor(query.get("cursor"));
  const timeoutMs = parseTimeout(query.get("timeout"), ctx.options.pollTimeoutMs, ctx.options.maxPollTimeoutMs);
  const token = message !== undefined || room !== undefined ? changeToken(req) : tokenOf(req);
  const who = {
    n: name,
    ...(room !== undefined && { r: checkRoom(room) }),
    ...(token !== undefined && { k: token }),
    ...((ctx.options.requireToken || ctx.identity !== undefined) && { rq: 1 as const }),
    a: clientAddress(req, ctx.options.trustProxy),
    ...seedClaim(vouched),
  };
  const checks = preChecks(ctx, replica);
  if (message !== undefined) {
    const txn = checkTxn(query.get("txn"));
    const text = checkText(message, ctx.options.maxMessage);
    await confirmRefusal(replica, () => seedRefusal(checks, who, { txn }));
    await checkRate(checks, () => ctx.hub.session(name), txn, true);
    await confirmRefusal(replica, () => txnRefusal(checks, name, ctx.hub.session(name), who.a, txn));
    const id = await replica.submit({ t: "seed", ...who, x: text, ...(txn !== undefined && { i: txn }) }, asId);
    if (json) sendJson(res, 200, { id });
    else sendText(res, 200, `ok ${id}\n`);
    return;
  }
  await replica.marks.check(query.get("mark")); // as a JSON poll's (caughtUpFor)
  let client = ready(ctx.hub.session(name), token, who.r, vouched !== undefined);
  if (client === undefined) {
    await confirmRefusal(replica, () => seedRefusal(checks, who));
    client = await replica.submit({ t: "seed", ...who }, asSession);
  }
  if (behind(ctx, client, cursor)) await replica.catchUp();
  ctx.hub.markPresent(client);
  longPoll(ctx.hub, ctx.openPolls, res, { client, cursor, timeoutMs, format: json ? "json" : "text", mark: ctx.pollMark });
}

/** A name's session that a poll may read at once: the token fits (or the name is proven), and the poll joins no room it is not in (else: a command). */
function ready(client: Session | undefined, token: string | undefined, room: string | undefined, proven: boolean): Session | undefined {
  if (!client || client.ended) return undefined;
  if (!proven && client.token !== undefined && !sameToken(client.token, token)) return undefined;
  if (room !== undefined && (!client.rooms.has(room) || client.currentRoom !== room)) return undefined;
  return client;
}

function preChecks(ctx: HttpContext, replica: Replica): PreCheckContext {
  return { hub: ctx.hub, replica, rate: ctx.options.rate };
}

function requireToken(token: string | undefined): string {
  if (token === undefined) throw new ChatError("unauthorized");
  return token;
}

function seenByToken(ctx: HttpContext, token: string): void {
  const client = ctx.hub.sessionByToken(token);
  if (client) ctx.hub.markPresent(client);
}

function lenientCursor(value: string | string[] | undefined): number | undefined {
  if (typeof value !== "string") return undefined;
  try {
    return parseCursor(value.trim() || undefined);
  } catch {
    return undefined;
  }
}
