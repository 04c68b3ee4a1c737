import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Session } from "../session.js";
import type { Hub, Identity } from "../hub.js";
import type { IdentitySource } from "../identity/identity-source.js";
import { changeToken, tokenOf } from "../http/auth.js";
import { clientAddress } from "../http/client-address.js";
import type { HttpContext } from "../http/context.js";
import { proveJoin, seedIdentity } from "../http/vouched.js";
import type { Command } from "./commands.js";
import type { Replica } from "./replica.js";

/*
 * Names the host vouches for (spec §4) with --redis: verified at the edge, the
 * outcome logged. The process a request comes to checks the JWT or asks
 * authenticate(req), exactly as one process does (http/vouched.ts), and only
 * then appends a command that carries the name proven and its rooms claim (a
 * `vouch`, a seed's `v`): a request without a proof is refused 401 with
 * nothing appended. Every replica applies that record with that identity
 * (apply-command.ts): the same session for a second proof of a name, the claim
 * kept with the session (and in snapshots) and enforced on every join.
 */

/** A command that makes or joins a session by a name: POST /api/join's. */
export type JoinCommand = Extract<Command, { t: "join" | "vouch" }>;

/** The fields a record carries for an identity proven here: its rooms claim, if its JWT limits them. */
function claimOf(who: Identity): { ar?: string[] } {
  return who.rooms === undefined ? {} : { ar: [...who.rooms] };
}

/** A new session's token, made before the record so every replica gives the same. */
function newToken(): string {
  return randomBytes(24).toString("base64url");
}

/** The live session a token names here, after catching up with the log once if this process does not know it yet. */
async function knownSession(hub: Hub, replica: Replica, token: string | undefined): Promise<Session | undefined> {
  // A JWT in Authorization (it has dots, a session token none) names no session: nothing to catch up to.
  if (token === undefined || token.includes(".")) return undefined;
  const known = hub.sessionByToken(token);
  if (known !== undefined) return known;
  await replica.catchUp();
  const client = hub.sessionByToken(token);
  if (client === undefined) replica.tokens.unknown(token); // token-marks.ts
  return client;
}

/**
 * POST /api/join with an identity source: the command to append once the
 * request proved what it may do (401 otherwise, before any append). One's own
 * token adds a room (a `join` with `o`); a proven name takes its session (`vouch`).
 */
export async function vouchedJoin(ctx: HttpContext, identity: IdentitySource, replica: Replica, req: IncomingMessage, body: Record<string, unknown>): Promise<JoinCommand> {
  const token = changeToken(req);
  const proven = await proveJoin(identity, req, body, () => knownSession(ctx.hub, replica, token));
  const a = clientAddress(req, ctx.options.trustProxy);
  if ("own" in proven) return { t: "join", n: proven.own.name, r: proven.room, k: newToken(), o: token!, a };
  const { who, room } = proven;
  // No room named: which is the default depends on the session, decided when the record is applied.
  return { t: "vouch", n: who.name, ...(room === undefined ? { j: 1 as const } : { r: room }), k: newToken(), a, ...claimOf(who) };
}

/** The identity a seed request acts with (http/vouched.ts seedIdentity), once this process knows the token it carries. */
export async function provenSeed(ctx: HttpContext, identity: IdentitySource, replica: Replica, req: IncomingMessage, name: string, changes: boolean): Promise<Identity | undefined> {
  await knownSession(ctx.hub, replica, changes ? changeToken(req) : tokenOf(req));
  return seedIdentity(identity, ctx, req, name, changes);
}

/** The fields of a seed command for the identity proven here (none: the request carries its session's token). */
export function seedClaim(who: Identity | undefined): { v?: 1; ar?: string[]; nk?: string } {
  return who === undefined ? {} : { v: 1, ...claimOf(who), nk: newToken() };
}

/**
 * The session of a name proven here, for an SSE stream or TCP `/token <jwt>`:
 * the one this process knows, else what the log makes of a `vouch` (that session,
 * or a new one in the claim's first room).
 */
export function vouchedSession(hub: Hub, replica: Replica, who: Identity, address: string | undefined): Promise<Session> {
  const known = hub.session(who.name);
  // One no proof made is never handed over: the log refuses it alike everywhere (sessions.ts authorize).
  if (known !== undefined && known.token !== undefined && known.proven) return Promise.resolve(known);
  return replica.submit({ t: "vouch", n: who.name, k: newToken(), ...(address !== undefined && { a: address }), ...claimOf(who) }, (outcome) => outcome as Session);
}
