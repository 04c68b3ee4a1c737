import { SessionQueue } from "./session-queue.js";
import { TokenBucket } from "./rate-limiter.js";
import type { Waker } from "./subscription.js";

/** Room joins a session may make at once before they are paced at --rate per second (spec §8). */
export const JOIN_BURST = 50;
/** What a transport of a session that goes on (goesOn) tells its client as it ends. */
export const RELOADED = "the server reloaded the chat's state: connect again, your session goes on";

/** One chat session: a name, its rooms, its queue. Transports come and go; the session stays until it expires. */
export class Session {
  readonly name: string;
  readonly key: string;
  readonly token: string | undefined;
  readonly queue: SessionQueue;
  readonly rooms = new Set<string>();
  currentRoom: string;
  /** Held polls, streams and connections now open, each holding the session present (presence.ts): while above 0 it never expires. */
  presenceHolds = 0;
  /** This session's held polls, oldest first (at most 4: long-poll.ts); undefined while none is. */
  heldPolls: { answer(): void }[] | undefined;
  lastSeen: number;
  ended = false;
  /** Ended on this process only, by a resync (cluster/cluster.ts): it goes on (a TCP name's does not), and its transports say to connect again. */
  goesOn = false;
  /** False for a session that lives and dies with one connection (TCP): a store does not bring it back. */
  readonly resumable: boolean;
  /** Who created the session (clientAddress / addressKey), counted against --max-sessions-per-ip and --rate-per-ip; stores keep it. */
  readonly address: string | undefined;
  /** Made for a name the host vouched for (a JWT, the authenticate hook): only such a session answers to a proof (sessions.ts). */
  readonly proven: boolean;
  /** The rooms it may ever join (the rooms claim of the JWT that made it, in its order), or undefined for any (rooms.ts checkJoins). */
  readonly allowedRooms: ReadonlySet<string> | undefined;
  /** Made on the first post: a client that only polls never needs one (see `bucket`). */
  #bucket: TokenBucket | undefined;
  /** Made on the first join, as the post bucket is. */
  #joinBudget: TokenBucket | undefined;
  readonly #newBucket: (burst?: number) => TokenBucket;
  /**
   * Who waits on this session's queue (held polls, streams, connections): the hub
   * calls wake() here for each message it queues, so a post to a room of 5 wakes 5.
   * One waker is kept as is (the usual case), an array only for more.
   */
  #wakers: Waker | Waker[] | undefined;

  constructor(init: {
    name: string;
    token: string | undefined;
    room: string;
    queue: SessionQueue;
    /** Makes a bucket at --rate per second, bursts of `burst` (default: twice the rate), when the client first needs it. */
    newBucket: (burst?: number) => TokenBucket;
    now: number;
    resumable?: boolean;
    address?: string | undefined;
    allowedRooms?: ReadonlySet<string> | undefined;
    proven?: boolean | undefined;
  }) {
    this.proven = init.proven ?? false;
    this.allowedRooms = init.allowedRooms;
    this.resumable = init.resumable ?? true;
    this.address = init.address;
    this.name = init.name;
    this.key = init.name.toLowerCase();
    this.token = init.token;
    this.currentRoom = init.room;
    this.queue = init.queue;
    init.queue.holder = this;
    this.#newBucket = init.newBucket;
    this.lastSeen = init.now;
  }

  /** The post rate limit. A bucket made at the first post is full, as one made with the session would be by then. */
  get bucket(): TokenBucket {
    return (this.#bucket ??= this.#newBucket());
  }

  /** Seconds until it may post at `at` (0: now), changing nothing and making no bucket (a --redis pre-check). */
  postWaitAt(at: number): number {
    return this.#bucket?.waitAt(at) ?? 0;
  }

  /** Room joins (spec §8): bursts of JOIN_BURST, then --rate per second; joining a room one is in takes none. */
  get joinBudget(): TokenBucket {
    return (this.#joinBudget ??= this.#newBucket(JOIN_BURST));
  }

  /** The buckets made so far, as [tokens, at]: for a snapshot of --redis (undefined: not made yet, full when it is). */
  get bucketStates(): { post?: [number, number]; join?: [number, number] } {
    return { ...(this.#bucket && { post: this.#bucket.state }), ...(this.#joinBudget && { join: this.#joinBudget.state }) };
  }

  set bucketStates({ post, join }: { post?: [number, number]; join?: [number, number] }) {
    if (post) this.bucket.state = post;
    if (join) this.joinBudget.state = join;
  }

  /** Wakes everyone waiting on this session: its queue gained entries, or it ended. */
  wake(): void {
    const wakers = this.#wakers;
    if (wakers === undefined) return;
    if (!Array.isArray(wakers)) return wakers.wake();
    // No copy: a Subscription's wake only queues its function, it changes no list here.
    for (const waker of wakers) waker.wake();
  }

  addWaker(waker: Waker): void {
    const wakers = this.#wakers;
    if (wakers === undefined) this.#wakers = waker;
    else if (Array.isArray(wakers)) wakers.push(waker);
    else this.#wakers = [wakers, waker];
  }

  removeWaker(waker: Waker): void {
    const wakers = this.#wakers;
    if (wakers === waker) this.#wakers = undefined;
    else if (Array.isArray(wakers)) {
      const at = wakers.indexOf(waker);
      if (at >= 0) wakers.splice(at, 1);
      if (wakers.length === 1) this.#wakers = wakers[0];
    }
  }

  /** How many wait on this session now: for tests and metrics. */
  get wakerCount(): number {
    const wakers = this.#wakers;
    return wakers === undefined ? 0 : Array.isArray(wakers) ? wakers.length : 1;
  }
}
