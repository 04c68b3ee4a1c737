import type { Session } from "./session.js";
import type { HistoryBudget } from "./history-budget.js";
import type { Envelope } from "./message.js";
import type { ChatError } from "./errors.js";
import { TokenBucket } from "./rate-limiter.js";
import type { HubOptions, JoinOptions, PostInput, RestoredSession, RestoredTxn, SessionRequest } from "./hub-types.js";
import { emptyTables, type HubTables } from "./hub-tables.js";
import { restore } from "./restore.js";
import type { Room } from "./room.js";
import type { RoomPage, RoomSummary } from "./rooms.js";
import { Subscription } from "./subscription.js";
import { checkRoom } from "./validate.js";
import type { HubObserver } from "./hub-observer.js";
import { HubRecords } from "./hub-records.js";
import type { EndReason, Journal } from "./journal.js";

export type { HubOptions, Identity, JoinOptions, PostInput, RestoredSession, RestoredTxn, SessionRequest } from "./hub-types.js";
export type { EndReason } from "./journal.js";

export { DEFAULT_ROOM } from "./rooms.js";

/**
 * The chat core: sessions, rooms, ids, fan-out. It knows nothing of HTTP.
 *
 * Origin design (spec §1): a message is pushed onto the queue of every
 * member of the room, then the hub wakes that member (Session.wake), which calls
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
  /** Sessions, rooms, idempotency keys, cursors and the parts that work on them (hub-tables.ts): empty at first, and again after startOver(). */
  #t: HubTables;
  /** Ids, the journal records go to ahead of being applied, and the observers told them (hub-records.ts). */
  readonly #records: HubRecords;
  readonly #sweeps: boolean;
  /**
   * One function for every client, which makes a bucket when it first posts or
   * joins: --rate per second, bursts of twice that (at least one, or a low rate would refuse every post).
   */
  readonly #newBucket = (burst = Math.max(1, this.options.rate * 2)): TokenBucket => new TokenBucket(this.options.rate, burst, this.#now);

  constructor(options: HubOptions, opts: { now?: () => number; lastId?: number; sweep?: boolean } = {}) {
    this.options = options;
    this.#now = opts.now ?? Date.now;
    this.#records = new HubRecords(this.#now, () => this.#t);
    this.#sweeps = opts.sweep !== false;
    this.#t = this.#emptyTables(opts.lastId ?? 0);
  }

  #emptyTables(lastId: number): HubTables {
    // Ids are microsecond timestamps, bumped by one when two meet: they increase,
    // and a restarted hub (with or without a log) never issues an id again.
    this.#records.lastId = Math.max(lastId, this.#now() * 1000);
    const sweep = this.#sweeps ? () => this.sweep() : undefined;
    const hooks = { ...this.#records.hooks, newBucket: this.#newBucket, sweep, commands: this };
    return emptyTables(this.options, this.#now, this.#records.lastId, hooks);
  }

  /**
   * --redis: the store lost its data, and this replica starts over in its new epoch
   * (cluster/cluster.ts): the tables empty again, as a hub made with `lastId` has
   * them. Every session ends without a record or a notice (nothing of the old epoch
   * may reach the new one), and is woken so its transports finish: a held poll is
   * answered, a stream or TCP connection ends; the next request with its token gets 401.
   * `goesOn`: a resync instead, whose snapshot brings the sessions back: their transports say so.
   */
  startOver(lastId: number, goesOn = false): void {
    const ended = [...this.#t.sessions.values()];
    this.#t.presence.close();
    this.#t = this.#emptyTables(lastId);
    for (const client of ended) {
      client.ended = true;
      client.goesOn = goesOn && client.resumable; // a TCP name's session ends with its connection
      client.wake();
    }
  }

  /** The newest id issued, delivered or not: for a store. Clients are told deliveredUpTo. */
  get lastId(): number {
    return this.#records.lastId;
  }

  /** The newest id delivered to queues: the most a client may be told or acknowledge. */
  get deliveredUpTo(): number {
    return this.#t.cursors.deliveredUpTo;
  }

  /** --max-history-bytes across all rooms: a store's kept rooms count in it too. */
  get historyBudget(): HistoryBudget {
    return this.#t.rooms.historyBudget;
  }

  get sessionCount(): number {
    return this.#t.sessions.size;
  }
  sessions(): IterableIterator<Session> {
    return this.#t.sessions.values();
  }

  session(name: string): Session | undefined {
    return this.#t.sessions.byName(name);
  }

  sessionByToken(token: string | undefined): Session | undefined {
    return this.#t.sessions.byToken(token);
  }

  /** The session a name-based request (the seed endpoint, the TCP gateway, a name the host vouches for) acts as (session-factory.ts). */
  sessionForName(name: string, opts: SessionRequest & { room?: string }): Session {
    return this.#t.factory.forName(name, opts);
  }

  /** POST /api/join: a new session with a token, or, with the token of an existing one, one more room. */
  joinWithToken(name: string, room: string, opts: JoinOptions = {}): Session {
    return this.#t.factory.withToken(name, room, opts);
  }

  /** Joins a room and makes it current, with a presence notice (membership.ts). Throws with nothing changed past a cap. */
  join(client: Session, roomName: string): Room {
    return this.#t.membership.join(client, roomName);
  }

  /** Leaves one room; the notice reaches the leaver too, as confirmation. */
  leave(client: Session, roomName: string): void {
    this.#t.membership.leave(client, roomName);
  }

  /** Ends a session: leaves its rooms, frees its name and token, wakes its transports so they finish. */
  endSession(client: Session, reason: EndReason): void {
    this.#t.membership.end(client, reason);
  }

  /**
   * An identity source is set (spec §4): every session no proof made (before the source was set: a store
   * brought it back) ends now, with its leave notices as every end has, so a name is held only by a proof from here on.
   */
  endUnproven(): void {
    for (const client of [...this.#t.sessions.values()]) if (!client.proven) this.endSession(client, "expired");
  }

  /** Whether a session no proof made lives: a cluster's process that starts with an identity source ends them by the log (cluster.ts). */
  get hasUnproven(): boolean {
    for (const client of this.#t.sessions.values()) if (!client.proven) return true;
    return false;
  }

  /** The seed endpoint's post, checked whole before anything changes (posting.ts). */
  postAs(name: string, input: PostInput, opts: SessionRequest = {}): number {
    return this.#t.posting.postAs(name, input, opts);
  }

  /**
   * Seconds until `client` may post at time `at` (0: now): its own bucket and its address's (--rate-per-ip),
   * read, never moved. A --redis pre-check asks it at its own clock (cluster/pre-checks.ts); posting asks the buckets themselves.
   */
  postWaitAt(client: Session, at: number): number {
    return Math.max(client.postWaitAt(at), this.#t.sessions.addressRate.postWaitAt(client.address, at));
  }

  /**
   * What the seed endpoint making a session for `address` would be refused for at time `at`, changing nothing, in
   * posting's order (posting.ts): with a post, a retry of its key passes, else the address's bucket (429 rate_limited),
   * its share of keys; then the caps on sessions (503 server_full, 429 too_many_sessions). A --redis pre-check asks it.
   */
  newSessionRefusal(name: string, address: string | undefined, at: number, post?: { txn: string | undefined }): ChatError | undefined {
    return this.#t.posting.newSessionRefusal(name, address, at, post);
  }

  /** The post buckets of creating addresses, as [address, [tokens, at]]: a --redis snapshot saves them (cluster/snapshot-lines.ts). */
  addressBuckets(): Generator<[string, [number, number]]> {
    return this.#t.sessions.addressRate.buckets();
  }

  /** Puts back an address's post bucket a snapshot saved, after its sessions are restored. */
  restoreAddressBucket(address: string, state: readonly [number, number]): void {
    this.#t.sessions.addressRate.setBucket(address, state);
  }

  /** Posts text as a client; returns the id the client is answered with. */
  post(client: Session, input: PostInput): number {
    return this.#t.posting.post(client, input);
  }

  /** Records go to this journal from here on (a store that writes ahead: --data-dir), which refuses what it cannot write. */
  useJournal(journal: Journal): void {
    this.#records.useJournal(journal);
  }

  /** Metrics and the log: told every record as it is made, and every drop. */
  observe(observer: HubObserver): void {
    this.#records.observe(observer);
  }

  /** Acknowledges by cursor (spec §5), clamped to what was delivered (cursors.ts). */
  resume(client: Session, cursor: number): void {
    this.#t.cursors.resume(client, cursor);
  }

  /** The client has everything up to this id (its answer was completely written). */
  ack(client: Session, upTo: number): void {
    this.#t.cursors.ack(client, upTo);
  }

  /** The cursor a client should send next after receiving `entries`. */
  cursorAfter(client: Session, entries: readonly Envelope[]): number {
    return this.#t.cursors.cursorAfter(client, entries);
  }

  /**
   * A poll, stream or connection starts reading the client's queue: after
   * `cursor` (acknowledging what is at or below it), or where it stands. The
   * one way a transport reads a queue, waits on it and counts as presence.
   */
  open(client: Session, { cursor }: { cursor?: number | undefined } = {}): Subscription {
    if (cursor !== undefined) this.resume(client, cursor);
    return new Subscription(this, client);
  }

  /** Presence (presence.ts): counted by a Subscription while it waits. */
  holdPresence(client: Session): void {
    this.#t.presence.hold(client);
  }

  releasePresence(client: Session): void {
    this.#t.presence.release(client);
  }

  /** A request of the session counts as presence: its --session-ttl starts again. */
  markPresent(client: Session): void {
    this.#t.presence.seen(client);
  }

  /** Ends sessions that had no poll, stream or connection for --session-ttl, and forgets idempotency keys past their window. */
  sweep(): void {
    for (const client of this.#t.presence.expired(this.#t.sessions.values())) this.endSession(client, "expired");
    this.#t.txns.forgetExpired(this.#now());
  }

  get roomCount(): number {
    return this.#t.rooms.size;
  }
  /** Every room with its member count, in name order: for a store and tests. Clients get pages (roomsPage). */
  rooms(): RoomSummary[] {
    return this.#t.rooms.page(undefined, Infinity).rooms;
  }

  /** The id a post by this name with this key answered, while in its window (spec §5). */
  txnId(nameKey: string, txn: string): number | undefined {
    return this.#t.txns.get(nameKey, txn, this.#now());
  }

  /** What the key table would refuse a post with key `txn` for (posting.ts), changing nothing; `now`: when it would be judged. */
  txnRefusal(name: string, client: Session | undefined, address: string | undefined, txn: string | undefined, now = this.#now()): ChatError | undefined {
    return this.#t.posting.txnRefusal(name, client, address, txn, now);
  }

  /** Idempotency keys in their window, oldest first, as [name key, txn, id, at, address]: what a store saves. */
  txnKeys(now: number): Generator<RestoredTxn> {
    return this.#t.txns.live(now);
  }

  /** GET /api/rooms: up to `limit` rooms named after `after`, in name order, and where the next page starts. */
  roomsPage(after: string | undefined, limit: number): RoomPage {
    return this.#t.rooms.page(after, limit);
  }

  room(name: string): Room | undefined {
    return this.#t.rooms.get(checkRoom(name));
  }

  /** The room whose history GET /api/rooms/NAME/history pages: one with members, or an emptied one whose history is kept. */
  roomWithHistory(name: string): Room | undefined {
    return this.#t.rooms.withHistory(checkRoom(name));
  }

  /** Rooms without members whose history is kept: what a store's snapshot writes besides live rooms. */
  keptRooms(): IterableIterator<Room> {
    return this.#t.rooms.kept();
  }

  /** Puts back what a store saved, before serving (restore.ts); ids continue above `lastId`. Records nothing. */
  restore(sessions: Iterable<RestoredSession>, history: ReadonlyMap<string, readonly Envelope[]>, txns: Iterable<RestoredTxn> = [], lastId = 0): void {
    this.#records.lastId = Math.max(this.#records.lastId, lastId);
    this.#t.cursors.delivered(lastId);
    restore(this.#t.parts, sessions, history, txns);
  }

  /** Stops the sweeper (`sweep: false`: there is none); sessions stay as they are (a store may save them). */
  close(): void {
    this.#t.presence.close();
  }
}
