import { Session } from "./session.js";
import { SessionQueue } from "./session-queue.js";
import { ChatError } from "./errors.js";
import type { HubParts } from "./hub-parts.js";
import type { Identity, JoinOptions, NewSession, SessionRequest } from "./hub-types.js";
import type { Membership } from "./membership.js";
import { DEFAULT_ROOM, defaultRoomOf } from "./rooms.js";
import { checkRoom, nameKey } from "./validate.js";

/**
 * Making sessions: by token (POST /api/join), by name (the seed endpoint, the
 * TCP gateway), or for a post that needs one (posting.ts). A new session is made
 * with its first room; every cap is checked first, so a refusal leaves nothing behind.
 */
export class SessionFactory {
  readonly #parts: HubParts;
  readonly #membership: Membership;
  readonly #nextId: (now: number) => number;

  /** `nextId`: the hub's id counter, so a new queue starts at an id no message will carry. */
  constructor(parts: HubParts, membership: Membership, nextId: (now: number) => number) {
    this.#parts = parts;
    this.#membership = membership;
    this.#nextId = nextId;
  }

  /**
   * The client a name-based request (the seed endpoint, the TCP gateway) acts as.
   * A name claimed with a token answers only to that token; an unclaimed name is open, like the seed.
   * A name the host vouches for (opts.identity) is its session, as another device joining it, or a new
   * one with a token and the identity's rooms claim (first room: `room`, else the claim's first, else lobby).
   */
  forName(name: string, opts: SessionRequest & { room?: string }): Session {
    const existing = this.#parts.sessions.authorize(name, opts);
    const room = opts.room === undefined ? undefined : checkRoom(opts.room);
    const identity = opts.identity;
    if (!existing) {
      const first = room ?? defaultRoomOf(identity?.rooms) ?? DEFAULT_ROOM;
      // A name the host vouches for gets a token, so nobody else can act as it: POST /api/join with its JWT hands it out.
      return this.create(name, first, identity === undefined ? { address: opts.address } : this.#vouched(identity, opts.address, opts.newToken));
    }
    if (room !== undefined) {
      this.#parts.rooms.checkJoins(existing, [room], identity?.rooms);
      this.#membership.join(existing, room);
    }
    return existing;
  }

  #vouched(identity: Identity, address: string | undefined, token: string | undefined): NewSession {
    return { token: token ?? this.#parts.sessions.newToken(), address, allowedRooms: identity.rooms, proven: true };
  }

  /**
   * POST /api/join: a new session with a token, or, with the token of an existing one, one more room.
   * A name anyone is using (through any transport) is taken until its session ends.
   */
  withToken(name: string, room: string, opts: JoinOptions = {}): Session {
    const sessions = this.#parts.sessions;
    const own = sessions.byToken(opts.token);
    if (own && own.key === nameKey(name)) {
      this.#membership.join(own, room);
      return own;
    }
    if (sessions.isTaken(name)) throw new ChatError("name_taken", `${name} is taken.`);
    return this.create(name, room, { token: opts.newToken ?? sessions.newToken(), resumable: opts.resumable, address: opts.address });
  }

  /** A new session in `room`; every cap is checked first, so a refusal leaves nothing behind. */
  create(name: string, room: string, { token, resumable = true, address, allowedRooms, proven }: NewSession): Session {
    const parts = this.#parts;
    parts.checkWritable();
    room = checkRoom(room);
    parts.rooms.checkJoins(undefined, [room], allowedRooms);
    parts.sessions.checkRoomFor(address);
    const now = parts.now();
    const client = new Session({
      name,
      token,
      room,
      // The queue starts at an id no message will carry: a gap placed at its start
      // (a cursor from before a restart) then never shares an id with a message.
      queue: new SessionQueue(parts.options.maxQueue, this.#nextId(now), parts.now, parts.options.maxQueueBytes),
      newBucket: parts.newBucket,
      now,
      resumable,
      address,
      allowedRooms,
      proven,
    });
    parts.sessions.add(client);
    parts.record({ kind: "session", session: client });
    this.#membership.join(client, room);
    return client;
  }
}
