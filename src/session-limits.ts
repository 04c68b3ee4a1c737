import { ChatError } from "./errors.js";

/**
 * The caps on sessions (spec §8): --max-sessions in all, and
 * --max-sessions-per-ip per address that created them (0: no cap), counted
 * from creation until the session ends. So one address cannot take every slot.
 */
export class SessionLimits {
  readonly #max: number;
  readonly #maxPerAddress: number;
  readonly #retryAfter: number;
  /** Sessions alive per creating address; an entry goes with its last session, so it is bounded by --max-sessions. */
  readonly #perAddress = new Map<string, number>();

  constructor(opts: { maxSessions: number; maxSessionsPerIp: number; retryAfterSeconds: number }) {
    this.#max = opts.maxSessions;
    this.#maxPerAddress = opts.maxSessionsPerIp;
    this.#retryAfter = opts.retryAfterSeconds;
  }

  /** Sessions alive that this address created. */
  count(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  /** Refuses one more session: 503 server_full past --max-sessions, 429 too_many_sessions past the address's share. */
  check(total: number, address: string | undefined): void {
    const retryAfter = this.#retryAfter;
    if (total >= this.#max) throw new ChatError("server_full", undefined, { retryAfter });
    if (address !== undefined && this.#maxPerAddress > 0 && this.count(address) >= this.#maxPerAddress) {
      throw new ChatError("too_many_sessions", undefined, { retryAfter });
    }
  }

  added(address: string | undefined): void {
    if (address !== undefined) this.#perAddress.set(address, this.count(address) + 1);
  }

  ended(address: string | undefined): void {
    if (address === undefined) return;
    const left = this.count(address) - 1;
    if (left > 0) this.#perAddress.set(address, left);
    else this.#perAddress.delete(address);
  }
}
