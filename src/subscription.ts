import type { Session } from "./session.js";
import type { Envelope } from "./message.js";

/** What a Subscription needs of the hub: acknowledgements clamped to what was delivered, and presence. */
export interface SubscriptionHost {
  ack(client: Session, upTo: number): void;
  cursorAfter(client: Session, entries: readonly Envelope[]): number;
  /** This subscription holds the session present while it lasts (presence.ts). */
  holdPresence(client: Session): void;
  releasePresence(client: Session): void;
}

/** Told when a session's queue gains entries or the session ends: the Session keeps these and the hub calls them. */
export interface Waker {
  wake(): void;
}

/** What a subscription calls when woken: a function, or an object that is its own target (a held poll: no closure). */
export type WakeTarget = (() => void) | { woken(): void };

/** Subscriptions woken in this turn, run together once its publishes are done (one microtask for all). */
let woken: Subscription[] = [];

function runWoken(): void {
  const now = woken;
  woken = [];
  for (let i = 0; i < now.length; i++) {
    try {
      now[i]!.runWake();
    } catch (error) {
      // One failing reader (a bug) must not leave the others asleep: they run on the next microtask.
      const rest = now.slice(i + 1);
      if (rest.length > 0) {
        if (woken.length === 0) queueMicrotask(runWoken);
        woken = rest.concat(woken);
      }
      throw error;
    }
  }
}

/**
 * One reader of a session's queue (a long-poll, an SSE stream, a TCP
 * connection): what is queued, acknowledging it, and being woken when more
 * comes. Made by `hub.open(client, { cursor })`, which resumes after the cursor.
 * It is the Waker the session calls, so waiting costs this one object and the
 * caller's function, nothing more. While waiting (onWake until close) it counts
 * as the session's presence: the session does not expire.
 */
export class Subscription implements Waker {
  readonly #host: SubscriptionHost;
  readonly #client: Session;
  #onWake: WakeTarget | undefined;
  /** Already in `woken` for this turn: however many messages it gets, it runs once. */
  #queued = false;

  constructor(host: SubscriptionHost, client: Session) {
    this.#host = host;
    this.#client = client;
  }

  /** The session ended (left, expired, shut down): nothing more will be queued. */
  get ended(): boolean {
    return this.#client.ended;
  }

  /** Where the queue starts: every message for the session above this id is queued (a cursor that loses nothing). */
  get since(): number {
    return this.#client.queue.since;
  }

  /** How many entries are queued now (without copying them). */
  get queued(): number {
    return this.#client.queue.length;
  }

  /** What is queued for this session, oldest first (a copy); with `after`, only entries newer than that id. */
  pending(after?: number): Envelope[] {
    return after === undefined ? this.#client.queue.peek() : this.#client.queue.after(after);
  }

  /** The cursor to tell the client after it was handed `entries` (hub.cursorAfter). */
  cursorAfter(entries: readonly Envelope[]): number {
    return this.#host.cursorAfter(this.#client, entries);
  }

  /**
   * The client has everything up to `id` (its bytes were handed over). With `keep`,
   * the newest `keep` of those entries (up to `id`) stay queued anyway, for a reconnect to get again.
   */
  ack(id: number, keep?: number): void {
    this.#host.ack(this.#client, keep === undefined ? id : this.#client.queue.idBefore(id, keep));
  }

  /**
   * Calls `fn` after every turn in which the queue gained entries or the session
   * ended, until close(): after the turn's publishes, not at the first, so a post
   * that also joins its sender (join notice, then message) is seen whole, once
   * per turn however many messages came. One function per subscription.
   */
  onWake(target: WakeTarget): void {
    if (this.#onWake !== undefined) throw new Error("a subscription has one onWake");
    this.#onWake = target;
    this.#client.addWaker(this);
    this.#host.holdPresence(this.#client);
  }

  /** Called by the session (Session.wake) for each message queued and at its end. */
  wake(): void {
    if (this.#onWake === undefined || this.#queued) return;
    this.#queued = true;
    if (woken.push(this) === 1) queueMicrotask(runWoken);
  }

  /** The turn is over: calls the function (unless closed since). */
  runWake(): void {
    this.#queued = false;
    const target = this.#onWake;
    if (typeof target === "function") target();
    else target?.woken();
  }

  /** Stops waking and counting presence. Idempotent; a subscription that never waited has nothing to close. */
  close(): void {
    if (this.#onWake === undefined) return;
    this.#onWake = undefined;
    this.#client.removeWaker(this);
    this.#host.releasePresence(this.#client);
  }
}
