import { Client } from "./client.js";
import { ClientQueue } from "./client-queue.js";
import { runCommand } from "./commands/run-command.js";
import { ChatError } from "./errors.js";
import { HistoryBudget } from "./history-budget.js";
import { Envelope, type ChatMessage } from "./message.js";
import { TokenBucket } from "./rate-limiter.js";
import type { HubOptions, JoinOptions, NewSession, PostInput, RestoredSession, RestoredTxn, SessionRequest } from "./hub-types.js";
import { planPost, type PostPlan, type Sender } from "./post-plan.js";
import type { Room } from "./room.js";
import { DEFAULT_ROOM, fallbackRoom, Rooms, type RoomPage, type RoomSummary } from "./rooms.js";
import { Presence } from "./presence.js";
import { Sessions } from "./sessions.js";
import { Subscription } from "./subscription.js";
import { TxnKeys } from "./txn-keys.js";
import { checkRoom, checkText, checkTxn, nameKey } from "./validate.js";
import type { HubObserver } from "./hub-observer.js";
import { MemoryJournal, type EndReason, type Journal, type MessageRecord, type SessionRecord } from "./journal.js";

export type { HubOptions, JoinOptions, PostInput, RestoredSession, RestoredTxn, SessionRequest } from "./hub-types.js";
export type { EndReason } from "./journal.js";

export { DEFAULT_ROOM } from "./rooms.js";

/**
 * The chat core: sessions, rooms, ids, fan-out. It knows nothing of HTTP.
 *
 * Origin design (spec §1): a message is pushed onto the queue of every
 * member of the room, then the hub wakes that member (Client.wake), which calls
 * the Subscriptions of its held polls, SSE streams and TCP connections (hub.open).
 * One wake per recipient, not one event all waiters hear: a post to a room of 5 wakes 5, not 10,000.
 *
 * Every change is a typed record (journal.ts) written to the journal ahead:
 * a message is applied (history, queues, wakes) once its record is durable.
 * Observers (metrics, the log: hub-observer.ts) are told each record as it is made.
 */
export class Hub {
  readonly options: HubOptions;
  readonly #now: () => number;
  readonly #sessions: Sessions;
  readonly #presence: Presence;
  readonly #rooms: Rooms;
  /** Idempotency keys of posts, by name: they outlive sessions (spec §5). */
  readonly #txns = new TxnKeys();
  /** The newest id issued: a store writes it so ids never repeat. Never told to a client: see #deliveredUpTo. */
  #lastId: number;
  /**
   * The newest id delivered to queues. Messages are applied in id order (journal.ts),
   * so no message at or below it is still on its way: no cursor a client is told or
   * acknowledges passes it. An id whose delivery was dropped is passed by the next one.
   */
  #deliveredUpTo: number;
  /** Where records go ahead of being applied: memory, or with --data-dir the log (nothing is accepted when it cannot be written). */
  #journal: Journal = new MemoryJournal();
  readonly #observers: HubObserver[] = [];
  /**
   * One function for every client, which makes a bucket when it first posts or
   * joins: --rate per second, bursts of twice that (at least one, or a low rate would refuse every post).
   */
  readonly #newBucket = (burst = Math.max(1, this.options.rate * 2)): TokenBucket => new TokenBucket(this.options.rate, burst, this.#now);

  constructor(options: HubOptions, opts: { now?: () => number; lastId?: number } = {}) {
    this.#journal.register(this.#apply);
    this.options = options;
    this.#now = opts.now ?? Date.now;
    // Ids are microsecond timestamps, bumped by one when two meet: they increase,
    // and a restarted hub (with or without a log) never issues an id again.
    this.#lastId = Math.max(opts.lastId ?? 0, this.#now() * 1000);
    // What a store restores is in queues already.
    this.#deliveredUpTo = this.#lastId;
    // A slot frees when a session expires: that is how long a refused client should wait.
    const retryAfterSeconds = Math.ceil(options.sessionTtlMs / 1000);
    this.#rooms = new Rooms({ ...options, historyBudget: new HistoryBudget(options.maxHistoryBytes), retryAfterSeconds });
    this.#sessions = new Sessions({ maxSessions: options.maxSessions, maxSessionsPerIp: options.maxSessionsPerIp, retryAfterSeconds });
    this.#presence = new Presence({ sessionTtlMs: options.sessionTtlMs, now: this.#now, sweep: () => this.sweep() });
  }

