import { MAX_BODY_BYTES } from "../config.js";
import { ChatError } from "../errors.js";
import { DEFAULT_ROOM } from "../hub.js";
import { checkName, checkRoom, parseCursor, parseTimeout } from "../validate.js";
import { clearedTokenCookie, sessionOf, tokenCookie, tokenOf } from "./auth.js";
import { optionalString, readJsonObject, requiredString } from "./body.js";
import type { HttpContext, Request } from "./context.js";
import { longPoll } from "./long-poll.js";
import { sendJson } from "./respond.js";
import { handleEvents } from "./sse.js";

type Handler = (ctx: HttpContext, request: Request, params: string[]) => void | Promise<void>;

interface Route {
  pattern: RegExp;
  methods: Record<string, Handler>;
}

/** The JSON API of spec §4; routes and their handlers in one table. */
const ROUTES: Route[] = [
  { pattern: /^\/api\/join$/, methods: { POST: join } },
  { pattern: /^\/api\/messages$/, methods: { POST: postMessage } },
  { pattern: /^\/api\/poll$/, methods: { GET: poll } },
  { pattern: /^\/api\/events$/, methods: { GET: handleEvents } },
  { pattern: /^\/api\/leave$/, methods: { POST: leave } },
  { pattern: /^\/api\/rooms$/, methods: { GET: listRooms } },
  { pattern: /^\/api\/rooms\/([^/]+)$/, methods: { GET: showRoom } },
  { pattern: /^\/api\/rooms\/([^/]+)\/messages$/, methods: { GET: roomHistory } },
];

/** Finds the handler for an /api path; 404 for an unknown path, 405 (with Allow) for a known path and wrong method. */
export function apiHandler(path: string, method: string): { handler: Handler; params: string[] } {
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    const handler = route.methods[method];
    if (!handler) throw new ChatError("method_not_allowed", undefined, { headers: { Allow: Object.keys(route.methods).join(", ") } });
    return { handler, params: match.slice(1).map(decodeSegment) };
  }
  throw new ChatError("not_found");
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ChatError("bad_encoding");
  }
}

async function join(ctx: HttpContext, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  const name = checkName(requiredString(body, "name"));
  const room = checkRoom(optionalString(body, "room") ?? DEFAULT_ROOM);
  const client = ctx.hub.joinWithToken(name, room, tokenOf(req));
  ctx.hub.touch(client);
  const members = ctx.hub.room(room)?.memberNames() ?? [];
  // With --data-dir the token is on disk before it is handed out, so it survives a crash.
  await ctx.durable?.();
  sendJson(
    res,
    200,
    { token: client.token, name: client.name, room, cursor: client.queue.since, members },
    { "Set-Cookie": tokenCookie(client.token!) },
  );
}

async function postMessage(ctx: HttpContext, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  const client = sessionOf(ctx, req);
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

function poll(ctx: HttpContext, { req, res, query }: Request): void {
  const client = sessionOf(ctx, req);
  const cursor = parseCursor(query.get("cursor"));
  const timeoutMs = parseTimeout(query.get("timeout"), ctx.options.pollTimeoutMs, ctx.options.maxPollTimeoutMs);
  longPoll(ctx.hub, ctx.held, res, { client, cursor, timeoutMs, format: "json" });
}

async function leave(ctx: HttpContext, { req, res }: Request): Promise<void> {
  const body = await readJsonObject(req, MAX_BODY_BYTES);
  const client = sessionOf(ctx, req);
  const room = optionalString(body, "room");
  if (room !== undefined) {
    ctx.hub.leave(client, checkRoom(room));
    sendJson(res, 200, { ok: true, rooms: [...client.rooms] });
    return;
  }
  ctx.hub.endSession(client, "left");
  sendJson(res, 200, { ok: true, rooms: [] }, { "Set-Cookie": clearedTokenCookie() });
}

/** Room listings are public unless --require-token. */
function guardRead(ctx: HttpContext, req: Request["req"]): void {
  if (ctx.options.requireToken) sessionOf(ctx, req);
}

function listRooms(ctx: HttpContext, { req, res }: Request): void {
  guardRead(ctx, req);
  sendJson(res, 200, { rooms: ctx.hub.rooms() });
}

function showRoom(ctx: HttpContext, { req, res }: Request, [name]: string[]): void {
  guardRead(ctx, req);
  const room = ctx.hub.room(name!);
  if (!room) throw new ChatError("unknown_room");
  sendJson(res, 200, { name: room.name, members: room.memberNames() });
}

const MAX_HISTORY_PAGE = 1000;

function roomHistory(ctx: HttpContext, { req, res, query }: Request, [name]: string[]): void {
  guardRead(ctx, req);
  const room = ctx.hub.room(name!);
  // With --data-dir a room that lost its last member keeps its history (the store has it).
  const kept = room === undefined ? ctx.keptHistory : undefined;
  if (!room && kept?.(checkRoom(name!), 0, 0) === undefined) throw new ChatError("unknown_room");
  const before = parseCursor(query.get("before")) ?? Number.MAX_SAFE_INTEGER;
  const limitText = query.get("limit");
  if (limitText !== undefined && !/^\d{1,6}$/.test(limitText)) throw new ChatError("bad_request", "limit is a whole number.");
  const limit = Math.min(Math.max(Number(limitText ?? 50), 1), MAX_HISTORY_PAGE);
  const messages = room ? room.history(before, limit) : kept!(checkRoom(name!), before, limit)!;
  sendJson(res, 200, { messages: messages.map((e) => e.message) });
}
