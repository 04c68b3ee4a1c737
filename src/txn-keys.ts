import { ChatError } from "./errors.js";

/** A retried post with the same name and key within this long answers the first id and posts nothing (spec §5). */
export const TXN_WINDOW_MS = 10 * 60_000;
/**
 * Keys remembered at once, for every name together (--max-txn-keys): 20 addresses at their
 * share (--max-txn-keys-per-ip). It is a soft cap: past it only the addresses holding a fair
 * share are refused (refusal()). A key still in its window is never forgotten, or its retry
 * would post twice, so the table may grow to the hard cap, a quarter over it.
 */
export const MAX_TXN_KEYS = 200_000;

const FULL = "Too many retry keys (txn) are in use; try again later, or post without one.";
const PAST_PART = "Your address holds more retry keys (txn) than its part while the server is full; slow down, or post without one.";

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
 * even once it ended. A client past its own share is refused (429). Past the total
 * (a soft cap) only addresses holding a fair share are refused, with 429 too: the room
 * left before the hard cap, split among the addresses holding keys; an address holding
 * none always gets one. So addresses filling the total stall only themselves (README
 * "Limits against slow and abusive clients"). Reaching the hard cap (503 for all) takes, at
 * the defaults, about 2,300 more addresses each taking all it may: the part shrinks with the
 * room left. A session's share is what --rate lets it post in a window (posting.ts checks the
 * rate first), so it needs no count here.
 * Every choice reads only the keys and the time of the entry: replicas of --redis decide alike.
 */
export class TxnKeys {
  readonly #max: number;
  /** Past the soft cap the table grows at most to this (a quarter over it), by addresses holding less than a fair share. */
  readonly #hard: number;
  readonly #perAddress: number;
  readonly #window: number;
  /** Insertion order is time order (a key used again moves to the end): the oldest is first. */
  readonly #keys = new Map<string, TxnRecord>();
  /** Keys held per address; an entry goes with its last key, so it is bounded by the keys. */
  readonly #byAddress = new Map<string, number>();
  /** Keys of no address (sessions of an older log): past the total they are one holder. */
  #unaddressed = 0;

  /** `perAddress`: the share of one address (0: none). */
  constructor(opts: { max?: number; windowMs?: number; perAddress?: number } = {}) {
    this.#max = opts.max ?? MAX_TXN_KEYS;
    this.#hard = this.#max + Math.max(1, Math.floor(this.#max / 4));
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
   * Throws 429 rate_limited when one more key would pass the share of `address`, or past the
   * total when `address` holds a fair share; 503 server_full at the hard cap (keys out of their
   * window are forgotten first).
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
    let size = this.#keys.size;
    const expired = new Map<string | undefined, number>();
    let scanned = 0;
    for (const record of this.#keys.values()) {
      if (now - record.at < this.#window) break;
      if (++scanned > EXPIRED_SCAN) return undefined;
      size--;
      bump(expired, record.address, 1);
    }
    const count = this.#holding(address) - (expired.get(address) ?? 0);
    if (this.#perAddress > 0 && address !== undefined && count >= this.#perAddress) return this.#pastShare();
    if (size < this.#max) return undefined;
    if (size >= this.#hard) return this.#full(now, "server_full", FULL);
    // Past the soft cap: an address holding none always gets its key; one holding its part of the room left is refused.
    if (count === 0) return undefined;
    let holders = this.#byAddress.size + (this.#unaddressed > 0 ? 1 : 0);
    for (const [holder, n] of expired) if (n === this.#holding(holder)) holders--;
    if (count < Math.floor((this.#hard - size) / holders)) return undefined;
    return this.#full(now, "rate_limited", PAST_PART);
  }

  /** Keys held that count against `address`; of no address: those of every session of no address. */
  #holding(address: string | undefined): number {
    return address === undefined ? this.#unaddressed : (this.#byAddress.get(address) ?? 0);
  }

  /** A refusal until the oldest key leaves its window (room comes back no sooner). */
  #full(now: number, code: "server_full" | "rate_limited", text: string): ChatError {
    const oldest = this.#oldestLive(now)!;
    const retryAfter = Math.max(1, Math.ceil((oldest.at + this.#window - now) / 1000));
    return new ChatError(code, text, { retryAfter });
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
    else this.#unaddressed++;
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
    else this.#unaddressed--;
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