  /** The newest id issued, delivered or not: for a store. Clients are told deliveredUpTo. */
  get lastId(): number {
    return this.#lastId;
  }

  /** The newest id delivered to queues: the most a client may be told or acknowledge. */
  get deliveredUpTo(): number {
    return this.#deliveredUpTo;
  }

  /** --max-history-bytes across all rooms: a store's kept rooms count in it too. */
  get historyBudget(): HistoryBudget {
    return this.#rooms.historyBudget;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  clients(): IterableIterator<Client> {
    return this.#sessions.values();
  }

  client(name: string): Client | undefined {
    return this.#sessions.byName(name);
  }

  clientByToken(token: string | undefined): Client | undefined {
    return this.#sessions.byToken(token);
  }

  /**
   * The client a name-based request (the seed endpoint, the TCP gateway) acts as.
   * A name claimed with a token answers only to that token; an unclaimed name is open, like the seed.
   */
  clientForName(name: string, opts: SessionRequest & { room?: string }): Client {
    const existing = this.#sessions.authorize(name, opts);
    const room = opts.room === undefined ? undefined : checkRoom(opts.room);
    if (!existing) return this.#createClient(name, room ?? DEFAULT_ROOM, { address: opts.address });
    if (room !== undefined) this.join(existing, room);
    return existing;
  }

