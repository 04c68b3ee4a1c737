import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import { Client } from "./client.js";
import { ClientQueue } from "./client-queue.js";
import { ChatError } from "./errors.js";
import { Envelope, type ChatMessage } from "./message.js";
import { TokenBucket } from "./rate-limiter.js";
import { Room } from "./room.js";
import { parseText } from "./text-commands.js";
import { checkRoom, checkText, checkTxn, nameKey } from "./validate.js";

export interface HubOptions {
  maxQueue: number;
  sessionTtlMs: number;
  presenceLimit: number;
  maxMessage: number;
  rate: number;
  maxSessions: number;
  history: number;
}

export interface PostInput {
  text: string;
  /** Room to post to; the client's current room when absent. */
  room?: string;
  /** Makes the post private to this name (the JSON API's "to"). */
  to?: string;
  /** Idempotency key: a retry with the same key answers the first id and posts nothing. */
  txn?: string;
  /** Posting to a room one is not in joins it (the seed's way) instead of failing. */
  autoJoin?: boolean;
}

export const DEFAULT_ROOM = "lobby";

/** A session as a store saved it, its queue rebuilt (Hub.restore). */
export interface RestoredSession {
  name: string;
  token: string | undefined;
  /** In the order they were joined: leaving the current room falls back to the last. */
  rooms: readonly string[];
  currentRoom: string;
  queue: ClientQueue;
  /** Idempotency keys still in their window: [key, id, at]. */
  txns: readonly (readonly [string, number, number])[];
}

/** Why a session ended, for its transports and the log. */
export type EndReason = "left" | "expired" | "shutdown";

/**
 * The chat core: sessions, rooms, ids, fan-out. It knows nothing of HTTP.
 *
 * Origin design (spec §1): a message is pushed onto the queue of every
 * member of the room, then the hub emits the member's wake event; held polls,
 * SSE streams and TCP connections listen for it. One event per recipient, not
 * one event all waiters hear: a post to a room of 5 wakes 5, not 10,000.
 *
 * Events: "message" (envelope, recipients) for every accepted message,
 * "session" (client) when one starts, "session-end" (client, reason),
 * "room-join" / "room-leave" (client, room), "dropped" (client, reason, count).
 * For a store (--data-dir): "room-current" (client, room) when a member's
 * current room changes by a join, "room" / "room-end" (room) when one is made
 * or forgotten, "ack" (client) when its queue's `since` moves, "system"
 * (client, envelope), "txn" (client, key, id, at).
 */
export class Hub extends EventEmitter {
  readonly options: HubOptions;
  readonly #now: () => number;
  readonly #clients = new Map<string, Client>();
  readonly #byToken = new Map<string, Client>();
  readonly #rooms = new Map<string, Room>();
  #lastId: number;
  #sweeper: NodeJS.Timeout;
  /** One function for every client, which makes its bucket when it first posts. */
  readonly #newBucket = (): TokenBucket => new TokenBucket(this.options.rate, this.options.rate * 2, this.#now);

  constructor(options: HubOptions, opts: { now?: () => number; lastId?: number } = {}) {
    super();
    // Every held poll listens on its own client's event; there is no per-event storm to warn about.
    this.setMaxListeners(0);
    this.options = options;
    this.#now = opts.now ?? Date.now;
    // Ids are microsecond timestamps, bumped by one when two meet: they increase,
    // and a restarted hub (with or without a log) never issues an id again.
    this.#lastId = Math.max(opts.lastId ?? 0, this.#now() * 1000);
    const sweepEvery = Math.max(10, Math.min(1000, Math.floor(options.sessionTtlMs / 4)));
    this.#sweeper = setInterval(() => this.sweep(), sweepEvery).unref();
  }

  get lastId(): number {
    return this.#lastId;
  }

  get sessionCount(): number {
    return this.#clients.size;
  }

  clients(): IterableIterator<Client> {
    return this.#clients.values();
  }

  client(name: string): Client | undefined {
    return this.#clients.get(nameKey(name));
  }

  clientByToken(token: string | undefined): Client | undefined {
    return token === undefined ? undefined : this.#byToken.get(token);
  }

