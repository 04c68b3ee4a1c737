import { randomBytes } from "node:crypto";
import type { Session } from "./session.js";
import { ChatError } from "./errors.js";
import type { SessionRequest } from "./hub-types.js";
import { sameToken } from "./same-token.js";
import type { QueueBudget } from "./queue-budget.js";
import { sessionToken } from "./signed-token.js";
import { SessionLimits } from "./session-limits.js";
import { nameKey } from "./validate.js";

/**
 * The session registry: every live session by name (case-folded) and by token,
 * and the caps on making one (session-limits.ts). Maps, since both keys come
 * from clients. It does not make sessions (the hub does, with their first room);
 * it says whether one may be made, and keeps it until it ends, its queue counted
 * meanwhile in the budget of all queues against the address that made it (queue-budget.ts).
 */
export class Sessions {
  readonly #byName = new Map<string, Session>();
  readonly #byToken = new Map<string, Session>();
  readonly #limits: SessionLimits;
  readonly #queues: QueueBudget;

  constructor(opts: {
    maxSessions: number;
    maxSessionsPerIp: number;
    retryAfterSeconds: number;
    ratePerIp?: number;
    now?: () => number;
    queues: QueueBudget;
  }) {
    this.#limits = new SessionLimits(opts);
    this.#queues = opts.queues;
  }

  /** The post rate of the addresses that created sessions (--rate-per-ip: session-limits.ts). */
  get addressRate(): Pick<SessionLimits, "postWait" | "postWaitAt" | "posted" | "buckets" | "setBucket"> {
    return this.#limits;
  }

  get size(): number {
    return this.#byName.size;
  }

  values(): IterableIterator<Session> {
    return this.#byName.values();
  }

  byName(name: string): Session | undefined {
    return this.#byName.get(nameKey(name));
  }

  byToken(token: string | undefined): Session | undefined {
    // A signed token (--redis hands them out) names the session of its first part.
    return token === undefined ? undefined : this.#byToken.get(sessionToken(token));
  }

  /** A name anyone is using (through any transport) is taken until its session ends. */
  isTaken(name: string): boolean {
    return this.#byName.has(nameKey(name));
  }

  /**
   * The session a name-based request acts as; undefined when there is none and the request may make it.
   * A name claimed with a token answers only to that token; an unclaimed name is open, like the seed.
   * A name the host vouches for (opts.identity) is its own whatever the token: a second device joins the same session
   * (one a proof made: spec §4).
   */
  authorize(name: string, opts: SessionRequest): Session | undefined {
    const existing = this.byName(name);
    if (opts.identity !== undefined && nameKey(opts.identity.name) !== nameKey(name)) {
      throw new ChatError("unauthorized", `Your identity is ${opts.identity.name}, not ${name}.`);
    }
    if (existing) {
      if (opts.identity !== undefined) {
        // A proof joins only a session a proof made: one made without (before an identity source was set) is never handed over.
        if (!existing.proven) throw new ChatError("name_taken", `${existing.name} is held by a session no proof made.`);
        return existing;
      }
      if (existing.token !== undefined && !sameToken(existing.token, opts.token)) {
        throw new ChatError("unauthorized", `${existing.name} is claimed: send its token.`);
      }
      return existing;
    }
    if (opts.requireToken && opts.identity === undefined) throw new ChatError("unauthorized");
    return undefined;
  }

  /** Refuses one more session past --max-sessions or its address's share of it. */
  checkRoomFor(address: string | undefined): void {
    this.#limits.check(this.#byName.size, address);
  }

  /** What checkRoomFor would throw, changing nothing. */
  roomRefusalFor(address: string | undefined): ChatError | undefined {
    return this.#limits.refusal(this.#byName.size, address);
  }

  /** A new session's token: 24 random bytes, URL-safe. */
  newToken(): string {
    return randomBytes(24).toString("base64url");
  }

  /** Keeps a new (or restored) session, counted against the address that made it. */
  add(client: Session): void {
    this.#byName.set(client.key, client);
    if (client.token !== undefined) this.#byToken.set(client.token, client);
    this.#limits.added(client.address);
    this.#queues.attach(client.queue, client.address, client.key);
  }

  /** Forgets an ended session: its name, token and slot are free. */
  remove(client: Session): void {
    this.#byName.delete(client.key);
    if (client.token !== undefined) this.#byToken.delete(client.token);
    this.#limits.ended(client.address);
    this.#queues.detach(client.queue);
  }
}
