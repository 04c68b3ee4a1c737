import type { IncomingMessage } from "node:http";
import type { Session } from "../session.js";
import { ChatError } from "../errors.js";
import { DEFAULT_ROOM } from "../hub.js";
import type { Identity } from "../hub-types.js";
import { defaultRoomOf } from "../rooms.js";
import type { IdentitySource } from "../identity/identity-source.js";
import { checkName, checkRoom, nameKey } from "../validate.js";
import { vouchedSession } from "../cluster/cluster-vouched.js";
import { changeToken, tokenOf } from "./auth.js";
import { isJsonContentType, optionalString } from "./body.js";
import { clientAddress } from "./client-address.js";
import type { HttpContext } from "./context.js";

/*
 * Names the host application vouches for (spec §4), on each HTTP way in: with
 * --jwt-secret or authenticate, a request that would create a session or claim
 * a name must prove it (a JWT, the host's login); one carrying the session token
 * of its name goes on as before, and nothing here runs for it. Each refusal is a
 * 401 thrown before anything changes.
 */

/**
 * POST /api/join with an identity source: the body's `jwt` or the Authorization
 * JWT (or authenticate) proves the name; `name`, when given, must be it. A
 * second proof for the same name joins the same session. With no JWT, the
 * session token of one's own session joins one more room, as before.
 * The host's login is likely a cookie, which any page can make a browser send:
 * asked only for a JSON body, which no form can send (as the cookie rule of spec §4).
 */
export async function joinVouched(ctx: HttpContext, identity: IdentitySource, req: IncomingMessage, body: Record<string, unknown>): Promise<{ client: Session; room: string }> {
  const proven = await proveJoin(identity, req, body, () => ctx.hub.sessionByToken(changeToken(req)));
  if ("own" in proven) {
    ctx.hub.join(proven.own, proven.room);
    return { client: proven.own, room: proven.room };
  }
  const { who } = proven;
  // With no room named: the first its claim lists, else the first its session's claim lists, else lobby.
  const joined = proven.room ?? defaultRoomOf(who.rooms) ?? defaultRoomOf(ctx.hub.session(who.name)?.allowedRooms) ?? DEFAULT_ROOM;
  const client = ctx.hub.sessionForName(who.name, { identity: who, room: joined, requireToken: true, address: clientAddress(req, ctx.options.trustProxy) });
  // Only a session made without a token (impossible once a source is set: server.ts ends those at start) has none to hand out.
  if (client.token === undefined) throw new ChatError("name_taken", `${client.name} is taken.`);
  return { client, room: joined };
}

/**
 * What a join with an identity source may do, decided before anything changes
 * (401 otherwise): add a room to one's own session (its token, no JWT), or take
 * the session of the name proven (`room` undefined: none named). `findOwn` gives
 * the session of the request's token; with --redis it catches up first (cluster-vouched.ts).
 */
export async function proveJoin(
  identity: IdentitySource,
  req: IncomingMessage,
  body: Record<string, unknown>,
  findOwn: () => Session | undefined | Promise<Session | undefined>,
): Promise<{ own: Session; room: string } | { who: Identity; room: string | undefined }> {
  const name = optionalString(body, "name");
  if (name !== undefined) checkName(name);
  const given = optionalString(body, "room");
  const room = given === undefined ? undefined : checkRoom(given);
  const jwt = optionalString(body, "jwt") ?? identity.presentedJwt(req);
  if (jwt === undefined) {
    const own = await findOwn();
    if (own && (name === undefined || nameKey(name) === own.key)) return { own, room: room ?? defaultRoomOf(own.allowedRooms) ?? DEFAULT_ROOM };
  }
  if (jwt === undefined && !isJsonContentType(req.headers["content-type"])) {
    throw new ChatError("unsupported_media_type", "Joining with the application's login takes Content-Type: application/json (or a JWT).");
  }
  const who = await identity.ofRequest(req, jwt);
  if (name !== undefined && nameKey(name) !== nameKey(who.name)) throw new ChatError("unauthorized", `Your identity is ${who.name}, not ${name}.`);
  return { who, room };
}

/**
 * The identity a seed request (`/?name=N`) acts with: none when it carries the
 * session token of N's session (as before), else what the host proves, which must be N.
 * A GET that posts or joins (`changes`) is proven only by a JWT in Authorization:
 * the host's login, likely a cookie, would let a link on any page post as the user.
 */
export async function seedIdentity(identity: IdentitySource, ctx: HttpContext, req: IncomingMessage, name: string, changes: boolean): Promise<Identity | undefined> {
  checkName(name);
  const own = ctx.hub.sessionByToken(changes ? changeToken(req) : tokenOf(req));
  if (own !== undefined && own.key === nameKey(name)) return undefined;
  const jwt = identity.presentedJwt(req);
  if (changes && jwt === undefined) {
    throw new ChatError("unauthorized", "A GET that posts or joins needs the session token or a JWT in Authorization: Bearer.");
  }
  const who = await identity.ofRequest(req, jwt);
  if (nameKey(who.name) !== nameKey(name)) throw new ChatError("unauthorized", `Your identity is ${who.name}, not ${name}.`);
  return who;
}

/**
 * The session an SSE stream reads, with an identity source: its session token's
 * as before, else the session of the name the host proves (made, in its first
 * room, if it has none).
 */
export async function streamSession(identity: IdentitySource, ctx: HttpContext, req: IncomingMessage): Promise<Session> {
  const who = await identity.ofRequest(req);
  const address = clientAddress(req, ctx.options.trustProxy);
  // With --redis a session is made by the shared log, the proof's outcome in the record.
  const client = ctx.cluster ? await vouchedSession(ctx.hub, ctx.cluster, who, address) : ctx.hub.sessionForName(who.name, { identity: who, requireToken: true, address });
  ctx.hub.markPresent(client);
  return client;
}