  /**
   * The client a name-based request (the seed endpoint, the TCP gateway) acts as.
   * A name claimed with a token answers only to that token; an unclaimed name is open, like the seed.
   */
  clientForName(name: string, opts: { token?: string; room?: string; requireToken?: boolean }): Client {
    const existing = this.client(name);
    if (existing) {
      if (existing.token !== undefined && existing.token !== opts.token) {
        throw new ChatError("unauthorized", `${existing.name} is claimed: send its token.`);
      }
      if (opts.room !== undefined) this.join(existing, opts.room);
      return existing;
    }
    if (opts.requireToken) throw new ChatError("unauthorized");
    return this.#createClient(name, undefined, opts.room ?? DEFAULT_ROOM);
  }

  /**
   * POST /api/join: a new session with a token, or, with the token of an existing one, one more room.
   * A name anyone is using (through any transport) is taken until its session ends.
   */
  joinWithToken(name: string, room: string, token: string | undefined, resumable = true): Client {
    const own = this.clientByToken(token);
    if (own && own.key === nameKey(name)) {
      this.join(own, room);
      return own;
    }
    if (this.#clients.has(nameKey(name))) throw new ChatError("name_taken", `${name} is taken.`);
    return this.#createClient(name, randomBytes(24).toString("base64url"), room, resumable);
  }

  #createClient(name: string, token: string | undefined, room: string, resumable = true): Client {
    // A bad room must refuse the request before a session exists, not leave one behind with no room.
    room = checkRoom(room);
    if (this.#clients.size >= this.options.maxSessions) {
      throw new ChatError("server_full", undefined, { retryAfter: Math.ceil(this.options.sessionTtlMs / 1000) });
    }
    const now = this.#now();
    const client = new Client({
      name,
      token,
      room,
      // The queue starts at an id no message will carry: a gap placed at its start
      // (a cursor from before a restart) then never shares an id with a message.
      queue: new ClientQueue(this.options.maxQueue, this.#nextId(now), this.#now),
      newBucket: this.#newBucket,
      now,
      resumable,
    });
    this.#clients.set(client.key, client);
    if (token !== undefined) this.#byToken.set(token, client);
    this.emit("session", client);
    this.join(client, room);
    return client;
  }

  /** Joins a room (and makes it current). Presence notices only in rooms within --presence-limit. */
  join(client: Client, roomName: string): Room {
    const name = checkRoom(roomName);
    const previous = client.currentRoom;
    client.currentRoom = name;
    let room = this.#rooms.get(name);
    if (room?.members.has(client)) {
      // Only a change is news for a store: a poll naming the room it is in changes nothing.
      if (previous !== name) this.emit("room-current", client, name);
      return room;
    }
    if (!room) {
      room = new Room(name, this.options.history);
      this.#rooms.set(name, room);
      this.emit("room", room);
    }
    room.members.add(client);
    client.rooms.add(name);
    this.emit("room-join", client, name);
    if (room.members.size <= this.options.presenceLimit) {
      this.#publish({ type: "join", room: name, from: client.name, text: "" }, room.members, room);
    }
    return room;
  }

  /** Leaves one room; the notice reaches the leaver too, as confirmation. */
  leave(client: Client, roomName: string): void {
    const room = this.#rooms.get(roomName);
    if (!room?.members.has(client)) throw new ChatError("not_in_room");
    if (room.members.size <= this.options.presenceLimit) {
      this.#publish({ type: "leave", room: room.name, from: client.name, text: "" }, room.members, room);
    }
    room.members.delete(client);
    client.rooms.delete(room.name);
    this.emit("room-leave", client, room.name);
    // An empty room is forgotten with its history: rooms cannot pile up without members.
    if (room.members.size === 0) this.#rooms.delete(room.name);
    if (client.currentRoom === room.name) client.currentRoom = [...client.rooms].at(-1) ?? DEFAULT_ROOM;
    // A store (--data-dir) keeps the history of a room forgotten here.
    if (room.members.size === 0) this.emit("room-end", room);
  }

  /** Ends a session: leaves its rooms, frees its name and token, wakes its transports so they finish. */
  endSession(client: Client, reason: EndReason): void {
    if (client.ended) return;
    for (const room of [...client.rooms]) this.leave(client, room);
    client.ended = true;
    this.#clients.delete(client.key);
    if (client.token !== undefined) this.#byToken.delete(client.token);
    this.emit("session-end", client, reason);
    this.emit(client.wakeEvent);
  }

  /**
   * Refuses what post() would refuse for any sender: bad text, room or command
   * argument, an unknown recipient. The seed endpoint asks first, so a refused
   * post from a new name does not register the name on its way to the 4xx.
   */
  checkPost(input: PostInput): void {
    checkText(input.text, this.options.maxMessage);
    checkTxn(input.txn);
    if (input.room !== undefined) checkRoom(input.room);
    const parsed = input.to !== undefined ? { kind: "private" as const, to: input.to, text: input.text } : parseText(input.text);
    if (parsed.kind === "private") {
      checkText(parsed.text, this.options.maxMessage);
      if (!this.client(parsed.to)) throw new ChatError("unknown_recipient", `No user named ${parsed.to}.`);
    }
    if (parsed.kind === "command" && parsed.command === "join") checkRoom(parsed.argument);
  }

  /** Posts text as a client; returns the id the client is answered with. */
  post(client: Client, input: PostInput): number {
    const now = this.#now();
    const txn = checkTxn(input.txn);
    if (txn !== undefined) {
      const earlier = client.txnId(txn, now);
      if (earlier !== undefined) return earlier;
    }
    checkText(input.text, this.options.maxMessage);
    const wait = client.bucket.take();
    if (wait > 0) throw new ChatError("rate_limited", undefined, { retryAfter: wait });
    const id = this.#dispatch(client, input);
    if (txn !== undefined) client.rememberTxn(txn, id, now);
    if (txn !== undefined) this.emit("txn", client, txn, id, now);
    return id;
  }

  #dispatch(client: Client, input: PostInput): number {
    const parsed = input.to !== undefined ? { kind: "private" as const, to: input.to, text: input.text } : parseText(input.text);
    switch (parsed.kind) {
      case "command":
        return this.#runCommand(client, parsed.command, parsed.argument);
      case "private": {
        checkText(parsed.text, this.options.maxMessage);
        const room = input.room === undefined ? client.currentRoom : checkRoom(input.room);
        return this.#sendPrivate(client, room, parsed.to, parsed.text);
      }
      case "message": {
        const room = this.#roomToPost(client, input);
        return this.#publish({ type: "message", room: room.name, from: client.name, text: parsed.text }, room.members, room).id;
      }
    }
  }

