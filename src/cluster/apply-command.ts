import type { Session } from "../session.js";
import { ChatError } from "../errors.js";
import { DEFAULT_ROOM, type Hub, type Identity } from "../hub.js";
import { defaultRoomOf } from "../rooms.js";
import { nameKey } from "../validate.js";
import { compareIds } from "./shared-log.js";
import type { Command } from "./commands.js";

/** What applying a command gives its requester: the session it made or acted as, a message id, or nothing. */
export type Outcome = Session | number | undefined;

export interface ApplyContext {
  readonly hub: Hub;
  /** The log position a session was made at ("0-0" for one a snapshot brought): tells a name's sessions apart. */
  madeAt(client: Session): string;
  /**
   * An identity source is set (--jwt-secret, authenticate; the same on every process: cluster.ts):
   * a name is claimed only by a record carrying the proof's outcome (vouch, a seed's v), as one
   * process takes a name only with a proof (spec §4). Any other that would claim one is refused, alike everywhere.
   */
  readonly vouchedOnly: boolean;
}

/**
 * Applies one command of the shared log to this replica's hub, as every replica
 * does, in log order and at the entry's time (the hub's clock says it meanwhile):
 * the same command on the same state gives the same outcome everywhere, so
 * nothing here may read anything but the hub and the command (no clock, no
 * randomness, nothing of this process). Throws ChatError as the hub does; a
 * refused command changes nothing, on every replica.
 */
export function applyCommand(ctx: ApplyContext, c: Command): Outcome {
  const { hub } = ctx;
  switch (c.t) {
    case "join":
      // With an identity source a token join only adds a room to one's own session (vouched.ts does so in one process).
      if (ctx.vouchedOnly && hub.sessionByToken(c.o)?.key !== nameKey(c.n)) throw new ChatError("unauthorized");
      return hub.joinWithToken(c.n, c.r, { token: c.o, address: c.a, newToken: c.k, resumable: c.tcp !== 1 });
    case "vouch": {
      const identity = vouched(ctx, c.n, c.ar);
      const room = c.r ?? (c.j === 1 ? (defaultRoomOf(identity.rooms) ?? defaultRoomOf(hub.session(c.n)?.allowedRooms) ?? DEFAULT_ROOM) : undefined);
      return hub.sessionForName(c.n, { identity, room, requireToken: true, address: c.a, newToken: c.k });
    }
    case "post":
      return hub.post(byToken(hub, c.k), { text: c.x, room: c.r, to: c.to, txn: c.i, autoJoin: c.auto === 1 });
    case "seed": {
      const identity = c.v === 1 ? vouched(ctx, c.n, c.ar) : undefined;
      const who = { token: c.k, requireToken: c.rq === 1 || ctx.vouchedOnly, address: c.a, identity, newToken: c.nk };
      if (c.x !== undefined) return hub.postAs(c.n, { text: c.x, room: c.r, txn: c.i }, who);
      return hub.sessionForName(c.n, { ...who, room: c.r });
    }
    case "leave": {
      const client = byToken(hub, c.k);
      if (c.r === undefined) hub.endSession(client, "left");
      else hub.leave(client, c.r);
      return client;
    }
    case "acks":
      for (const [key, upTo] of c.a) {
        const client = hub.session(key);
        if (client) hub.ack(client, upTo);
      }
      return undefined;
    case "expire":
      for (const [key, madeAt] of c.s) {
        const client = hub.session(key);
        // Only the session the sweep saw: a name that came back since is another session.
        if (client && compareIds(ctx.madeAt(client), madeAt) === 0) hub.endSession(client, "expired");
      }
      return undefined;
    case "unproven":
      // Only where an identity source is set: every process of a cluster has the same (cluster.ts agrees on it).
      if (ctx.vouchedOnly) hub.endUnproven();
      return undefined;
    case "floor":
      // Ids go on above it, as after a store's restore (nothing else is restored: the lists are empty).
      if (Number.isSafeInteger(c.f) && c.f > 0) hub.restore([], new Map(), [], c.f);
      return undefined;
  }
}

/**
 * What a command gave, read back from the hub, for a request whose entry this replica never
 * applied (it loaded a snapshot past it: replica.ts resync) or whose append's fate it never heard:
 * a join's session by the token it made, a post's id by its txn (what asking again would answer).
 * Undefined when the state cannot tell (then the request gets 503 and is asked again).
 */
export function outcomeFromState(hub: Hub, c: Command): { outcome: Outcome } | undefined {
  if (c.t === "join") {
    const client = hub.sessionByToken(c.k);
    return client && { outcome: client };
  }
  if ((c.t === "post" || c.t === "seed") && c.x !== undefined && c.i !== undefined) {
    const key = c.t === "seed" ? nameKey(c.n) : hub.sessionByToken(c.k)?.key;
    const id = key === undefined ? undefined : hub.txnId(key, c.i);
    return id === undefined ? undefined : { outcome: id };
  }
  return undefined;
}

/** The identity a record says was proven where it was appended; a cluster without an identity source takes no such claim. */
function vouched(ctx: ApplyContext, name: string, claim: readonly string[] | undefined): Identity {
  if (!ctx.vouchedOnly) throw new ChatError("unauthorized", "This server takes no identity from the host application.");
  return { name, rooms: claim === undefined ? undefined : new Set(claim) };
}

function byToken(hub: Hub, token: string): Session {
  const client = hub.sessionByToken(token);
  if (!client) throw new ChatError("unauthorized");
  return client;
}
