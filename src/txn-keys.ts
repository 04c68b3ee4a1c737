import { ChatError } from "./errors.js";

/** A retried post with the same name and key within this long answers the first id and posts nothing (spec §5). */
export const TXN_WINDOW_MS = 10 * 60_000;
/**
 * Keys remembered at once, for every name together. Past it a post with a new
 * key is refused (503) until the oldest leaves its window: a key still in its
 * window is never forgotten, or its retry would post twice.
 */
export const MAX_TXN_KEYS = 100_000;

interface TxnRecord {
  id: number;
  at: number;
}

/**
 * Idempotency keys of posts, by name and key, apart from sessions: a session
 * that expired and came back (or a restart with --data-dir) still finds them.
 * Bounded by time (TXN_WINDOW_MS) and by a total cap, never by evicting a live key.
 */
export class TxnKeys {
  readonly #max: number;
  readonly #window: number;
  /** Insertion order is time order (a key used again moves to the end): the oldest is first. */
  readonly #keys = new Map<string, TxnRecord>();

  constructor(opts: { max?: number; windowMs?: number } = {}) {
    this.#max = opts.max ?? MAX_TXN_KEYS;
    this.#window = opts.windowMs ?? TXN_WINDOW_MS;
  }

  get size(): number {
    return this.#keys.size;
  }

  /** The id a key answered with, while in its window. */
  get(nameKey: string, txn: string, now: number): number | undefined {
    const record = this.#keys.get(keyOf(nameKey, txn));
    return record !== undefined && now - record.at < this.#window ? record.id : undefined;
  }

  /** Throws 503 server_full when one more key would pass the cap (keys out of their window are forgotten first). */
  checkRoom(now: number): void {
    this.forgetExpired(now);
    if (this.#keys.size < this.#max) return;
    const oldest = this.#keys.values().next().value!;
    const retryAfter = Math.max(1, Math.ceil((oldest.at + this.#window - now) / 1000));
    throw new ChatError("server_full", "Too many retry keys (txn) are in use; try again later, or post without one.", { retryAfter });
  }

  /** Remembers a key; call checkRoom() first (a restore may go past the cap: it brings back only live keys). */
  remember(nameKey: string, txn: string, id: number, at: number, now = at): void {
    if (now - at >= this.#window) return;
    const key = keyOf(nameKey, txn);
    this.#keys.delete(key);
    this.#keys.set(key, { id, at });
  }

  /** The keys still in their window, oldest first, as [nameKey, txn, id, at]: what a store saves. */
  *live(now: number): Generator<readonly [string, string, number, number]> {
    for (const [key, { id, at }] of this.#keys) {
      if (now - at >= this.#window) continue;
      const space = key.indexOf(" ");
      yield [key.slice(0, space), key.slice(space + 1), id, at];
    }
  }

  /** Forgets keys out of their window, from the oldest until the first live one (the hub's sweep, and before a new key). */
  forgetExpired(now: number): void {
    for (const [key, { at }] of this.#keys) {
      if (now - at < this.#window) return;
      this.#keys.delete(key);
    }
  }
}

/** A name holds no space and a txn key is printable ASCII without one (validate.ts): the pair is unambiguous. */
function keyOf(nameKey: string, txn: string): string {
  return `${nameKey} ${txn}`;
}
