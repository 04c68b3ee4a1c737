import { MAX_BODY_BYTES } from "../config.js";
import { ChatError } from "../errors.js";
import { DEFAULT_ROOM } from "../hub.js";
import { checkName, checkRoom, parseCursor, parseTimeout } from "../validate.js";
import { cameOverTls, changeToken, clearedTokenCookie, sessionForChange, sessionOf, tokenCookie } from "./auth.js";
import { optionalString, readJsonObject, requiredString } from "./body.js";
import { clientAddress } from "./client-address.js";
import type { HttpContext, Request } from "./context.js";
import { longPoll } from "./long-poll.js";
import { sendJson } from "./respond.js";
import { joinVouched } from "./vouched.js";
import type { Session } from "../session.js";
import { joinedMembers, MAX_MEMBERS_PAGE, MEMBERS_PAGE } from "../room.js";

/* The JSON API of spec §4; http/routes.ts maps its paths and methods to these handlers. */

export async function join(ctx: HttpContext, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  // With --jwt-secret or authenticate, the host says whose session this is (vouched.ts).
  const { client, room } = ctx.identity ? await joinVouched(ctx, ctx.identity, req, body) : joinByName(ctx, req, body);
  ctx.hub.markPresent(client);
  // The first page of members, with `next` while more follow: an answer of bounded size (README, the JSON API).
  const members = joinedMembers(ctx.hub.room(room));
  // With --data-dir the token is on disk before it is handed out, so it survives a crash.
  await ctx.durable?.();
  sendJson(
    res,
    200,
    { token: client.token, name: client.name, room, cursor: ctx.hub.open(client).since, ...members },
    { "Set-Cookie": tokenCookie(client.token!, cameOverTls(req, ctx.options.trustProxy)) },
  );
}

function joinByName(ctx: HttpContext, req: Request["req"], body: Record<string, unknown>): { client: Session; room: string } {
  const name = checkName(requiredString(body, "name"));
  const room = checkRoom(optionalString(body, "room") ?? DEFAULT_ROOM);
  return { client: ctx.hub.joinWithToken(name, room, { token: changeToken(req), address: clientAddress(req, ctx.options.trustProxy) }), room };
}

export async function postMessage(ctx: HttpContext, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  const client = sessionForChange(ctx, req);
  const to = optionalString(body, "to");
  const id = ctx.hub.post(client, {
    text: requiredString(body, "text"),
    room: optionalString(body, "room"),
    to: to === undefined ? undefined : checkName(to),
    txn: optionalString(body, "txn"),
  });
  // With --data-dir, 201 waits until the message's batch is on disk (group commit).
  await ctx.durable?.();
  sendJson(res, 201, { id });
}

export function poll(ctx: HttpContext, { req, res, query }: Request): void {
  const client = sessionOf(ctx, req);
  const cursor = parseCursor(query.get("cursor"));
  const timeoutMs = parseTimeout(query.get("timeout"), ctx.options.pollTimeoutMs, ctx.options.maxPollTimeoutMs);
  longPoll(ctx.hub, ctx.openPolls, res, { client, cursor, timeoutMs, format: "json", mark: ctx.pollMark });
}

export async function leave(ctx: HttpContext, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  const client = sessionForChange(ctx, req);
  const room = optionalString(body, "room");
  if (room !== undefined) {
    ctx.hub.leave(client, checkRoom(room));
    // With --data-dir the leave notice is delivered (and in history) once durable: answered after it.
    await ctx.durable?.();
    sendJson(res, 200, { ok: true, rooms: [...client.rooms] });
    return;
  }
  ctx.hub.endSession(client, "left");
  sendJson(res, 200, { ok: true, rooms: [] }, { "Set-Cookie": clearedTokenCookie(cameOverTls(req, ctx.options.trustProxy)) });
}

/** Room listings are public unless --require-token. */
function guardRead(ctx: HttpContext, req: Request["req"]): void {
  if (ctx.options.requireToken) sessionOf(ctx, req);
}

/** Rooms per page of GET /api/rooms: by default, and at most (`?limit=`). */
const ROOMS_PAGE = 100;
const MAX_ROOMS_PAGE = 1000;

/** GET /api/rooms[?limit=N][&after=NAME]: one page in name order; `next` (the last name) asks for the page after it. */
export function listRooms(ctx: HttpContext, { req, res, query }: Request): void {
  guardRead(ctx, req);
  const after = query.get("after");
  const limit = parseLimit(query.get("limit"), ROOMS_PAGE, MAX_ROOMS_PAGE);
  sendJson(res, 200, ctx.hub.roomsPage(after === undefined ? undefined : checkRoom(after), limit));
}

/** A page size: a whole number, clamped to 1..max. */
function parseLimit(text: string | undefined, fallback: number, max: number): number {
  if (text !== undefined && !/^\d{1,6}$/.test(text)) throw new ChatError("bad_request", "limit is a whole number.");
  return Math.min(Math.max(Number(text ?? fallback), 1), max);
}

/** GET /api/rooms/R[?limit=N][&after=NAME]: one page of its members, in the order of member lists; `next` as for rooms. */
export function showRoom(ctx: HttpContext, { req, res, query }: Request, [name]: readonly string[]): void {
  guardRead(ctx, req);
  const room = ctx.hub.room(name!);
  if (!room) throw new ChatError("unknown_room");
  const after = query.get("after");
  const limit = parseLimit(query.get("limit"), MEMBERS_PAGE, MAX_MEMBERS_PAGE);
  sendJson(res, 200, { name: room.name, ...room.membersPage(after === undefined ? undefined : checkName(after), limit) });
}

const MAX_HISTORY_PAGE = 1000;

export function roomHistory(ctx: HttpContext, { req, res, query }: Request, [name]: readonly string[]): void {
  guardRead(ctx, req);
  // A room that lost its last member keeps its history (rooms.ts).
  const room = ctx.hub.roomWithHistory(name!);
  if (!room) throw new ChatError("unknown_room");
  const before = parseCursor(query.get("before")) ?? Number.MAX_SAFE_INTEGER;
  const limit = parseLimit(query.get("limit"), 50, MAX_HISTORY_PAGE);
  const messages = room.history(before, limit);
  sendJson(res, 200, { messages: messages.map((e) => e.message) });
}
