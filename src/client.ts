import { ClientQueue } from "./client-queue.js";
import { TokenBucket } from "./rate-limiter.js";

/** A remembered post id for a txn key (spec §5: retries within 10 minutes post nothing again). */
interface TxnRecord {
  id: number;
  at: number;
}

export const TXN_WINDOW_MS = 10 * 60_000;
/** Per client, so one flooding session cannot grow the table for everyone. */
const MAX_TXNS = 1000;

/** One chat session: a name, its rooms, its queue. Transports come and go; the client stays until it expires. */
export class Client {
  readonly name: string;
  readonly key: string;
  readonly token: string | undefined;
  readonly queue: ClientQueue;
  /** The hub emits this when the queue gains entries or the session ends: held polls and streams listen for it. */
  readonly wakeEvent: symbol;
  readonly rooms = new Set<string>();
  currentRoom: string;
  /** Held polls, streams and connections now open: while above 0 the client never expires. */
  consumers = 0;
  lastSeen: number;
  ended = false;
  /** False for a session that lives and dies with one connection (TCP): a store does not bring it back. */
  readonly resumable: boolean;
  /** Made on the first txn: most clients never send one, and an empty Map costs ~250 bytes per session. */
  #txns: Map<string, TxnRecord> | undefined;
  /** Made on the first post: a client that only polls never needs one (see `bucket`). */
  #bucket: TokenBucket | undefined;
  readonly #newBucket: () => TokenBucket;

  constructor(init: {
    name: string;
    token: string | undefined;
    room: string;
    queue: ClientQueue;
    /** Makes the client's rate-limit bucket, when it first posts. */
    newBucket: () => TokenBucket;
    now: number;
    resumable?: boolean;
  }) {
    this.resumable = init.resumable ?? true;
    this.name = init.name;
    this.key = init.name.toLowerCase();
    this.token = init.token;
    this.currentRoom = init.room;
    this.queue = init.queue;
    this.#newBucket = init.newBucket;
    this.lastSeen = init.now;
    this.wakeEvent = Symbol(init.name);
  }

  /** The post rate limit. A bucket made at the first post is full, as one made with the session would be by then. */
  get bucket(): TokenBucket {
    return (this.#bucket ??= this.#newBucket());
  }

  txnId(txn: string, now: number): number | undefined {
    const record = this.#txns?.get(txn);
    return record && now - record.at < TXN_WINDOW_MS ? record.id : undefined;
  }

  rememberTxn(txn: string, id: number, now: number): void {
    const txns = (this.#txns ??= new Map());
    txns.delete(txn);
    txns.set(txn, { id, at: now });
    // Map keeps insertion order: the first key is the oldest.
    if (txns.size > MAX_TXNS) txns.delete(txns.keys().next().value!);
  }

  /** The keys still in their window, oldest first, as [txn, id, at]: what a store saves. */
  *txns(now: number): Generator<readonly [string, number, number]> {
    for (const [txn, { id, at }] of this.#txns ?? []) if (now - at < TXN_WINDOW_MS) yield [txn, id, at];
  }
}
