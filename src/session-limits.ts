import { ChatError } from "./errors.js";
import { TokenBucket } from "./rate-limiter.js";

/** What one creating address holds: its live sessions, and the post bucket they share (made at its first post). */
interface AddressEntry {
  sessions: number;
  bucket: TokenBucket | undefined;
}

/**
 * The caps on sessions (spec §8): --max-sessions in all, and
 * --max-sessions-per-ip per address that created them (0: no cap), counted
 * from creation until the session ends (sessions a store brings back count
 * against the address they recorded). So one address cannot take every slot.
 *
 * And the posts of all sessions one address created (--rate-per-ip, 0: no cap):
 * one token bucket per address, bursts of twice the rate, so that many sessions
 * of one address post no faster than a crowd behind it would.
 */
export class SessionLimits {
  readonly #max: number;
  readonly #maxPerAddress: number;
  readonly #retryAfter: number;
  readonly #ratePerAddress: number;
  readonly #now: () => number;
  /**
   * By creating address. An entry goes with its last session, unless its bucket is not full yet (idle: kept
   * until it is, so ending every session refills nothing); so entries with sessions are bounded by
   * --max-sessions, and idle ones are too (#forgetIdle).
   */
  readonly #perAddress = new Map<string, AddressEntry>();
  #idle = 0;

  constructor(opts: { maxSessions: number; maxSessionsPerIp: number; retryAfterSeconds: number; ratePerIp?: number; now?: () => number }) {
    this.#max = opts.maxSessions;
    this.#maxPerAddress = opts.maxSessionsPerIp;
    this.#retryAfter = opts.retryAfterSeconds;
    this.#ratePerAddress = opts.ratePerIp ?? 0;
    this.#now = opts.now ?? Date.now;
  }

  /** Sessions alive that this address created. */
  count(address: string): number {
    return this.#perAddress.get(address)?.sessions ?? 0;
  }

  /** Refuses one more session: 503 server_full past --max-sessions, 429 too_many_sessions past the address's share. */
  check(total: number, address: string | undefined): void {
    const refusal = this.refusal(total, address);
    if (refusal !== undefined) throw refusal;
  }

  /** What check would throw, changing nothing (a --redis pre-check asks it: cluster/pre-checks.ts). */
  refusal(total: number, address: string | undefined): ChatError | undefined {
    const retryAfter = this.#retryAfter;
    if (total >= this.#max) return new ChatError("server_full", undefined, { retryAfter });
    if (address !== undefined && this.#maxPerAddress > 0 && this.count(address) >= this.#maxPerAddress) {
      return new ChatError("too_many_sessions", undefined, { retryAfter });
    }
    return undefined;
  }

  added(address: string | undefined): void {
    if (address === undefined) return;
    const entry = this.#perAddress.get(address);
    if (entry === undefined) return void this.#perAddress.set(address, { sessions: 1, bucket: undefined });
    if (entry.sessions === 0) this.#idle--;
    entry.sessions++;
  }

  ended(address: string | undefined): void {
    const entry = address === undefined ? undefined : this.#perAddress.get(address);
    if (entry === undefined || --entry.sessions > 0) return;
    if (entry.bucket === undefined || entry.bucket.full) return void this.#perAddress.delete(address!);
    if (++this.#idle > this.#max) this.#forgetIdle();
  }

  /** Seconds until the sessions of `address` may post once more (0: now), taking nothing: a post asks before it takes. */
  postWait(address: string | undefined): number {
    return this.#bucketOf(address)?.wait() ?? 0;
  }

  /** The same at time `at`, changing nothing (a --redis pre-check: cluster/pre-checks.ts). */
  postWaitAt(address: string | undefined, at: number): number {
    return this.#bucketOf(address)?.waitAt(at) ?? 0;
  }

  /** A session `address` created posted: one token of its bucket. */
  posted(address: string | undefined): void {
    if (address === undefined || this.#ratePerAddress === 0) return;
    const entry = this.#perAddress.get(address);
    // Every posting session's address has an entry (added); one without is no session's, and counts nothing.
    if (entry === undefined) return;
    entry.bucket ??= this.#newBucket();
    entry.bucket.take();
  }

  /** The buckets made, as [address, [tokens, at]]: what a --redis snapshot saves so a replica started from it decides alike. */
  *buckets(): Generator<[string, [number, number]]> {
    for (const [address, { bucket }] of this.#perAddress) if (bucket !== undefined) yield [address, bucket.state];
  }

  /** Puts back a bucket a snapshot saved (after its sessions came back: an address with none keeps it idle). */
  setBucket(address: string, state: readonly [number, number]): void {
    if (this.#ratePerAddress === 0) return;
    let entry = this.#perAddress.get(address);
    if (entry === undefined) {
      this.#perAddress.set(address, (entry = { sessions: 0, bucket: undefined }));
      if (++this.#idle > this.#max) this.#forgetIdle();
    }
    entry.bucket ??= this.#newBucket();
    entry.bucket.state = state;
  }

  #bucketOf(address: string | undefined): TokenBucket | undefined {
    return address === undefined || this.#ratePerAddress === 0 ? undefined : this.#perAddress.get(address)?.bucket;
  }

  #newBucket(): TokenBucket {
    return new TokenBucket(this.#ratePerAddress, Math.max(1, this.#ratePerAddress * 2), this.#now);
  }

  /**
   * More idle addresses than --max-sessions: those whose bucket is full again go (nothing changes), and
   * if that is not enough the fullest go too (then by address: the same choice on every --redis replica,
   * whatever order its table was filled in), so the table stays bounded whatever the churn.
   */
  #forgetIdle(): void {
    const idle: [string, number][] = [];
    for (const [address, entry] of this.#perAddress) {
      if (entry.sessions > 0) continue;
      if (entry.bucket === undefined || entry.bucket.full) this.#drop(address);
      else idle.push([address, entry.bucket.state[0]]);
    }
    if (this.#idle <= this.#max / 2) return;
    idle.sort(([a, tokensA], [b, tokensB]) => tokensB - tokensA || (a < b ? -1 : 1));
    for (const [address] of idle) {
      if (this.#idle <= this.#max / 2) break;
      this.#drop(address);
    }
  }

  #drop(address: string): void {
    this.#perAddress.delete(address);
    this.#idle--;
  }
}
