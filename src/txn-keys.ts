import { ChatError } from "./errors.js";

/** A retried post with the same name and key within this long answers the first id and posts nothing (spec §5). */
export const TXN_WINDOW_MS = 10 * 60_000;
/**
 * Keys remembered at once, for every name together: 20 addresses at their share
 * (--max-txn-keys-per-ip). Past it a post with a new key is refused (503) until the
 * oldest leaves its window: a key still in its window is never forgotten, or its retry would post twice.
 */
export const MAX_TXN_KEYS = 200_000;

/** Keys out of their window a check without forgetting looks past at most (refusal()). */
const EXPIRED_SCAN = 1000;

interface TxnRecord {
  id: number;
  at: number;
  /** The address it counts against while in its window: the one that made the posting session (undefined: none, only the total). */
  address: string | undefined;
}

/**
 * Idempotency keys of posts, by name and key, apart from sessions: a session
 * that expired and came back (or a restart with --data-dir) still finds them.
 * Bounded by time (TXN_WINDOW_MS) and by a total cap, never by evicting a live key,
 * with a share per address (spec §8): the address that made the posting session,
 * even once it ended. A client past its own share is refused (429), and the total
 * takes many addresses at their share to fill. A session's share is what --rate lets
 * it post in a window (posting.ts checks the rate first), so it needs no count here.
 */
export class TxnKeys {
  readonly #max: number;
  readonly #perAddress: number;
  readonly #window: number;
  /** Insertion order is time order (a key used again moves to the end): the oldest is first. */
  readonly #keys = new Map<string, TxnRecord>();
  /** Keys held per address; an entry goes with its last key, so it is bounded by the keys. */
  readonly #byAddress = new Map<string, number>();

  /** `perAddress`: the share of one address (0: none). */
  constructor(opts: { max?: number; windowMs?: number; perAddress?: number } = {}) {
    this.#max = opts.max ?? MAX_TXN_KEYS;
    this.#window = opts.windowMs ?? TXN_WINDOW_MS;
    this.#perAddress = opts.perAddress ?? 0;
  }

  /** Keys held that count against this address (some may be out of their window, not forgotten yet). */
  countOf(address: string | undefined): number {
    return address === undefined ? 0 : (this.#byAddress.get(address) ?? 0);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** The id a key answered with, while in its window. */
  get(nameKey: string, txn: string, now: number): number | undefined {
    const record = this.#keys.get(keyOf(nameKey, txn));
    return record !== undefined && now - record.at < this.#window ? record.id : undefined;
  }

  /**
   * Throws 429 rate_limited when one more key would pass the share of `address`,
   * and 503 server_full when it would pass the total (keys out of their window are forgotten first).
   */
  checkRoom(now: number, address?: string): void {
    this.forgetExpired(now);
    const refusal = this.refusal(now, address);
    if (refusal !== undefined) throw refusal;
  }

  /**
   * What checkRoom() would throw at `now`, changing nothing: a replica's pre-check
   * (cluster/pre-checks.ts) may not forget keys out of turn. Keys out of their window
   * that are still held count for nobody; past EXPIRED_SCAN of them it says nothing (the
   * post is checked again where it is applied, which forgets them first).
   */
  refusal(now: number, address?: string): ChatError | undefined {
    let count = this.countOf(address);
    let size = this.#keys.size;
    let scanned = 0;
    for (const record of this.#keys.values()) {
      if (now - record.at < this.#window) break;
      if (++scanned > EXPIRED_SCAN) return undefined;
      size--;
      if (address !== undefined && record.address === address) count--;
    }
    if (this.#perAddress > 0 && count >= this.#perAddress) return this.#pastShare();
    if (size < this.#max) return undefined;
    const oldest = this.#oldestLive(now)!;
    const retryAfter = Math.max(1, Math.ceil((oldest.at + this.#window - now) / 1000));
    return new ChatError("server_full", "Too many retry keys (txn) are in use; try again later, or post without one.", { retryAfter });
  }

  #oldestLive(now: number): TxnRecord | undefined {
    for (const record of this.#keys.values()) if (now - record.at < this.#window) return record;
    return undefined;
  }

  #pastShare(): ChatError {
    // A key leaves its window every window/share on average for an address that keeps posting.
    const retryAfter = Math.max(1, Math.ceil(this.#window / 1000 / this.#perAddress));
    const minutes = this.#window / 60_000;
    return new ChatError("rate_limited", `Too many retry keys (txn) from your address in ${minutes} minutes; slow down, or post without one.`, { retryAfter });
  }

  /** Remembers a key, counted against `address`; call checkRoom() first (a restore may go past the cap: it brings back only live keys). */
  remember(nameKey: string, txn: string, id: number, at: number, now = at, address?: string): void {
    if (now - at >= this.#window) return;
    const key = keyOf(nameKey, txn);
    this.#forget(key);
    this.#keys.set(key, { id, at, address });
    if (address !== undefined) bump(this.#byAddress, address, 1);
  }

  /** The keys still in their window, oldest first, as [nameKey, txn, id, at, address]: what a store saves. */
  *live(now: number): Generator<readonly [string, string, number, number, string | undefined]> {
    for (const [key, { id, at, address }] of this.#keys) {
      if (now - at >= this.#window) continue;
      const space = key.indexOf(" ");
      yield [key.slice(0, space), key.slice(space + 1), id, at, address];
    }
  }

  /** Forgets keys out of their window, from the oldest until the first live one (the hub's sweep, and before a new key). */
  forgetExpired(now: number): void {
    for (const [key, { at }] of this.#keys) {
      if (now - at < this.#window) return;
      this.#forget(key);
    }
  }

  #forget(key: string): void {
    const record = this.#keys.get(key);
    if (record === undefined) return;
    this.#keys.delete(key);
    if (record.address !== undefined) bump(this.#byAddress, record.address, -1);
  }
}

function bump<K>(counts: Map<K, number>, key: K, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

/** A name holds no space and a txn key is printable ASCII without one (validate.ts): the pair is unambiguous. */
function keyOf(nameKey: string, txn: string): string {
  return `${nameKey} ${txn}`;
}