  /**
   * POST /api/join: a new session with a token, or, with the token of an existing one, one more room.
   * A name anyone is using (through any transport) is taken until its session ends.
   */
  joinWithToken(name: string, room: string, opts: JoinOptions = {}): Client {
    const own = this.clientByToken(opts.token);
    if (own && own.key === nameKey(name)) {
      this.join(own, room);
      return own;
    }
    if (this.#sessions.isTaken(name)) throw new ChatError("name_taken", `${name} is taken.`);
    return this.#createClient(name, room, { token: this.#sessions.newToken(), resumable: opts.resumable, address: opts.address });
  }

  /** A new session in `room`; every cap is checked first, so a refusal leaves nothing behind. */
  #createClient(name: string, room: string, { token, resumable = true, address }: NewSession): Client {
    this.#journal.checkWritable();
    room = checkRoom(room);
    this.#rooms.checkJoins(undefined, [room]);
    this.#sessions.checkRoomFor(address);
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
      address,
    });
    this.#sessions.add(client);
    this.#record({ kind: "session", session: client });
    this.join(client, room);
    return client;
  }

  /**
   * Joins a room (and makes it current). Presence notices only in rooms within
   * --presence-limit. Past a cap or the join budget it throws with nothing changed;
   * a room the client is in costs nothing.
   */
  join(client: Client, roomName: string): Room {
    const name = checkRoom(roomName);
    let room = this.#rooms.get(name);
    if (!room?.members.has(client) || client.currentRoom !== name) this.#journal.checkWritable();
    if (room?.members.has(client)) {
      // Only a change is news for a store: a poll naming the room it is in changes nothing.
      if (client.currentRoom !== name) {
        client.currentRoom = name;
        this.#record({ kind: "current", session: client, room: name });
      }
      return room;
    }
    this.#rooms.checkJoins(client, [name]);
    client.joinBudget.take();
    client.currentRoom = name;
    room ??= this.#rooms.create(name);
    room.members.add(client);
    client.rooms.add(name);
    this.#record({ kind: "join", session: client, room: name });
    if (room.members.size <= this.options.presenceLimit) {
      this.#publish({ type: "join", room: name, from: client.name, text: "" }, room.members, room);
    }
    return room;
  }

  /** Leaves one room; the notice reaches the leaver too, as confirmation. */
  leave(client: Client, roomName: string): void {
    this.#journal.checkWritable();
    this.#leave(client, roomName);
  }

  /** A session that ends (expiry too) leaves whether or not a store can write it. */
  #leave(client: Client, roomName: string): void {
    const room = this.#rooms.get(roomName);
    if (!room?.members.has(client)) throw new ChatError("not_in_room");
    if (room.members.size <= this.options.presenceLimit) {
      this.#publish({ type: "leave", room: room.name, from: client.name, text: "" }, room.members, room);
    }
    room.members.delete(client);
    client.rooms.delete(room.name);
    this.#record({ kind: "leave", session: client, room: room.name });
    // An empty room is forgotten, its history kept (bounded): rooms cannot pile up without members.
    if (room.members.size === 0) this.#rooms.empty(room);
    if (client.currentRoom === room.name) client.currentRoom = fallbackRoom(client.rooms);
  }

  /** Ends a session: leaves its rooms, frees its name and token, wakes its transports so they finish. */
  endSession(client: Client, reason: EndReason): void {
    if (client.ended) return;
    for (const room of [...client.rooms]) this.#leave(client, room);
    client.ended = true;
    this.#sessions.remove(client);
    this.#record({ kind: "end", session: client, reason });
    client.wake();
  }

  /**
   * The seed endpoint's post (spec §3), in one call: checks everything (the
   * name's token, text, txn, room, recipient, command, rate, room caps and join
   * budget, session caps), then makes the session if the name has none, joins
   * `room=` and posts. A refused post changes nothing: no session, no room, no message.
   */
  postAs(name: string, input: PostInput, opts: SessionRequest = {}): number {
    const existing = this.#sessions.authorize(name, opts);
    const room = input.room === undefined ? undefined : checkRoom(input.room);
    const first = room ?? (existing ? undefined : DEFAULT_ROOM);
    const id = this.#submit({ name, client: existing, first }, { ...input, room, autoJoin: true }, opts.address);
    if (existing) this.touch(existing);
    return id;
  }

  /** Posts text as a client; returns the id the client is answered with. */
  post(client: Client, input: PostInput): number {
    return this.#submit({ name: client.name, client, first: undefined }, input, undefined);
  }

  /** Checks a post whole, then does it: a sender without a session gets one only now. */
  #submit(sender: Sender, input: PostInput, address: string | undefined): number {
    this.#journal.checkWritable();
    const now = this.#now();
    const txn = checkTxn(input.txn);
    if (txn !== undefined) {
      const earlier = this.#txns.get(nameKey(sender.name), txn, now);
      if (earlier !== undefined) return earlier;
    }
    const { client } = sender;
    checkText(input.text, this.options.maxMessage);
    // Before the text is parsed: a flood of refused lines (TCP) costs as little as it can.
    const wait = client?.bucket.wait() ?? 0;
    if (wait > 0) throw new ChatError("rate_limited", undefined, { retryAfter: wait });
    const plan = planPost(input, sender, { maxMessage: this.options.maxMessage, knows: (name) => this.client(name) !== undefined });
    this.#rooms.checkJoins(client, plan.allJoins);
    if (txn !== undefined) this.#txns.checkRoom(now);
    if (!client) this.#sessions.checkRoomFor(address);
    // Everything is checked: from here on the post happens whole.
    const from = client ?? this.#createClient(sender.name, plan.joins[0]!, { address });
    for (const room of plan.joins) this.join(from, room);
    from.bucket.take();
    const id = this.#dispatch(from, plan);
    if (txn !== undefined) {
      this.#txns.remember(from.key, txn, id, now);
      this.#record({ kind: "txn", session: from, txn, id, at: now });
    }
    return id;
  }

  #dispatch(client: Client, { parsed, room }: PostPlan): number {
    switch (parsed.kind) {
      case "command":
        return this.#system(client, runCommand(this, client, parsed.command, parsed.argument));
      case "private":
        return this.#sendPrivate(client, room, parsed.to, parsed.text);
      case "message": {
        // planPost made sure the client is in it (or joined it first).
        const target = this.#rooms.get(room);
        if (!target?.members.has(client)) throw new ChatError("not_in_room");
        return this.#publish({ type: "message", room, from: client.name, text: parsed.text }, target.members, target).id;
      }
    }
  }

  #sendPrivate(from: Client, room: string, toName: string, text: string): number {
    const to = this.client(toName);
    if (!to) throw new ChatError("unknown_recipient", `No user named ${toName}.`);
    const recipients = to === from ? [from] : [to, from];
    const keys = recipients.filter((c) => c.resumable).map((c) => c.key);
    return this.#publish({ type: "private", room, from: from.name, to: to.name, text }, recipients, undefined, keys).id;
  }

  /** An answer to a command: to the one client only, never into history. */
  #system(client: Client, text: string): number {
    return this.#publish({ type: "system", room: client.currentRoom, from: "", text }, [client], undefined, client.resumable ? [client.key] : []).id;
  }

  #nextId(now: number): number {
    return (this.#lastId = Math.max(this.#lastId + 1, now * 1000));
  }

  /**
   * Assigns the next id and journals the message; it is applied (history,
   * queues, wakes) once its record is durable: at once in memory, after the
   * batch with --data-dir, never if that write fails. `keys`: the recipients
   * that can come back after a restart, for a message that is not the room's.
   */
  #publish(fields: Omit<ChatMessage, "id" | "ts">, recipients: Iterable<Client>, room?: Room, keys?: readonly string[]): Envelope {
    const now = this.#now();
    const id = this.#nextId(now);
    const envelope = new Envelope({ id, ...fields, ts: now });
    // Who gets it is decided now, whenever it is applied.
    const record: MessageRecord = { kind: "message", envelope, room, recipients: [...recipients], keys };
    for (const observer of this.#observers) observer.record?.(record);
    this.#journal.append(record);
    return envelope;
  }

  /** Tells observers, and journals what a store needs: a session that cannot come back after a restart (TCP) is not journaled. */
  #record(record: SessionRecord): void {
    for (const observer of this.#observers) observer.record?.(record);
    if (record.session.resumable) this.#journal.append(record);
  }

  /** A durable message into its room's history and every recipient's queue, with a wake each: what journals call. */
  readonly #apply = ({ envelope, room, recipients }: MessageRecord): void => {
    // Synchronous with the pushes below: nobody sees it raised before the message is queued.
    if (envelope.id > this.#deliveredUpTo) this.#deliveredUpTo = envelope.id;
    // A room forgotten since (its last member left) is the Room kept with its history; one made again since takes it.
    if (room) (this.#rooms.get(room.name) ?? room).remember(envelope);
    for (const client of recipients) {
      const dropped = client.queue.push(envelope);
      if (dropped > 0) for (const observer of this.#observers) observer.dropped?.(client, "queue_full", dropped);
      client.wake();
    }
  };

  /** Records go to this journal from here on (a store that writes ahead: --data-dir), which refuses what it cannot write. */
  useJournal(journal: Journal): void {
    journal.register(this.#apply);
    this.#journal = journal;
  }

  /** Metrics and the log: told every record as it is made, and every drop. */
  observe(observer: HubObserver): void {
    this.#observers.push(observer);
  }

  /**
   * Acknowledges by cursor (spec §5) and says where the client stands. A cursor
   * above what has been delivered is clamped, so a forged one (or one told
   * before) cannot swallow a message still on its way (held for its batch).
   */
  resume(client: Client, cursor: number): void {
    const since = client.queue.since;
    client.queue.resumeFrom(Math.min(cursor, this.#ackable(client)));
    if (client.queue.since !== since) this.#record({ kind: "ack", session: client });
  }

  /** The client has everything up to this id (its answer was completely written). */
  ack(client: Client, upTo: number): void {
    const since = client.queue.since;
    client.queue.ack(Math.min(upTo, this.#ackable(client)));
    if (client.queue.since !== since) this.#record({ kind: "ack", session: client });
  }

  /**
   * The cursor a client should send next after receiving `entries`: the last
   * id it got, or, with nothing queued, the newest id delivered (nothing at or
   * below it is owed; a newer one may still be on its way to this queue).
   */
  cursorAfter(client: Client, entries: readonly Envelope[]): number {
    if (entries.length > 0) return entries[entries.length - 1]!.id;
    return client.queue.length === 0 ? this.#ackable(client) : client.queue.since;
  }

  /** What the client may acknowledge: what is delivered, or its queue's start when higher (no message still on its way is for a newer queue). */
  #ackable(client: Client): number {
    return Math.max(client.queue.since, this.#deliveredUpTo);
  }

  /**
   * A poll, stream or connection starts reading the client's queue: after
   * `cursor` (acknowledging what is at or below it), or where it stands. The
   * one way a transport reads a queue, waits on it and counts as presence.
   */
  open(client: Client, { cursor }: { cursor?: number | undefined } = {}): Subscription {
    if (cursor !== undefined) this.resume(client, cursor);
    return new Subscription(this, client);
  }

  /** Presence (presence.ts): counted by a Subscription while it waits. */
  attach(client: Client): void {
    this.#presence.attach(client);
  }

  detach(client: Client): void {
    this.#presence.detach(client);
  }

  touch(client: Client): void {
    this.#presence.touch(client);
  }

  /** Ends sessions that had no poll, stream or connection for --session-ttl, and forgets idempotency keys past their window. */
  sweep(): void {
    for (const client of this.#presence.expired(this.#sessions.values())) this.endSession(client, "expired");
    this.#txns.forgetExpired(this.#now());
  }

  get roomCount(): number {
    return this.#rooms.size;
  }

  /** Every room with its member count, in name order: for a store and tests. Clients get pages (roomsPage). */
  rooms(): RoomSummary[] {
    return this.#rooms.page(undefined, Infinity).rooms;
  }

  /** Idempotency keys in their window, oldest first, as [name key, txn, id, at]: what a store saves. */
  txnKeys(now: number): Generator<RestoredTxn> {
    return this.#txns.live(now);
  }

  /** GET /api/rooms: up to `limit` rooms named after `after`, in name order, and where the next page starts. */
  roomsPage(after: string | undefined, limit: number): RoomPage {
    return this.#rooms.page(after, limit);
  }

  room(name: string): Room | undefined {
    return this.#rooms.get(checkRoom(name));
  }

  /** The room whose history GET /api/rooms/NAME/history pages: one with members, or an emptied one whose history is kept. */
  roomWithHistory(name: string): Room | undefined {
    return this.#rooms.withHistory(checkRoom(name));
  }

  /** Rooms without members whose history is kept: what a store's snapshot writes besides live rooms. */
  keptRooms(): IterableIterator<Room> {
    return this.#rooms.kept();
  }

  /**
   * Puts back what a store saved, before serving: sessions with their queues
   * and rooms, and the history of every room (kept for those without members). Emits nothing, so a
   * store does not log it again. Each session gets a fresh --session-ttl to come back.
   * Never more than the caps (they may have been lowered since): a session keeps
   * the --max-rooms-per-session rooms it joined last, and no room is made past --max-rooms.
   * Idempotency keys come back apart from sessions: a key of a session that ended still counts.
   */
  restore(sessions: Iterable<RestoredSession>, history: ReadonlyMap<string, readonly Envelope[]>, txns: Iterable<RestoredTxn> = []): void {
    const now = this.#now();
    for (const s of sessions) {
      const client = new Client({ name: s.name, token: s.token, room: s.currentRoom, queue: s.queue, newBucket: this.#newBucket, now });
      this.#sessions.add(client);
      for (const name of s.rooms.slice(-this.options.maxRoomsPerSession)) {
        let room = this.#rooms.get(name);
        if (!room) {
          if (this.#rooms.size >= this.options.maxRooms) continue;
          room = this.#rooms.create(name);
          for (const envelope of history.get(name) ?? []) room.remember(envelope);
        }
        room.members.add(client);
        client.rooms.add(name);
      }
      // As after a leave: a current room it no longer is in falls back to the last one kept.
      if (!client.rooms.has(client.currentRoom) && s.rooms.includes(client.currentRoom)) {
        client.currentRoom = fallbackRoom(client.rooms);
      }
    }
    for (const [name, envelopes] of history) if (!this.#rooms.get(name)) this.#rooms.keepHistory(name, envelopes);
    for (const [key, txn, id, at] of txns) this.#txns.remember(key, txn, id, at, now);
  }

  /** Stops the sweeper; sessions stay as they are (a store may save them). */
  close(): void {
    this.#presence.close();
  }
}