  #roomToPost(client: Client, input: PostInput): Room {
    const name = input.room === undefined ? client.currentRoom : checkRoom(input.room);
    const room = this.#rooms.get(name);
    if (room?.members.has(client)) return room;
    if (!input.autoJoin) throw new ChatError("not_in_room", `You are not in ${name}: join it first.`);
    return this.join(client, name);
  }

  #sendPrivate(from: Client, room: string, toName: string, text: string): number {
    const to = this.client(toName);
    if (!to) throw new ChatError("unknown_recipient", `No user named ${toName}.`);
    const recipients = to === from ? [from] : [to, from];
    return this.#publish({ type: "private", room, from: from.name, to: to.name, text }, recipients).id;
  }

  #runCommand(client: Client, command: string, argument: string): number {
    switch (command) {
      case "who": {
        const room = this.#rooms.get(client.currentRoom);
        const names = room?.members.has(client) ? room.memberNames() : [];
        return this.#system(client, names.length ? `members of ${client.currentRoom}: ${names.join(", ")}` : "you are in no room");
      }
      case "rooms":
        return this.#system(client, `rooms: ${this.rooms().map((r) => `${r.name} (${r.members})`).join(", ") || "none"}`);
      case "join": {
        const room = this.join(client, argument);
        return this.#system(client, `you are in ${room.name}`);
      }
      case "leave": {
        const room = client.currentRoom;
        if (!client.rooms.has(room)) return this.#system(client, "you are in no room");
        this.leave(client, room);
        return this.#system(client, `you left ${room}`);
      }
      default:
        return this.#system(client, `unknown command /${command}; try /who, /rooms, /join ROOM, /leave, @NAME TEXT`);
    }
  }

  /** An answer to a command: to the one client only, never into history. */
  #system(client: Client, text: string): number {
    const envelope = this.#publish({ type: "system", room: client.currentRoom, from: "", text }, [client]);
    // "message" does not say whom a system answer went to; a store needs it to restore the queue.
    this.emit("system", client, envelope);
    return envelope.id;
  }

  #nextId(now: number): number {
    return (this.#lastId = Math.max(this.#lastId + 1, now * 1000));
  }

  /** Assigns the next id, keeps room history, enqueues to every recipient and wakes it. */
  #publish(fields: Omit<ChatMessage, "id" | "ts">, recipients: Iterable<Client>, room?: Room): Envelope {
    const now = this.#now();
    const id = this.#nextId(now);
    const envelope = new Envelope({ id, ...fields, ts: now });
    room?.remember(envelope);
    let delivered = 0;
    for (const client of recipients) {
      const dropped = client.queue.push(envelope);
      if (dropped > 0) this.emit("dropped", client, "queue_full", dropped);
      this.emit(client.wakeEvent);
      delivered++;
    }
    this.emit("message", envelope, delivered);
    return envelope;
  }

  /**
   * Acknowledges by cursor (spec §5) and says where the client stands. A cursor
   * above anything issued is clamped, so a forged one cannot swallow future messages.
   */
  resume(client: Client, cursor: number): void {
    const since = client.queue.since;
    client.queue.resumeFrom(Math.min(cursor, this.#lastId));
    if (client.queue.since !== since) this.emit("ack", client);
  }

  /** The client has everything up to this id (its answer was completely written). */
  ack(client: Client, upTo: number): void {
    const since = client.queue.since;
    client.queue.ack(upTo);
    if (client.queue.since !== since) this.emit("ack", client);
  }

  /**
   * The cursor a client should send next after receiving `entries`: the last
   * id it got, or, with nothing queued, the newest id (nothing below it is owed).
   */
  cursorAfter(client: Client, entries: readonly Envelope[]): number {
    if (entries.length > 0) return entries[entries.length - 1]!.id;
    return client.queue.length === 0 ? this.#lastId : client.queue.since;
  }

  /**
   * Calls `onWake` every time the client's queue gains entries or its session
   * ends, until the returned function is called: held polls, streams, connections.
   */
  subscribe(client: Client, onWake: () => void): void {
    this.on(client.wakeEvent, onWake);
  }

  /** Stops calling `onWake`. */
  unsubscribe(client: Client, onWake: () => void): void {
    this.off(client.wakeEvent, onWake);
  }

  /** A poll, stream or connection opens: the client is present and does not expire while it lasts. */
  attach(client: Client): void {
    client.consumers++;
    client.lastSeen = this.#now();
  }

  detach(client: Client): void {
    client.consumers--;
    client.lastSeen = this.#now();
  }

  touch(client: Client): void {
    client.lastSeen = this.#now();
  }

  /** Ends sessions that had no poll, stream or connection for --session-ttl. */
  sweep(): void {
    const cutoff = this.#now() - this.options.sessionTtlMs;
    for (const client of [...this.#clients.values()]) {
      if (client.consumers === 0 && client.lastSeen <= cutoff) this.endSession(client, "expired");
    }
  }

  rooms(): { name: string; members: number }[] {
    return [...this.#rooms.values()]
      .map((r) => ({ name: r.name, members: r.members.size }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  room(name: string): Room | undefined {
    return this.#rooms.get(checkRoom(name));
  }

  /**
   * Puts back what a store saved, before serving: sessions with their queues
   * and rooms, and the history of rooms that have members. Emits nothing, so a
   * store does not log it again. Each session gets a fresh --session-ttl to come back.
   */
  restore(sessions: Iterable<RestoredSession>, history: ReadonlyMap<string, readonly Envelope[]>): void {
    const now = this.#now();
    for (const s of sessions) {
      const client = new Client({ name: s.name, token: s.token, room: s.currentRoom, queue: s.queue, newBucket: this.#newBucket, now });
      this.#clients.set(client.key, client);
      if (client.token !== undefined) this.#byToken.set(client.token, client);
      for (const [txn, id, at] of s.txns) client.rememberTxn(txn, id, at);
      for (const name of s.rooms) {
        let room = this.#rooms.get(name);
        if (!room) {
          room = new Room(name, this.options.history);
          for (const envelope of history.get(name) ?? []) room.remember(envelope);
          this.#rooms.set(name, room);
        }
        room.members.add(client);
        client.rooms.add(name);
      }
    }
  }

  /** Stops the sweeper; sessions stay as they are (a store may save them). */
  close(): void {
    clearInterval(this.#sweeper);
  }
}
