import type { Session } from "./session.js";
import { runCommand, type CommandHub } from "./commands/run-command.js";
import { ChatError } from "./errors.js";
import type { HubParts } from "./hub-parts.js";
import type { Identity, NewSession, PostInput, SessionRequest } from "./hub-types.js";
import type { Membership } from "./membership.js";
import { planPost, type PostPlan, type Sender } from "./post-plan.js";
import type { Presence } from "./presence.js";
import { DEFAULT_ROOM, defaultRoomOf } from "./rooms.js";
import { checkRoom, checkText, checkTxn, nameKey } from "./validate.js";

/**
 * Posting (spec §3, §5): a post is checked whole (text, txn, rate, room caps,
 * session caps), then done whole — a message to a room, a private message, or
 * a command answered to the asker alone.
 */
export class Posting {
  readonly #parts: HubParts;
  readonly #membership: Membership;
  readonly #presence: Presence;
  readonly #commands: CommandHub;
  readonly #createSession: (name: string, room: string, init: NewSession) => Session;

  constructor(
    parts: HubParts,
    deps: { membership: Membership; presence: Presence; commands: CommandHub; createSession: (name: string, room: string, init: NewSession) => Session },
  ) {
    this.#parts = parts;
    this.#membership = deps.membership;
    this.#presence = deps.presence;
    this.#commands = deps.commands;
    this.#createSession = deps.createSession;
  }

  /**
   * The seed endpoint's post (spec §3), in one call: checks everything (the
   * name's token, text, txn, room, recipient, command, rate, room caps and join
   * budget, session caps), then makes the session if the name has none, joins
   * `room=` and posts. A refused post changes nothing: no session, no room, no message.
   */
  postAs(name: string, input: PostInput, opts: SessionRequest = {}): number {
    const existing = this.#parts.sessions.authorize(name, opts);
    const room = input.room === undefined ? undefined : checkRoom(input.room);
    const first = room ?? (existing ? undefined : (defaultRoomOf(opts.identity?.rooms) ?? DEFAULT_ROOM));
    const id = this.#submit({ name, client: existing, first }, { ...input, room, autoJoin: true }, opts.address, opts.identity, opts.newToken);
    if (existing) this.#presence.seen(existing);
    return id;
  }

  /** Posts text as a client; returns the id the client is answered with. */
  post(client: Session, input: PostInput): number {
    return this.#submit({ name: client.name, client, first: undefined }, input, undefined, undefined, undefined);
  }

  /**
   * Checks a post whole, then does it: a sender without a session gets one only now.
   * `identity`: the host vouches for the sender; its rooms claim limits the joins, and a new session gets a token.
   */
  #submit(sender: Sender, input: PostInput, address: string | undefined, identity: Identity | undefined, newToken: string | undefined): number {
    const parts = this.#parts;
    parts.checkWritable();
    const now = parts.now();
    const txn = checkTxn(input.txn);
    if (txn !== undefined) {
      const earlier = parts.txns.get(nameKey(sender.name), txn, now);
      if (earlier !== undefined) return earlier;
    }
    const { client } = sender;
    checkText(input.text, parts.options.maxMessage);
    // Before the text is parsed: a flood of refused lines (TCP) costs as little as it can.
    // Its own bucket, and the one of every session its address made (--rate-per-ip; a new session's: the asking address).
    const by = client ? client.address : address;
    const wait = Math.max(client?.bucket.wait() ?? 0, parts.sessions.addressRate.postWait(by));
    if (wait > 0) throw new ChatError("rate_limited", undefined, { retryAfter: wait });
    const plan = planPost(input, sender, { maxMessage: parts.options.maxMessage, knows: (name) => parts.sessions.byName(name) !== undefined });
    parts.rooms.checkJoins(client, plan.allJoins, identity?.rooms);
    if (txn !== undefined) parts.txns.checkRoom(now, client === undefined ? address : client.address);
    if (!client) parts.sessions.checkRoomFor(address);
    // Everything is checked: from here on the post happens whole.
    const from = client ?? this.#createSession(sender.name, plan.joins[0]!, this.#newSession(address, identity, newToken));
    for (const room of plan.joins) this.#membership.join(from, room);
    from.bucket.take();
    parts.sessions.addressRate.posted(from.address);
    const id = this.#dispatch(from, plan);
    if (txn !== undefined) {
      parts.txns.remember(from.key, txn, id, now, now, from.address);
      parts.record({ kind: "txn", session: from, txn, id, at: now });
    }
    return id;
  }

  /**
   * What the key table says of one more key from this sender at `now`, changing nothing:
   * undefined, 429 past its address's share, 503 past the total. A key the
   * name used in its window is a retry and passes. The cluster's pre-check asks here.
   */
  txnRefusal(name: string, client: Session | undefined, address: string | undefined, txn: string | undefined, now: number): ChatError | undefined {
    if (txn === undefined || this.#parts.txns.get(nameKey(name), txn, now) !== undefined) return undefined;
    return this.#parts.txns.refusal(now, client === undefined ? address : client.address);
  }

  /**
   * What a seed post (`post`) or poll making a session for `address` would be refused for at `at`, in
   * #submit's order, changing nothing (hub.newSessionRefusal).
   */
  newSessionRefusal(name: string, address: string | undefined, at: number, post?: { txn: string | undefined }): ChatError | undefined {
    if (post !== undefined) {
      if (post.txn !== undefined && this.#parts.txns.get(nameKey(name), post.txn, at) !== undefined) return undefined;
      const wait = this.#parts.sessions.addressRate.postWaitAt(address, at);
      if (wait > 0) return new ChatError("rate_limited", undefined, { retryAfter: wait });
      const keys = this.txnRefusal(name, undefined, address, post.txn, at);
      if (keys !== undefined) return keys;
    }
    return this.#parts.sessions.roomRefusalFor(address);
  }

  /** A sender's new session: a name the host vouches for gets a token (nobody else can act as it) and its rooms claim. */
  #newSession(address: string | undefined, identity: Identity | undefined, token: string | undefined): NewSession {
    if (identity === undefined) return { address };
    return { address, token: token ?? this.#parts.sessions.newToken(), allowedRooms: identity.rooms, proven: true };
  }

  #dispatch(client: Session, { parsed, room }: PostPlan): number {
    switch (parsed.kind) {
      case "command":
        return this.#system(client, runCommand(this.#commands, client, parsed.command, parsed.argument));
      case "private":
        return this.#sendPrivate(client, room, parsed.to, parsed.text);
      case "message": {
        // planPost made sure the client is in it (or joined it first).
        const target = this.#parts.rooms.get(room);
        if (!target?.members.has(client)) throw new ChatError("not_in_room");
        return this.#parts.publish({ type: "message", room, from: client.name, text: parsed.text }, target.members, target).id;
      }
    }
  }

  #sendPrivate(from: Session, room: string, toName: string, text: string): number {
    const to = this.#parts.sessions.byName(toName);
    if (!to) throw new ChatError("unknown_recipient", `No user named ${toName}.`);
    const recipients = to === from ? [from] : [to, from];
    const keys = recipients.filter((c) => c.resumable).map((c) => c.key);
    return this.#parts.publish({ type: "private", room, from: from.name, to: to.name, text }, recipients, undefined, keys).id;
  }

  /** An answer to a command: to the one client only, never into history. */
  #system(client: Session, text: string): number {
    return this.#parts.publish({ type: "system", room: client.currentRoom, from: "", text }, [client], undefined, client.resumable ? [client.key] : []).id;
  }
}
