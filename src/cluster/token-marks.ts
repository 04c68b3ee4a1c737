import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { joinMark, joinSigned, SIGNATURE_CHARS, splitMark, splitSigned } from "../signed-token.js";
import { START, type SharedLog } from "./shared-log.js";

/** The key's name among the values every process agrees on (`<prefix>:token-key` on Redis). */
const KEY_NAME = "token-key";
/** base64url without padding: 16 bytes are 22 characters. */
const SIGNATURE_BYTES = 16;
/** Signed in a token's place for a poll's mark: no session token is this short, so no token's signature is a mark's. */
const MARK_LABEL = "mark";

/**
 * Tokens that carry proof of where the log stood (README, Several processes: Faults,
 * Redis and every process lost together). The token a join answers is signed
 * (signed-token.ts) with the position of the entry that made its session (the same
 * on every replica, so a session has one token wherever it joins). The HMAC's key is one every process agrees
 * on in Redis (`<prefix>:token-key`) and it covers the epoch, so only the cluster makes
 * one, for its own log. A signed token that names no session once this process has
 * caught up (the session ended, or was made in entries the log lost) proves the log of
 * this epoch had that position: if it no longer has it, it lost its end, and a new epoch
 * starts as when a process finds an entry it read gone (shared-log.ts reached()). A token
 * made up, altered or of another epoch proves nothing and changes nothing (401 as ever);
 * nor does any number a client sends (a cursor).
 */
export class TokenMarks {
  readonly #log: SharedLog;
  /** The position the session of a token was made at (START: not known). */
  readonly #madeAt: (token: string) => string;
  #key: Buffer | undefined;
  #lastMark: { position: string; epoch: string | undefined; key: Buffer | undefined; mark: string } | undefined;

  constructor(log: SharedLog, madeAt: (token: string) => string) {
    this.#log = log;
    this.#madeAt = madeAt;
  }

  /** Agrees on the key (the first process of a deployment, or after Redis lost it, sets it). Again after each new epoch. */
  async open(): Promise<void> {
    this.#key = Buffer.from(await this.#log.agree(KEY_NAME, randomBytes(32).toString("hex")), "hex");
  }

  /** The token to hand out for a session's `token`: signed with the position its session was made at (unsigned before the key is known). */
  sign(token: string): string {
    const position = this.#madeAt(token);
    const mac = position === START ? undefined : this.#mac(token, position);
    return (mac && joinSigned(token, position, mac.toString("base64url"))) ?? token;
  }

  /** The position a token says the log had, if the cluster signed it in this epoch; else undefined. */
  markOf(token: string): string | undefined {
    const parts = splitSigned(token);
    if (parts === undefined) return undefined;
    const want = this.#mac(parts.base, parts.position);
    const got = Buffer.from(parts.signature, "base64url");
    return want !== undefined && got.length === want.length && parts.signature.length === SIGNATURE_CHARS && timingSafeEqual(got, want)
      ? parts.position
      : undefined;
  }

  /** A token this process does not know once caught up: if the cluster signed it at a position, the log must still have that position. */
  unknown(token: string | undefined): void {
    const mark = token === undefined ? undefined : this.markOf(token);
    if (mark !== undefined) this.#log.reached?.(mark);
  }

  /**
   * A poll answer's mark: `position` (the newest this process applied) signed with the same key and epoch,
   * under its own label (never a token's signature). Undefined before the key is known, or at the log's start.
   */
  markAt(position: string): string | undefined {
    // The last one kept: a post that wakes 1,000 polls signs once for all their answers.
    const memo = this.#lastMark;
    if (memo !== undefined && memo.position === position && memo.epoch === this.#log.epoch && memo.key === this.#key) return memo.mark;
    const mac = position === START ? undefined : this.#mac(MARK_LABEL, position);
    const mark = mac && joinMark(position, mac.toString("base64url"));
    if (mark !== undefined) this.#lastMark = { position, epoch: this.#log.epoch, key: this.#key, mark };
    return mark;
  }

  /** The position a presented mark names, if the cluster signed it in this epoch; else undefined (made up, altered, of another epoch). */
  markedPosition(mark: string | undefined): string | undefined {
    const parts = splitMark(mark);
    const want = parts && this.#mac(MARK_LABEL, parts.position);
    if (parts === undefined || want === undefined) return undefined;
    const got = Buffer.from(parts.signature, "base64url");
    return got.length === want.length && timingSafeEqual(got, want) ? parts.position : undefined;
  }

  #mac(token: string, position: string): Buffer | undefined {
    const epoch = this.#log.epoch;
    if (this.#key === undefined || epoch === undefined) return undefined;
    return createHmac("sha256", this.#key).update(`${epoch}\n${token}\n${position}`).digest().subarray(0, SIGNATURE_BYTES);
  }
}
